"""The main window: navigation on the left, one page at a time, who and where below.

It comes on screen in two steps, so that the clinic sees it at once: the frame (navigation,
menus, status bar) needs nothing from the database, and ``start_session`` brings the
signed-in user and the pages. Each page is built, with its data, the first time it is shown,
behind a "Loading …" note in its place; a page that cannot be built says why in that place,
with "Try again". The Alerts page is built once the first page is on screen (at once when
that page failed or will not be painted soon), so that the navigation shows how many alerts
there are.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, cast

# Not the Qt namespace (its enums take a noticeable part of the first paint): the frame
# does without it; the session and the pages import it.
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, plain_message
from pumpclinic.ui.startup import FirstPaint
from pumpclinic.ui.widgets import banner, button, page_header, set_banner

if TYPE_CHECKING:
    from pumpclinic.services.clinic import Services
    from pumpclinic.services.context import Actor
    from pumpclinic.ui.admin import AdminPage
    from pumpclinic.ui.alerts import AlertsPage
    from pumpclinic.ui.booking import RefillsPage
    from pumpclinic.ui.idle_lock import IdleTimer, UnlockDialog
    from pumpclinic.ui.patients import PatientsPage
    from pumpclinic.ui.screening import ScreeningPage
    from pumpclinic.ui.today import TodayPage

NAVIGATION = (
    ("today", "Today"),
    ("patients", "Patients"),
    ("refills", "Refills"),
    ("screening", "Screening"),
    ("alerts", "Alerts"),
    ("admin", "Admin"),
)
_TITLES = dict(NAVIGATION)

log = logging.getLogger("pumpclinic")


class PageUnavailable(RuntimeError):
    """A page could not be built; its place in the window says why."""


class PageLoading(QWidget):
    """A page's place in the window until the page and its data are there, or why they
    could not be loaded, with "Try again" (``retry``)."""

    retry = Signal()

    def __init__(self, key: str, title: str) -> None:
        super().__init__()
        self.key = key
        self.title = title
        self.failed = False
        self.setObjectName(f"{key}Loading")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(24, 18, 24, 18)
        header = page_header(title, f"Loading {title}…")
        self.subtitle_label = cast("QLabel", header.findChild(QLabel, "pageSubtitle"))
        self._layout.addWidget(header)
        self._layout.addStretch(1)
        # Made when first needed: the frame's first paint does without them.
        self.error_note: QLabel | None = None
        self.try_again_button: QPushButton | None = None

    def show_error(self, message: str) -> None:
        if self.error_note is None or self.try_again_button is None:
            self.error_note = banner(f"{self.key}LoadError")
            self.try_again_button = button("Try again", f"{self.key}TryAgain")
            self.try_again_button.clicked.connect(self.retry)
            row = QHBoxLayout()
            row.addWidget(self.try_again_button)
            row.addStretch(1)
            self._layout.insertWidget(1, self.error_note)
            self._layout.insertLayout(2, row)
        self.failed = True
        self.subtitle_label.setText("Not loaded.")
        set_banner(self.error_note, [f"{self.title} could not be loaded: {message}"])
        self.try_again_button.setVisible(True)
        self.try_again_button.setFocus()

    def show_loading(self) -> None:
        self.failed = False
        self.subtitle_label.setText(f"Loading {self.title}…")
        if self.error_note is not None and self.try_again_button is not None:
            set_banner(self.error_note, [])
            self.try_again_button.setVisible(False)


class SigningIn(QWidget):
    """The window's content while the password is checked and the clinic opened."""

    def __init__(self, username: str) -> None:
        super().__init__()
        self.setObjectName("signingIn")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.addWidget(page_header("PumpClinic", f"Signing in as {username}…"))
        layout.addStretch(1)


