"""The reservoir chart: drug volume in the pump from the last fill to empty, painted by hand.

QtCharts is not among our dependencies, and the chart needs little: one polyline, a few
markers and labels. Every colour carries a word or a line style as well, so nothing here
depends on colour alone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from itertools import pairwise

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from pumpclinic.services.refills import ReservoirView

Point = tuple[dt.datetime, float]

LINE = QColor("#1f5f8b")
ALARM = QColor("#b3261e")
ALARM_ZONE = QColor("#fdecea")
DUE = QColor("#8a4b00")
DUE_BAND = QColor("#ffe9c7")
TODAY = QColor("#1d2b3a")
FILL = QColor("#2e7d32")
GRID = QColor("#e4e9ef")
AXIS = QColor("#9aa5b1")
TEXT = QColor("#334e68")
MUTED = QColor("#7b8794")

DAY_STEPS = (1, 2, 3, 7, 14, 21, 28, 42, 56, 91, 182)
ML_STEPS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def short_day(moment: dt.datetime | dt.date, zone: dt.tzinfo | None = None) -> str:
    """'Sat 26 Dec' in the clinic's zone."""
    day = moment.astimezone(zone).date() if isinstance(moment, dt.datetime) else moment
    return f"{day:%a} {day.day} {day:%b}"


def long_moment(moment: dt.datetime, zone: dt.tzinfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M}"


class ReservoirChart(QWidget):
    """Volume over time: solid from the last fill to now, dashed beyond, to the alarm and empty."""

    EMPTY_TEXT = "No fill recorded"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reservoirChart")
        self.setAccessibleName("Reservoir chart")
        self.setMinimumSize(520, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._view: ReservoirView | None = None
        self._reservoir_ml = 20.0
        self._alarm_ml = 2.0
        self._zone: dt.tzinfo = dt.UTC
        self.setAccessibleDescription(self.EMPTY_TEXT)

    # --- data ---------------------------------------------------------------------------

    def set_data(
        self,
        view: ReservoirView | None,
        reservoir_ml: float,
        alarm_ml: float,
        zone: dt.tzinfo,
    ) -> None:
        self._view = view if view is not None and view.series else None
        self._reservoir_ml = max(reservoir_ml, 1.0)
        self._alarm_ml = alarm_ml
        self._zone = zone
        self.setAccessibleDescription(self.description())
        self.setToolTip(self.description())
        self.update()

    @property
    def view(self) -> ReservoirView | None:
        return self._view

    @property
    def series(self) -> tuple[Point, ...]:
        return self._view.series if self._view is not None else ()

    @property
    def reservoir_ml(self) -> float:
        return self._reservoir_ml

    @property
    def alarm_ml(self) -> float:
        return self._alarm_ml

    @property
    def zone(self) -> dt.tzinfo:
        return self._zone

    def title_text(self) -> str:
        view = self._view
        if view is None:
            return self.EMPTY_TEXT
        outlook = view.forecast
        parts = [f"Now {view.volume_now_ml:.1f} mL"]
        if outlook.alarm_at is None:
            parts.append("no alarm forecast (no flow)")
        else:
            verb = "alarmed" if view.now >= outlook.alarm_at else "alarm"
            parts.append(f"{verb} {short_day(outlook.alarm_at, self._zone)}")
        if outlook.empty_at is not None:
            verb = "empty since" if view.now >= outlook.empty_at else "empty"
            parts.append(f"{verb} {short_day(outlook.empty_at, self._zone)}")
        return " · ".join(parts)

    def description(self) -> str:
        """What the chart shows, in words, for screen readers and the tooltip."""
        view = self._view
        if view is None:
            return f"Reservoir chart: {self.EMPTY_TEXT.lower()}."
        zone = self._zone
        outlook = view.forecast
        start, start_ml = view.series[0]
        parts = [
            f"Reservoir volume since the fill of {long_moment(start, zone)} ({start_ml:.1f} mL).",
            f"Now {view.volume_now_ml:.1f} mL of {self._reservoir_ml:g} mL.",
        ]
        if outlook.alarm_at is not None:
            parts.append(
                f"Low-reservoir alarm at {self._alarm_ml:g} mL: "
                f"{long_moment(outlook.alarm_at, zone)}."
            )
        if outlook.empty_at is not None:
            parts.append(f"Empty: {long_moment(outlook.empty_at, zone)}.")
        if outlook.refill_due is not None:
            parts.append(f"Refill due by {short_day(outlook.refill_due)} {outlook.refill_due:%Y}.")
        if outlook.stability_limit_at is not None:
            parts.append(f"Drug stability limit: {long_moment(outlook.stability_limit_at, zone)}.")
        return " ".join(parts)

    def sizeHint(self) -> QSize:
        return QSize(760, 320)

    def minimumSizeHint(self) -> QSize:
        return QSize(520, 240)

    # --- painting -----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        try:
            if self._view is None:
                painter.setPen(MUTED)
                painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, self.EMPTY_TEXT)
            else:
                _Painting(self, painter, self._view).paint()
        finally:
            painter.end()


