"""Small building blocks shared by the pages and dialogs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from pumpclinic.domain.validation import FieldError


def page_header(title: str, subtitle: str) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 8)
    layout.setSpacing(2)
    title_label = QLabel(title)
    title_label.setObjectName("pageTitle")
    subtitle_label = QLabel(subtitle)
    subtitle_label.setObjectName("pageSubtitle")
    subtitle_label.setWordWrap(True)
    layout.addWidget(title_label)
    layout.addWidget(subtitle_label)
    return box


def primary_button(text: str, object_name: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(object_name)
    button.setAccessibleName(text.replace("&", ""))
    button.setProperty("primary", True)
    button.setDefault(True)
    return button


def button(text: str, object_name: str) -> QPushButton:
    widget = QPushButton(text)
    widget.setObjectName(object_name)
    widget.setAccessibleName(text.replace("&", ""))
    return widget


def banner(object_name: str, kind: str = "warning") -> QLabel:
    """A wrapped message strip (kind "warning" or "info"), hidden until it has text."""
    label = QLabel()
    label.setObjectName(object_name)
    label.setProperty("banner", kind)
    label.setWordWrap(True)
    from PySide6.QtCore import Qt  # not at the top: the main window's frame does without it

    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setVisible(False)
    return label


def set_banner(label: QLabel, messages: Iterable[str], prefix: str = "⚠ ") -> None:
    text = "\n".join(f"{prefix}{m}" for m in messages)
    label.setText(text)
    label.setVisible(bool(text))


def set_invalid(widget: QWidget, invalid: bool) -> None:
    widget.setProperty("invalid", invalid)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


class FieldErrorLabels:
    """A red message under each form field; shows the service's field errors."""

    def __init__(self) -> None:
        self._labels: dict[str, QLabel] = {}
        self._fields: dict[str, QWidget] = {}

    def label_for(self, field: str, widget: QWidget) -> QLabel:
        label = QLabel()
        label.setObjectName("fieldError")
        label.setAccessibleName(f"{field} error")
        label.setWordWrap(True)
        label.setVisible(False)
        self._labels[field] = label
        self._fields[field] = widget
        return label

    def clear(self) -> None:
        for field, label in self._labels.items():
            label.clear()
            label.setVisible(False)
            set_invalid(self._fields[field], False)

    def show(self, errors: Iterable[FieldError]) -> list[str]:
        """Show each error at its field; return the messages that have no field here."""
        self.clear()
        grouped: dict[str, list[str]] = {}
        for error in errors:
            grouped.setdefault(error.field, []).append(error.message)
        leftover: list[str] = []
        for field, messages in grouped.items():
            if field in self._labels:
                self._labels[field].setText("\n".join(messages))
                self._labels[field].setVisible(True)
                set_invalid(self._fields[field], True)
            else:
                leftover.extend(messages)
        return leftover

    def message(self, field: str) -> str:
        return self._labels[field].text()

    def fields(self) -> Mapping[str, QWidget]:
        return self._fields


def per_hour_text(dose_mcg_per_day: float) -> str:
    """The hourly rate beside a daily dose: two decimals, rounded half up as people round
    (75/24 = 3.13), the same on every screen and on the printed card."""
    from pumpclinic.domain.reservoir import mcg_per_hour  # not needed for the first paint

    rate = Decimal(repr(mcg_per_hour(dose_mcg_per_day)))
    return f"{rate.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)} mcg/h"