class MainWindow(QMainWindow):
    """Given ``services`` and ``actor``, the window of that signed-in session; without them
    (``signing_in_as`` a username) the frame alone, until ``start_session``.

    ``content_ready`` is emitted once, when the first page shown with its data has been
    painted; ``started`` once the Alerts page has been built too (or could not be) and the
    navigation shows the alert count: the end of start-up. ``started`` follows
    ``content_ready`` when the first page is painted at once; it does not wait for a first
    page that failed, was clicked past or is hidden before it could be painted.
    """

    content_ready = Signal()
    started = Signal()

    def __init__(
        self,
        services: Services | None = None,
        actor: Actor | None = None,
        bus: DataBus | None = None,
        parent: QWidget | None = None,
        *,
        signing_in_as: str = "",
        database_label: str = "",
    ) -> None:
        super().__init__(parent)
        if (services is None) != (actor is None):
            raise ValueError("give both the services and the signed-in user, or neither")
        self.setObjectName("mainWindow")
        self.services: Services | None = None
        self.actor: Actor | None = None
        self.bus = bus or DataBus(self)
        self.setWindowTitle("PumpClinic")
        self.resize(1280, 800)

        central = self.central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        sidebar = QWidget()
        sidebar.setFixedWidth(170)
        sidebar.setObjectName("sidebar")
        sidebar_layout = QVBoxLayout(sidebar)
        sidebar_layout.setContentsMargins(0, 0, 0, 0)
        sidebar_layout.setSpacing(0)
        brand = QLabel("PumpClinic")
        brand.setObjectName("brand")
        self.clinic_label = QLabel()
        self.clinic_label.setObjectName("brandSub")
        self.clinic_label.setWordWrap(True)
        sidebar_layout.addWidget(brand)
        sidebar_layout.addWidget(self.clinic_label)
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setAccessibleName("Navigation")
        sidebar_layout.addWidget(self.navigation, 1)
        row.addWidget(sidebar)

        self.pages = QStackedWidget()
        self.pages.setObjectName("pages")
        row.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.page_index: dict[str, int] = {}
        self._built: dict[str, QWidget] = {}
        self._build_queued: set[str] = set()
        self._content_shown = False
        # The first page's paint, until it has been painted.
        self._first_paint: FirstPaint | None = None
        self._alert_count_queued = False
        for number, (key, title) in enumerate(NAVIGATION, start=1):
            placeholder = PageLoading(key, title)
            placeholder.retry.connect(lambda k=key: self._try_again(k))
            self.page_index[key] = self.pages.addWidget(placeholder)
            item = QListWidgetItem(title)
            item.setToolTip(f"{title} (Ctrl+{number})")
            self.navigation.addItem(item)
        self.signing_in = SigningIn(signing_in_as)
        self.pages.addWidget(self.signing_in)
        self.pages.setCurrentWidget(self.signing_in)
        self.navigation.setEnabled(False)
        self.navigation.currentRowChanged.connect(self._row_changed)
        self._build_menu()
        self._build_status_bar(signing_in_as, database_label)
        self.bus.changed.connect(self._on_changed)
        self.unlock_dialog: UnlockDialog | None = None
        self.idle_timer: IdleTimer | None = None
        if services is not None and actor is not None:
            self.start_session(services, actor)

    def start_session(self, services: Services, actor: Actor) -> None:
        """The user is signed in: show who, where, and the first page (built next)."""
        from PySide6.QtCore import Qt

        from pumpclinic.ui.idle_lock import IdleTimer

        if self.services is not None:
            raise RuntimeError("this window already has a session")
        self.services = services
        self.actor = actor
        settings, _version = services.settings.get()
        self.setWindowTitle(f"PumpClinic — {settings.clinic_name}")
        self.clinic_label.setText(settings.clinic_name)
        self.user_label.setText(f"Signed in: {actor.full_name} ({actor.username})")
        self.role_label.setText(f"Role: {actor.role.label}")
        self.database_label.setText(f"Database: {services.context.database_label}")
        self._show_zone(settings.time_zone)
        self.change_password_action.setEnabled(True)
        self.idle_timer = IdleTimer(settings.idle_lock_minutes, self)
        self.idle_timer.idle.connect(self.lock)
        self.pages.removeWidget(self.signing_in)
        self.signing_in.deleteLater()
        self.navigation.setEnabled(True)
        # The alert count makes the longest entry: it comes with the session.
        self.navigation.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._add_shortcuts()
        self.show_page("admin" if actor.role.value == "admin" else "patients")

    # --- pages, each built when first shown ---------------------------------------------

    def _row_changed(self, row: int) -> None:
        self.pages.setCurrentIndex(row)
        if self._first_paint is not None:  # the first page, clicked past before its paint
            self._queue_alert_count()
        key = self.current_page_key()
        placeholder = self._placeholder(key)
        # A page that could not be built waits for "Try again".
        if placeholder is not None and not placeholder.failed and self.services is not None:
            self._queue_build(key)

    def _placeholder(self, key: str) -> PageLoading | None:
        if not key or key in self._built:
            return None
        widget = self.pages.widget(self.page_index[key])
        return widget if isinstance(widget, PageLoading) else None

    def _try_again(self, key: str) -> None:
        placeholder = self._placeholder(key)
        if placeholder is not None:
            placeholder.show_loading()
            self._queue_build(key)

    def _queue_build(self, key: str) -> None:
        # After this turn of the event loop, so that the "Loading …" note is painted first.
        if key not in self._build_queued:
            self._build_queued.add(key)
            QTimer.singleShot(0, self, lambda: self._build_queued_page(key))

    def _build_queued_page(self, key: str) -> None:
        self._build_queued.discard(key)
        # A page clicked past before it was built waits until it is shown again.
        placeholder = self._placeholder(key)
        if placeholder is not None and not placeholder.failed and key == self.current_page_key():
            self._build(key)

    def page(self, key: str) -> QWidget:
        """The page, built now (with its data) if it was not yet. If it cannot be built, its
        place in the window says why and PageUnavailable is raised."""
        page = self._built.get(key) or self._build(key)
        if page is None:
            raise PageUnavailable(f"the {_TITLES[key]} page could not be built")
        return page

    def _build(self, key: str) -> QWidget | None:
        """Build the page in its place; None, with the reason in its place, if it fails."""
        if self.services is None or self.actor is None:
            raise RuntimeError("no page before the user is signed in")
        index = self.page_index[key]
        placeholder = self.pages.widget(index)
        showing = self.pages.currentIndex() == index
        try:
            page = self._make_page(key, self.services, self.actor)
        except Exception as error:  # a locked database, or a bug: never a blank page
            log.error("the %s page could not be built", key, exc_info=error)
            if isinstance(placeholder, PageLoading):
                placeholder.show_error(plain_message(error))
            if showing and not self._content_shown:
                self._queue_alert_count()
            return None
        self._built[key] = page
        self.pages.insertWidget(index, page)
        if placeholder is not None:
            self.pages.removeWidget(placeholder)
            placeholder.deleteLater()
        if showing:
            self.pages.setCurrentIndex(index)
            if not self._content_shown:
                self._content_shown = True
                self._first_paint = FirstPaint(page)
                self._first_paint.painted.connect(self._first_content_painted)
                if not page.isVisible() or self.isMinimized():  # no paint to wait for
                    self._queue_alert_count()
        self._connect_page(key, page)
        return page

    def _first_content_painted(self) -> None:
        self._first_paint = None
        self.content_ready.emit()
        self._queue_alert_count()

    def _queue_alert_count(self) -> None:
        # The Alerts page next, for the alert count on the navigation.
        if not self._alert_count_queued:
            self._alert_count_queued = True
            QTimer.singleShot(0, self, self._finish_start)

    def _finish_start(self) -> None:
        if "alerts" not in self._built:
            self._build("alerts")  # if it fails, its place says why; the rest still works
        self.started.emit()

    def _make_page(self, key: str, services: Services, actor: Actor) -> QWidget:
        if key == "patients":
            from pumpclinic.ui.patients import PatientsPage

            return PatientsPage(services, actor, self.bus)
        if key == "screening":
            from pumpclinic.ui.screening import ScreeningPage

            return ScreeningPage(services, actor, self.bus)
        if key == "refills":
            from pumpclinic.ui.booking import RefillsPage

            return RefillsPage(services, actor, self.bus)
        if key == "today":
            from pumpclinic.ui.today import TodayPage

            return TodayPage(services, actor, self.bus)
        if key == "alerts":
            from pumpclinic.ui.alerts import AlertsPage

            return AlertsPage(services, actor, self.bus, clock=services.context.clock)
        if key == "admin":
            from pumpclinic.ui.admin import AdminPage

            return AdminPage(services, actor, self.bus)
        raise ValueError(f"no page {key!r}")

    def _connect_page(self, key: str, page: QWidget) -> None:
        if key == "today":
            today = cast("TodayPage", page)
            today.show_alerts.connect(self._show_alerts)
            today.open_patient.connect(self._open_patient)
        elif key == "alerts":
            alerts = cast("AlertsPage", page)
            alerts.open_patient.connect(self._open_patient)
            alerts.counts_changed.connect(self._show_alert_counts)
            if alerts.result is not None:  # its first evaluation ran before this connection
                self._show_alert_counts(dict(alerts.result.counts))

    @property
    def today_page(self) -> TodayPage:
        return cast("TodayPage", self.page("today"))

    @property
    def patients_page(self) -> PatientsPage:
        return cast("PatientsPage", self.page("patients"))

    @property
    def refills_page(self) -> RefillsPage:
        return cast("RefillsPage", self.page("refills"))

    @property
    def screening_page(self) -> ScreeningPage:
        return cast("ScreeningPage", self.page("screening"))

    @property
    def alerts_page(self) -> AlertsPage:
        return cast("AlertsPage", self.page("alerts"))

    @property
    def admin_page(self) -> AdminPage:
        return cast("AdminPage", self.page("admin"))

    def is_built(self, key: str) -> bool:
        return key in self._built

    def _show_alerts(self, severity: object) -> None:
        alerts = self._built.get("alerts") or self._build("alerts")
        if alerts is not None:
            cast("AlertsPage", alerts).set_severity_filter(severity)  # type: ignore[arg-type]
        self.show_page("alerts")

    def _open_patient(self, patient_id: int) -> None:
        self.show_page("patients")
        patients = self._built.get("patients") or self._build("patients")
        if patients is not None:
            cast("PatientsPage", patients).open_patient(patient_id)

    def _show_alert_counts(self, counts: object) -> None:
        """'Alerts (12)' on the navigation item; marked and red when any is critical."""
        from pumpclinic.domain.alerts import Severity

        by_severity = counts if isinstance(counts, dict) else {}
        total = sum(by_severity.values())
        critical = by_severity.get(Severity.CRITICAL, 0)
        item = self.navigation.item(self.page_index["alerts"])
        text = "Alerts" if not total else f"Alerts ({total})"
        if critical:
            text = f"⚠ {text}"
        item.setText(text)
        item.setForeground(QColor("#ff8a80") if critical else QColor("#dfe7ef"))
        item.setToolTip(
            ", ".join(f"{n} {s.value}" for s, n in by_severity.items() if n) or "No alerts"
        )

    def show_page(self, key: str) -> None:
        if self.services is not None:
            self.navigation.setCurrentRow(self.page_index[key])

    def current_page_key(self) -> str:
        row = self.navigation.currentRow()
        return NAVIGATION[row][0] if 0 <= row < len(NAVIGATION) else ""

    def _add_shortcuts(self) -> None:
        # With the session: before it there is nothing to go to, and the key types take a
        # noticeable part of the first paint.
        for number, (key, _title) in enumerate(NAVIGATION, start=1):
            action = QAction(self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.triggered.connect(lambda _checked=False, k=key: self.show_page(k))
            self.addAction(action)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)

    def _build_menu(self) -> None:
        account = self.menuBar().addMenu("&Account")
        change = self.change_password_action = account.addAction("Change &password…")
        change.setObjectName("changePasswordAction")
        change.triggered.connect(self.change_password)
        change.setEnabled(False)
        account.addSeparator()
        self.quit_action = account.addAction("&Quit")
        self.quit_action.triggered.connect(self.close)
        help_menu = self.menuBar().addMenu("&Help")
        about = help_menu.addAction("&About PumpClinic")
        about.triggered.connect(self._about)

    def _build_status_bar(self, username: str, database_label: str) -> None:
        bar = self.statusBar()
        self.user_label = QLabel(f"Signing in: {username}…" if username else "")
        self.user_label.setObjectName("statusUser")
        self.role_label = QLabel()
        self.role_label.setObjectName("statusRole")
        self.zone_label = QLabel()
        self.zone_label.setObjectName("statusZone")
        self.database_label = QLabel(f"Database: {database_label}" if database_label else "")
        self.database_label.setObjectName("statusDatabase")
        for label in (self.user_label, self.role_label, self.zone_label):
            bar.addWidget(label)
        bar.addPermanentWidget(self.database_label)

    def _show_zone(self, time_zone: str) -> None:
        import zoneinfo

        services = self._session()[0]
        now = services.context.now().astimezone(zoneinfo.ZoneInfo(time_zone))
        offset = now.strftime("%z")
        self.zone_label.setText(f"Clinic time zone: {time_zone} (UTC{offset[:3]}:{offset[3:]})")

    def _session(self) -> tuple[Services, Actor]:
        if self.services is None or self.actor is None:
            raise RuntimeError("no one is signed in yet")
        return self.services, self.actor

    # --- idle lock ----------------------------------------------------------------------

    def is_locked(self) -> bool:
        return self.unlock_dialog is not None

    def lock(self) -> None:
        """Hide every page behind the unlock dialog until the user's password is given."""
        from pumpclinic.ui.idle_lock import UnlockDialog

        if self.is_locked() or self.idle_timer is None:
            return
        services, actor = self._session()
        self.idle_timer.pause()
        self.central.setVisible(False)
        if self._first_paint is not None:  # locked before the first page was painted
            self._queue_alert_count()
        dialog = UnlockDialog(services, actor, self)
        dialog.accepted.connect(self._unlocked)
        dialog.rejected.connect(self.close)
        self.unlock_dialog = dialog
        dialog.open()

    def _unlocked(self) -> None:
        self.unlock_dialog = None
        self.central.setVisible(True)
        if self.idle_timer is not None:
            self.idle_timer.resume()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if "settings" in entities and self.services is not None:
            services = self.services
            settings = guarded(self, lambda: services.settings.get())
            if settings is not None:
                data, _version = settings
                if self.idle_timer is not None:
                    self.idle_timer.set_minutes(data.idle_lock_minutes)
                self.setWindowTitle(f"PumpClinic — {data.clinic_name}")
                self.clinic_label.setText(data.clinic_name)
                self._show_zone(data.time_zone)

    def change_password(self) -> None:
        from pumpclinic.ui.login import ChangePasswordDialog

        services, actor = self._session()
        dialog = ChangePasswordDialog(services, actor, required=False, parent=self)
        if dialog.exec():
            self.actor = dialog.actor

    def _about(self) -> None:
        database = self.database_label.text().removeprefix("Database: ")
        QMessageBox.about(
            self,
            "About PumpClinic",
            "PumpClinic keeps intrathecal baclofen pumps from running dry: reservoir "
            "forecasts, refills, screening trials and overdue-refill alerts.\n\n"
            f"Database: {database}\n"
            f"Today: {dt.date.today():%d %b %Y}",
        )