class _Painting:
    """One paint pass: the geometry and the labels placed so far (so none overlap)."""

    def __init__(self, chart: ReservoirChart, painter: QPainter, view: ReservoirView) -> None:
        self.chart = chart
        self.p = painter
        self.view = view
        self.zone = chart.zone
        self.reservoir_ml = chart.reservoir_ml
        self.alarm_ml = chart.alarm_ml
        self.font = QFont(chart.font())
        self.small = QFont(self.font)
        self.small.setPointSizeF(max(7.0, self.font.pointSizeF() * 0.9))
        self.bold = QFont(self.font)
        self.bold.setBold(True)
        self.fm = QFontMetricsF(self.small)
        self.placed: list[QRectF] = []

        width, height = chart.width(), chart.height()
        line_height = self.fm.height()
        title_height = QFontMetricsF(self.bold).height() + 6
        band = 2 * line_height + 6  # two rows of marker labels above the plot
        left = 8 + self.fm.horizontalAdvance(f"{self.reservoir_ml:g} mL") + 8
        self.title_rect = QRectF(8, 4, width - 16, title_height)
        self.plot = QRectF(
            left,
            4 + title_height + band,
            max(10.0, width - left - 18),
            max(10.0, height - (4 + title_height + band) - (line_height + 12)),
        )
        self.band_top = 4 + title_height

        series = view.series
        start = series[0][0]
        end = max(series[-1][0], view.now)
        if view.forecast.refill_due is not None:
            due_end = dt.datetime.combine(
                view.forecast.refill_due + dt.timedelta(days=1), dt.time(), tzinfo=self.zone
            )
            end = max(end, due_end)
        span = max((end - start).total_seconds(), 86400.0)
        self.t0 = start - dt.timedelta(seconds=span * 0.02)
        self.t1 = end + dt.timedelta(seconds=span * 0.04)

    # geometry
    def x(self, moment: dt.datetime) -> float:
        total = (self.t1 - self.t0).total_seconds()
        return self.plot.left() + (moment - self.t0).total_seconds() / total * self.plot.width()

    def y(self, volume_ml: float) -> float:
        fraction = min(max(volume_ml / self.reservoir_ml, 0.0), 1.0)
        return self.plot.bottom() - fraction * self.plot.height()

    def point(self, moment: dt.datetime, volume_ml: float) -> QPointF:
        return QPointF(self.x(moment), self.y(volume_ml))

    def in_range(self, moment: dt.datetime) -> bool:
        return self.t0 <= moment <= self.t1

    # the pass
    def paint(self) -> None:
        self._title()
        self._alarm_zone()
        self._grid()
        self._refill_due()
        self._fills()
        self._today()
        self._volume_line()
        self._legend()
        self._alarm_line()
        self._points()

    def _title(self) -> None:
        p = self.p
        p.setFont(self.bold)
        p.setPen(TEXT)
        title = self.chart.title_text()
        p.drawText(
            self.title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title
        )
        title_width = QFontMetricsF(self.bold).horizontalAdvance(title)
        self.placed.append(QRectF(self.title_rect.left(), self.title_rect.top(), title_width, 1))

    def _legend(self) -> None:
        """The two line styles in words, in the plot's top-right corner (the line is
        always lower there: the volume only falls between fills)."""
        p = self.p
        p.setFont(self.small)
        entries = (("since fill", Qt.PenStyle.SolidLine), ("projected", Qt.PenStyle.DashLine))
        sample = 26
        text_width = max(self.fm.horizontalAdvance(text) for text, _style in entries)
        row = self.fm.height() + 2
        box = QRectF(
            self.plot.right() - (sample + 6 + text_width) - 14,
            self.plot.top() + 6,
            sample + 6 + text_width + 10,
            row * len(entries) + 6,
        )
        p.setPen(QPen(GRID, 1))
        p.setBrush(QBrush(QColor(255, 255, 255, 230)))
        p.drawRect(box)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for number, (text, style) in enumerate(entries):
            middle = box.top() + 3 + row * number + row / 2
            p.setPen(QPen(LINE, 2.5, style))
            p.drawLine(QPointF(box.left() + 5, middle), QPointF(box.left() + 5 + sample, middle))
            p.setPen(TEXT)
            p.drawText(QPointF(box.left() + 11 + sample, middle + self.fm.ascent() / 2 - 1), text)
        self.placed.append(box)

    def _alarm_zone(self) -> None:
        top = self.y(self.alarm_ml)
        zone = QRectF(self.plot.left(), top, self.plot.width(), self.plot.bottom() - top)
        self.p.fillRect(zone, ALARM_ZONE)

    def _grid(self) -> None:
        p = self.p
        p.setFont(self.small)
        # mL axis
        step = next((s for s in ML_STEPS if self.reservoir_ml / s <= 5), ML_STEPS[-1])
        volume = 0.0
        while volume <= self.reservoir_ml + 1e-9:
            y = self.y(volume)
            p.setPen(QPen(GRID, 1))
            p.drawLine(QPointF(self.plot.left(), y), QPointF(self.plot.right(), y))
            label = f"{volume:g} mL"
            p.setPen(TEXT)
            p.drawText(
                QRectF(0, y - self.fm.height() / 2, self.plot.left() - 6, self.fm.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            volume += step
        # date axis: local midnights, weekly ticks on Mondays
        label_width = self.fm.horizontalAdvance("00 MMM") + 18
        capacity = max(1, int(self.plot.width() // label_width))
        days = (self.t1 - self.t0).total_seconds() / 86400
        step_days = next((s for s in DAY_STEPS if days / s <= capacity), DAY_STEPS[-1])
        first = self.t0.astimezone(self.zone).date() + dt.timedelta(days=1)
        if step_days % 7 == 0:
            first += dt.timedelta(days=(7 - first.weekday()) % 7)
        day = first
        while True:
            moment = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
            if moment > self.t1:
                break
            x = self.x(moment)
            p.setPen(QPen(GRID, 1))
            p.drawLine(QPointF(x, self.plot.top()), QPointF(x, self.plot.bottom()))
            p.setPen(QPen(AXIS, 1))
            p.drawLine(QPointF(x, self.plot.bottom()), QPointF(x, self.plot.bottom() + 4))
            p.setPen(TEXT)
            text = f"{day:%d %b}"
            width = self.fm.horizontalAdvance(text)
            p.drawText(QPointF(x - width / 2, self.plot.bottom() + 6 + self.fm.ascent()), text)
            day += dt.timedelta(days=step_days)
        p.setPen(QPen(AXIS, 1))
        p.drawLine(self.plot.bottomLeft(), self.plot.bottomRight())
        p.drawLine(self.plot.bottomLeft(), self.plot.topLeft())

    def _refill_due(self) -> None:
        due = self.view.forecast.refill_due
        if due is None:
            return
        start = dt.datetime.combine(due, dt.time(), tzinfo=self.zone)
        end = start + dt.timedelta(days=1)
        if not (self.in_range(start) or self.in_range(end)):
            return
        left, right = self.x(start), self.x(end)
        band = QRectF(left, self.plot.top(), max(right - left, 3.0), self.plot.height())
        self.p.fillRect(band, DUE_BAND)
        self.p.setPen(QPen(DUE, 1.5, Qt.PenStyle.DashDotLine))
        self.p.drawLine(QPointF(right, self.plot.top() - 4), QPointF(right, self.plot.bottom()))
        self._band_label(f"Refill by {short_day(due)}", right, DUE, bold=True)

    def _fills(self) -> None:
        for moment, volume_ml in self.view.fills:
            if not self.in_range(moment):
                continue
            x = self.x(moment)
            self.p.setPen(QPen(FILL, 1.5, Qt.PenStyle.DotLine))
            self.p.drawLine(QPointF(x, self.plot.top() - 4), QPointF(x, self.plot.bottom()))
            top = self.y(volume_ml)
            triangle = QPolygonF(
                [QPointF(x - 5, top - 9), QPointF(x + 5, top - 9), QPointF(x, top - 1)]
            )
            self.p.setBrush(QBrush(FILL))
            self.p.setPen(QPen(FILL, 1))
            self.p.drawPolygon(triangle)
            self.p.setBrush(Qt.BrushStyle.NoBrush)
            self._band_label(f"Filled {volume_ml:g} mL {short_day(moment, self.zone)}", x, FILL)

    def _today(self) -> None:
        now = self.view.now
        if not self.in_range(now):
            return
        x = self.x(now)
        self.p.setPen(QPen(TODAY, 1.5, Qt.PenStyle.SolidLine))
        self.p.drawLine(QPointF(x, self.plot.top() - 4), QPointF(x, self.plot.bottom()))
        self._band_label("Today", x, TODAY, bold=True)

    def _volume_line(self) -> None:
        now = self.view.now
        past: list[QPointF] = []
        future: list[QPointF] = []
        points: Sequence[Point] = self.view.series
        for (a_time, a_ml), (b_time, b_ml) in pairwise(points):
            if b_time <= now:
                past.extend([self.point(a_time, a_ml), self.point(b_time, b_ml)])
            elif a_time >= now:
                future.extend([self.point(a_time, a_ml), self.point(b_time, b_ml)])
            else:
                fraction = (now - a_time).total_seconds() / (b_time - a_time).total_seconds()
                middle = self.point(now, a_ml + (b_ml - a_ml) * fraction)
                past.extend([self.point(a_time, a_ml), middle])
                future.extend([middle, self.point(b_time, b_ml)])
        if len(points) == 1:
            past.append(self.point(*points[0]))
        self._polyline(past, Qt.PenStyle.SolidLine)
        self._polyline(future, Qt.PenStyle.DashLine)

    def _polyline(self, points: list[QPointF], style: Qt.PenStyle) -> None:
        if not points:
            return
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        self.p.setPen(QPen(LINE, 2.5, style, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        self.p.setBrush(Qt.BrushStyle.NoBrush)
        self.p.drawPath(path)

    def _alarm_line(self) -> None:
        y = self.y(self.alarm_ml)
        self.p.setPen(QPen(ALARM, 1.5, Qt.PenStyle.DashLine))
        self.p.drawLine(QPointF(self.plot.left(), y), QPointF(self.plot.right(), y))

    def _points(self) -> None:
        """Markers first, so that no label is placed over one; then their labels."""
        outlook = self.view.forecast
        now = self.view.now
        labels: list[tuple[str, QPointF, QColor, bool]] = []
        now_shown = self.in_range(now)
        if now_shown:
            here = self.point(now, self.view.volume_now_ml)
            self._marker(here, "circle", LINE)
            labels.append((f"{self.view.volume_now_ml:.1f} mL now", here, LINE, True))
        if outlook.alarm_at is not None and self.in_range(outlook.alarm_at):
            at = self.point(outlook.alarm_at, self.alarm_ml)
            self._marker(at, "diamond", ALARM)
            labels.append((f"Alarm {short_day(outlook.alarm_at, self.zone)}", at, ALARM, False))
        if outlook.empty_at is not None and self.in_range(outlook.empty_at):
            at = self.point(outlook.empty_at, 0.0)
            self._marker(at, "cross", ALARM)
            labels.append((f"Empty {short_day(outlook.empty_at, self.zone)}", at, ALARM, True))
        # The alarm line's own label, just right of the fill line at the left.
        text = f"Alarm {self.alarm_ml:g} mL"
        width = self._width(text, True)
        height = self.fm.height()
        y = self.y(self.alarm_ml)
        left = self.x(self.view.series[0][0]) + 8
        self._place(
            text,
            [
                QRectF(left, y - height - 2, width, height),
                QRectF(left, y + 2, width, height),
                QRectF(self.plot.right() - width - 4, y - height - 2, width, height),
            ],
            ALARM,
            True,
        )
        # The dangerous dates get the best places; "now" takes what is left.
        for text, at, colour, bold in [*labels[1:], *labels[:1]] if now_shown else labels:
            self._point_label(text, at, colour, bold)

    # labels and markers
    def _marker(self, at: QPointF, shape: str, colour: QColor) -> None:
        p = self.p
        self.placed.append(QRectF(at.x() - 7, at.y() - 7, 14, 14))
        p.setPen(QPen(colour, 2))
        if shape == "circle":
            p.setBrush(QBrush(QColor("white")))
            p.drawEllipse(at, 5, 5)
        elif shape == "diamond":
            p.setBrush(QBrush(colour))
            p.drawPolygon(
                QPolygonF(
                    [
                        QPointF(at.x(), at.y() - 6),
                        QPointF(at.x() + 6, at.y()),
                        QPointF(at.x(), at.y() + 6),
                        QPointF(at.x() - 6, at.y()),
                    ]
                )
            )
        else:
            p.setPen(QPen(colour, 2.5))
            p.drawLine(QPointF(at.x() - 5, at.y() - 5), QPointF(at.x() + 5, at.y() + 5))
            p.drawLine(QPointF(at.x() - 5, at.y() + 5), QPointF(at.x() + 5, at.y() - 5))
        p.setBrush(Qt.BrushStyle.NoBrush)

    def _band_label(self, text: str, x: float, colour: QColor, bold: bool = False) -> None:
        """A label in the strip above the plot, over its vertical line; two rows to share."""
        width = self._width(text, bold)
        height = self.fm.height()
        candidates = []
        for row in (1, 0):
            top = self.band_top + row * (height + 2)
            candidates += [
                QRectF(x - width / 2, top, width, height),
                QRectF(x + 3, top, width, height),
                QRectF(x - width - 3, top, width, height),
            ]
        self._place(text, candidates, colour, bold)

    def _point_label(self, text: str, at: QPointF, colour: QColor, bold: bool = False) -> None:
        """Above the point, right or left of it; higher up with a leader line if crowded."""
        width = self._width(text, bold)
        height = self.fm.height()
        candidates = []
        for row in range(7):
            top = at.y() - 8 - row * (height + 2) - height
            candidates += [
                QRectF(at.x() + 6, top, width, height),
                QRectF(at.x() - width - 6, top, width, height),
            ]
        rect = self._place(text, candidates, colour, bold)
        if rect.bottom() < at.y() - 10:
            anchor = QPointF(min(max(at.x(), rect.left()), rect.right()), rect.bottom())
            self.p.setPen(QPen(colour, 1))
            self.p.drawLine(anchor, at)

    def _place(self, text: str, candidates: list[QRectF], colour: QColor, bold: bool) -> QRectF:
        """The first candidate inside the chart that overlaps no earlier label or marker."""
        bounds = QRectF(self.chart.rect()).adjusted(2, self.band_top, -2, 0)
        fitting = [c for c in candidates if bounds.contains(c)] or candidates

        def overlap(candidate: QRectF) -> float:
            total = 0.0
            for other in self.placed:
                shared = candidate.intersected(other)
                total += max(shared.width(), 0.0) * max(shared.height(), 0.0)
            return total

        free = [c for c in fitting if overlap(c) == 0]
        rect = free[0] if free else min(fitting, key=overlap)
        self._text(rect, text, colour, bold)
        return rect

    def _text(self, rect: QRectF, text: str, colour: QColor, bold: bool = False) -> None:
        font = QFont(self.small)
        font.setBold(bold)
        backing = rect.adjusted(-2, 0, 2, 0)
        self.p.fillRect(backing, QColor(255, 255, 255, 215))
        self.p.setFont(font)
        self.p.setPen(colour)
        self.p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        self.placed.append(backing)

    def _width(self, text: str, bold: bool) -> float:
        font = QFont(self.small)
        font.setBold(bold)
        return math.ceil(QFontMetricsF(font).horizontalAdvance(text)) + 2
