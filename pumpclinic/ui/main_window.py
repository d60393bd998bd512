"""The main window: navigation on the left, one page at a time, who and where below."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.alerts import Severity
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.ui.admin import AdminPage
from pumpclinic.ui.alerts import AlertsPage
from pumpclinic.ui.booking import RefillsPage
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded
from pumpclinic.ui.idle_lock import IdleTimer, UnlockDialog
from pumpclinic.ui.login import ChangePasswordDialog
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


class MainWindow(QMainWindow):
    def __init__(
        self,
        services: Services,
        actor: Actor,
        bus: DataBus | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.services = services
        self.actor = actor
        self.bus = bus or DataBus(self)
        settings, _version = services.settings.get()
        self.setWindowTitle(f"PumpClinic — {settings.clinic_name}")
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
        self.clinic_label = QLabel(settings.clinic_name)
        self.clinic_label.setObjectName("brandSub")
        self.clinic_label.setWordWrap(True)
        sidebar_layout.addWidget(brand)
        sidebar_layout.addWidget(self.clinic_label)
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setAccessibleName("Navigation")
        self.navigation.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        sidebar_layout.addWidget(self.navigation, 1)
        row.addWidget(sidebar)

        self.pages = QStackedWidget()
        self.pages.setObjectName("pages")
        row.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.page_index: dict[str, int] = {}
        for number, (key, title) in enumerate(NAVIGATION, start=1):
            widget = self._make_page(key)
            self.page_index[key] = self.pages.addWidget(widget)
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(f"{title} (Ctrl+{number})")
            self.navigation.addItem(item)
            action = QAction(self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.triggered.connect(lambda _checked=False, k=key: self.show_page(k))
            self.addAction(action)
        self.navigation.currentRowChanged.connect(self.pages.setCurrentIndex)
        self._connect_pages()
        self._build_menu()
        self._build_status_bar(settings.time_zone)
        self.bus.changed.connect(self._on_changed)
        self.unlock_dialog: UnlockDialog | None = None
        self.idle_timer = IdleTimer(settings.idle_lock_minutes, self)
        self.idle_timer.idle.connect(self.lock)
        self.show_page("admin" if actor.role.value == "admin" else "patients")

    def _make_page(self, key: str) -> QWidget:
        if key == "patients":
            self.patients_page = PatientsPage(self.services, self.actor, self.bus)
            return self.patients_page
        if key == "screening":
            self.screening_page = ScreeningPage(self.services, self.actor, self.bus)
            return self.screening_page
        if key == "refills":
            self.refills_page = RefillsPage(self.services, self.actor, self.bus)
            return self.refills_page
        if key == "today":
            self.today_page = TodayPage(self.services, self.actor, self.bus)
            return self.today_page
        if key == "alerts":
            self.alerts_page = AlertsPage(
                self.services, self.actor, self.bus, clock=self.services.context.clock
            )
            return self.alerts_page
        if key == "admin":
            self.admin_page = AdminPage(self.services, self.actor, self.bus)
            return self.admin_page
        raise ValueError(f"no page {key!r}")

    def _connect_pages(self) -> None:
        self.today_page.show_alerts.connect(self._show_alerts)
        for source in (self.today_page, self.alerts_page):
            source.open_patient.connect(self._open_patient)
        self.alerts_page.counts_changed.connect(self._show_alert_counts)
        self.alerts_page.refresh()  # its first evaluation ran before this connection

    def _show_alerts(self, severity: object) -> None:
        self.alerts_page.set_severity_filter(severity)  # type: ignore[arg-type]
        self.show_page("alerts")

    def _open_patient(self, patient_id: int) -> None:
        self.show_page("patients")
        self.patients_page.open_patient(patient_id)

    def _show_alert_counts(self, counts: object) -> None:
        """'Alerts (12)' on the navigation item; marked and red when any is critical."""
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
        self.navigation.setCurrentRow(self.page_index[key])

    def current_page_key(self) -> str:
        item = self.navigation.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item else ""

    def _build_menu(self) -> None:
        account = self.menuBar().addMenu("&Account")
        change = account.addAction("Change &password…")
        change.setObjectName("changePasswordAction")
        change.triggered.connect(self.change_password)
        account.addSeparator()
        quit_action = account.addAction("&Quit")
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        help_menu = self.menuBar().addMenu("&Help")
        about = help_menu.addAction("&About PumpClinic")
        about.triggered.connect(self._about)

    def _build_status_bar(self, time_zone: str) -> None:
        bar = self.statusBar()
        self.user_label = QLabel(f"Signed in: {self.actor.full_name} ({self.actor.username})")
        self.user_label.setObjectName("statusUser")
        self.role_label = QLabel(f"Role: {self.actor.role.label}")
        self.role_label.setObjectName("statusRole")
        self.zone_label = QLabel()
        self.zone_label.setObjectName("statusZone")
        self.database_label = QLabel(f"Database: {self.services.context.database_label}")
        self.database_label.setObjectName("statusDatabase")
        for label in (self.user_label, self.role_label, self.zone_label):
            bar.addWidget(label)
        bar.addPermanentWidget(self.database_label)
        self._show_zone(time_zone)

    def _show_zone(self, time_zone: str) -> None:
        import zoneinfo

        now = self.services.context.now().astimezone(zoneinfo.ZoneInfo(time_zone))
        offset = now.strftime("%z")
        self.zone_label.setText(f"Clinic time zone: {time_zone} (UTC{offset[:3]}:{offset[3:]})")

    # --- idle lock ----------------------------------------------------------------------

    def is_locked(self) -> bool:
        return self.unlock_dialog is not None

    def lock(self) -> None:
        """Hide every page behind the unlock dialog until the user's password is given."""
        if self.is_locked():
            return
        self.idle_timer.pause()
        self.central.setVisible(False)
        dialog = UnlockDialog(self.services, self.actor, self)
        dialog.accepted.connect(self._unlocked)
        dialog.rejected.connect(self.close)
        self.unlock_dialog = dialog
        dialog.open()

    def _unlocked(self) -> None:
        self.unlock_dialog = None
        self.central.setVisible(True)
        self.idle_timer.resume()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if "settings" in entities:
            settings = guarded(self, lambda: self.services.settings.get())
            if settings is not None:
                data, _version = settings
                self.idle_timer.set_minutes(data.idle_lock_minutes)
                self.setWindowTitle(f"PumpClinic — {data.clinic_name}")
                self.clinic_label.setText(data.clinic_name)
                self._show_zone(data.time_zone)

    def change_password(self) -> None:
        dialog = ChangePasswordDialog(self.services, self.actor, required=False, parent=self)
        if dialog.exec():
            self.actor = dialog.actor

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About PumpClinic",
            "PumpClinic keeps intrathecal baclofen pumps from running dry: reservoir "
            "forecasts, refills, screening trials and overdue-refill alerts.\n\n"
            f"Database: {self.services.context.database_label}\n"
            f"Today: {dt.date.today():%d %b %Y}",
        )
