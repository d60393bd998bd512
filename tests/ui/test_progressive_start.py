"""The main window on screen before the clinic is open, pages built with their data when
first shown, and the sign-in dialog on screen before the database is opened."""

from __future__ import annotations

import datetime as dt
import logging
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from pumpclinic.domain.enums import Role
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.errors import DatabaseUnavailable
from pumpclinic.ui import app as app_module
from pumpclinic.ui.login import ChangePasswordDialog, LoginDialog
from pumpclinic.ui.main_window import NAVIGATION, MainWindow, PageUnavailable
from pumpclinic.ui.startup import FirstPaint
from tests.conftest import PASSWORDS
from tests.services.refill_fixtures import implanted_patient


def _add_patients(services, actor, count: int) -> None:
    for number in range(count):
        services.patients.create_patient(
            actor,
            PatientInput(
                mrn=f"RIV-{number:06d}",
                family_name=f"Family{number}",
                given_name="Alex",
                date_of_birth=dt.date(1980, 1, 1 + number),
                spasticity_origin="spinal",
                diagnosis="Multiple sclerosis",
            ),
        )


def _painted(qtbot, window) -> None:
    seen: list[bool] = []
    watcher = FirstPaint(window)
    watcher.painted.connect(lambda: seen.append(True))
    window.show()
    qtbot.waitUntil(lambda: bool(seen))


def _subtitle(widget) -> str:
    label = widget.findChild(QLabel, "pageSubtitle")
    return label.text() if label is not None else ""


@pytest.fixture
def frame(qtbot):
    window = MainWindow(signing_in_as="nina", database_label="/srv/clinic.sqlite3")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    return window


def test_the_window_is_painted_before_the_session_with_nothing_clinical(qtbot, frame) -> None:
    _painted(qtbot, frame)

    assert frame.pages.currentWidget().objectName() == "signingIn"
    assert "Signing in as nina" in _subtitle(frame.pages.currentWidget())
    assert frame.user_label.text() == "Signing in: nina…"
    assert frame.database_label.text() == "Database: /srv/clinic.sqlite3"
    assert [frame.navigation.item(i).text() for i in range(frame.navigation.count())] == [
        title for _key, title in NAVIGATION
    ]
    assert not frame.navigation.isEnabled()
    assert not frame.change_password_action.isEnabled()
    # Nothing can be opened before the password has been checked.
    frame.show_page("patients")
    qtbot.keyClick(frame, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.wait(20)
    assert frame.pages.currentWidget().objectName() == "signingIn"
    assert not any(frame.is_built(key) for key, _title in NAVIGATION)
    with pytest.raises(RuntimeError):
        frame.page("patients")


def test_pages_load_after_the_sign_in_and_show_their_data(
    qtbot, frame, services, nurse, clinician
) -> None:
    _add_patients(services, clinician, 3)
    _painted(qtbot, frame)

    frame.start_session(services, nurse)
    # The first page's place says it is loading until the page has its data.
    assert frame.pages.currentWidget().objectName() == "patientsLoading"
    assert _subtitle(frame.pages.currentWidget()) == "Loading Patients…"
    assert "Nina Nurse" in frame.user_label.text()
    assert frame.role_label.text() == "Role: Nurse"
    assert frame.navigation.isEnabled()
    with qtbot.waitSignal(frame.content_ready, timeout=10_000):
        pass
    page = frame.pages.currentWidget()
    assert page.objectName() == "patientsPage"
    assert page is frame.patients_page
    assert page.model.rowCount() == 3
    assert page.count_label.text() == "3 patients"
    # Then the Alerts page, for the count on the navigation; the other pages wait.
    with qtbot.waitSignal(frame.started, timeout=10_000):
        pass
    assert frame.is_built("alerts")
    assert not frame.is_built("today") and not frame.is_built("screening")


def test_clicking_around_before_the_pages_load_opens_the_last_page_clicked(
    qtbot, frame, services, nurse
) -> None:
    _painted(qtbot, frame)
    frame.start_session(services, nurse)
    for key in ("today", "refills", "screening"):  # faster than any page loads
        frame.show_page(key)
    assert frame.pages.currentWidget().objectName() == "screeningLoading"
    qtbot.waitUntil(lambda: frame.pages.currentWidget().objectName() == "screeningPage")
    assert frame.current_page_key() == "screening"
    # Pages clicked past are built when shown again.
    assert not frame.is_built("today") and not frame.is_built("refills")
    frame.show_page("today")
    qtbot.waitUntil(lambda: frame.pages.currentWidget().objectName() == "todayPage")
    assert frame.is_built("today") and not frame.is_built("refills")


def test_a_page_asked_for_by_another_is_built_at_once(qtbot, services, nurse) -> None:
    window = MainWindow(services, nurse)
    qtbot.addWidget(window)
    assert not window.is_built("alerts")
    window.today_page.show_alerts.emit(None)  # "All alerts…" on the Today page
    assert window.current_page_key() == "alerts"
    assert window.pages.currentWidget() is window.alerts_page


def _implanted_pumps_with_alerts(services, nurse, clinician, clock) -> None:
    """Two pumps: five days on, one due soon (info) and one empty (critical)."""
    implanted_patient(services, nurse, clinician, mrn="RIV-000100")
    implanted_patient(services, nurse, clinician, mrn="RIV-000200", dose_mcg_per_day=800)
    clock.advance(days=5)


def _alerts_entry(window) -> str:
    return window.navigation.item(window.page_index["alerts"]).text()


def test_a_page_that_cannot_be_loaded_says_why_and_loads_when_tried_again(
    qtbot, frame, services, nurse, clinician, clock, monkeypatch
) -> None:
    import pumpclinic.ui.patients as patients_module

    _implanted_pumps_with_alerts(services, nurse, clinician, clock)
    real_init = patients_module.PatientsPage.__init__
    broken = [True]

    def init(page, *args, **kwargs) -> None:
        if broken[0]:
            raise RuntimeError("a bug in the Patients page")
        real_init(page, *args, **kwargs)

    monkeypatch.setattr(patients_module.PatientsPage, "__init__", init)
    ready: list[bool] = []
    frame.content_ready.connect(lambda: ready.append(True))
    _painted(qtbot, frame)
    with qtbot.waitSignal(frame.started, timeout=10_000):
        frame.start_session(services, nurse)
    # The alert count comes although the first page could not be loaded.
    assert frame.is_built("alerts")
    assert _alerts_entry(frame) == "⚠ Alerts (2)"
    place = frame.pages.currentWidget()
    assert place.objectName() == "patientsLoading"
    assert _subtitle(place) == "Not loaded."
    note = place.findChild(QLabel, "patientsLoadError")
    assert note is not None and note.isVisible()
    assert note.text() == "⚠ Patients could not be loaded: PumpClinic hit an unexpected problem."
    assert "Traceback" not in note.text() and "bug" not in note.text()
    assert ready == []  # no page with its data was painted
    with pytest.raises(PageUnavailable):
        frame.page("patients")
    # Going elsewhere and back does not try again by itself; the other pages still work.
    frame.show_page("today")
    qtbot.waitUntil(lambda: frame.pages.currentWidget().objectName() == "todayPage")
    frame.show_page("patients")
    assert frame.pages.currentWidget() is place and note.isVisible()

    broken[0] = False
    try_again = place.findChild(QPushButton, "patientsTryAgain")
    assert try_again is not None and try_again.isVisible()
    qtbot.mouseClick(try_again, Qt.MouseButton.LeftButton)
    assert _subtitle(place) == "Loading Patients…" and not note.isVisible()
    qtbot.waitUntil(lambda: frame.pages.currentWidget().objectName() == "patientsPage")
    assert frame.patients_page.model.rowCount() == 2


def test_an_alerts_page_that_cannot_be_loaded_leaves_the_rest_working(
    qtbot, frame, services, nurse, clinician, clock, monkeypatch
) -> None:
    _implanted_pumps_with_alerts(services, nurse, clinician, clock)
    _painted(qtbot, frame)
    frame.start_session(services, nurse)
    with qtbot.waitSignal(frame.content_ready, timeout=10_000):
        pass
    real_get = services.settings.get

    def locked():
        raise DatabaseUnavailable("The database is locked by another workstation.")

    monkeypatch.setattr(services.settings, "get", locked)
    with qtbot.waitSignal(frame.started, timeout=10_000):
        pass
    assert not frame.is_built("alerts")
    assert _alerts_entry(frame) == "Alerts"
    assert frame.pages.currentWidget().objectName() == "patientsPage"
    frame.show_page("alerts")
    place = frame.pages.currentWidget()
    note = place.findChild(QLabel, "alertsLoadError")
    assert note is not None and note.isVisible()
    assert note.text() == (
        "⚠ Alerts could not be loaded: The database is locked by another workstation."
    )

    monkeypatch.setattr(services.settings, "get", real_get)
    qtbot.mouseClick(place.findChild(QPushButton, "alertsTryAgain"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: frame.pages.currentWidget().objectName() == "alertsPage")
    assert _alerts_entry(frame) == "⚠ Alerts (2)"


def test_the_alert_count_does_not_wait_for_a_first_page_that_is_not_painted(
    qtbot, services, nurse, clinician, clock
) -> None:
    _implanted_pumps_with_alerts(services, nurse, clinician, clock)
    window = MainWindow(services, nurse)  # never shown: its pages are never painted
    qtbot.addWidget(window)
    ready: list[bool] = []
    window.content_ready.connect(lambda: ready.append(True))
    with qtbot.waitSignal(window.started, timeout=10_000):
        pass
    assert window.is_built("patients") and window.is_built("alerts")
    assert _alerts_entry(window) == "⚠ Alerts (2)"
    assert ready == []


def test_the_sign_in_dialog_is_painted_before_the_clinic_is_opened(
    qtbot, services, nurse, monkeypatch
) -> None:
    seen_when_opening: list[bool] = []

    def open_clinic() -> app_module.OpenedClinic:
        dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, LoginDialog)]
        seen_when_opening.append(any(d.isVisible() for d in dialogs))
        raise DatabaseUnavailable("The database file is locked by another program.")

    with pytest.raises(DatabaseUnavailable, match="locked"):
        app_module.run_gui(open_clinic)
    assert seen_when_opening == [True]
    assert not any(
        w.isVisible() for w in QApplication.topLevelWidgets() if isinstance(w, LoginDialog)
    )


@pytest.mark.sqlite_only
def test_a_database_failing_while_signing_in_is_shown_in_a_window_too(
    qtbot, services, nurse, db_path, tmp_path, monkeypatch, capsys
) -> None:
    from pumpclinic import cli
    from pumpclinic.services.users import UserService
    from pumpclinic.ui.errors import set_log_path

    boxes: list[str] = []
    monkeypatch.setattr(app_module, "show_startup_error", boxes.append)
    monkeypatch.setattr(cli, "log_path", lambda: tmp_path / "log" / "pumpclinic.log")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)

    def locked(users) -> bool:
        raise DatabaseUnavailable("The database is locked by another workstation.")

    monkeypatch.setattr(UserService, "needs_first_admin", locked)
    app = QApplication.instance()
    look = app.styleSheet(), app.style().name()
    handlers = list(logging.getLogger("pumpclinic").handlers)
    try:
        status = cli.main(["--db", str(db_path)])
    finally:
        for handler in logging.getLogger("pumpclinic").handlers:
            if handler not in handlers:
                logging.getLogger("pumpclinic").removeHandler(handler)
                handler.close()
        set_log_path(None)
        app.setStyleSheet(look[0])
        app.setStyle(look[1])
    assert status == 2
    assert boxes == ["The database is locked by another workstation."]
    assert "error: The database is locked by another workstation." in capsys.readouterr().err
    assert not any(w.isVisible() for w in QApplication.topLevelWidgets())


def test_a_database_failing_as_the_window_opens_is_shown_and_raised(
    qtbot, services, nurse, monkeypatch
) -> None:
    boxes: list[str] = []
    monkeypatch.setattr(app_module, "show_startup_error", boxes.append)
    real_get = services.settings.get
    calls: list[int] = []

    def get_then_locked():
        calls.append(1)
        if len(calls) == 1:  # the sign-in dialog's clinic name
            return real_get()
        raise DatabaseUnavailable("The database is locked by another workstation.")

    monkeypatch.setattr(services.settings, "get", get_then_locked)

    def step(visible) -> bool:
        for widget in visible:
            if isinstance(widget, LoginDialog) and widget.ok_button.isEnabled():
                widget.ok_button.click()
            if isinstance(widget, ChangePasswordDialog):
                widget.old.setText(PASSWORDS[Role.NURSE])
                widget.new.setText("nina-own-pass-2")
                widget.confirm.setText("nina-own-pass-2")
                widget.ok_button.click()
                return True
        return False

    with pytest.raises(DatabaseUnavailable, match="locked"):
        _run_gui_with(qtbot, services, ("nina", PASSWORDS[Role.NURSE]), step)
    assert len(calls) == 2  # the main window's start asked for the settings
    assert boxes == ["The database is locked by another workstation."]
    assert not any(w.isVisible() for w in QApplication.topLevelWidgets())


def test_typing_while_the_clinic_opens_is_kept(qtbot, services, nurse) -> None:
    dialog = LoginDialog(None, "")
    qtbot.addWidget(dialog)
    dialog.show()
    assert "Opening the clinic database" in dialog.subtitle_label.text()
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.username, "nina")
    dialog.submit()  # Enter before the clinic is open: told to wait, not signed in
    assert dialog.actor is None and dialog.isVisible()
    assert "still being opened" in dialog.error_banner.text()

    dialog.set_clinic(services, "Riverside ITB Clinic", "demo-nurse", "demo-pass-1")
    assert dialog.windowTitle() == "Sign in — Riverside ITB Clinic"
    assert dialog.username.text() == "nina"  # what was typed is kept
    assert dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.password, PASSWORDS[Role.NURSE])
    with qtbot.waitSignal(dialog.accepted):
        dialog.ok_button.click()
    assert dialog.actor is not None and dialog.actor.username == "nina"


STUCK = 99


def _run_gui_with(qtbot, services, prefill, step) -> tuple[int, list[MainWindow]]:
    """run_gui on ``services``; ``step(dialogs)`` runs every 20 ms with the visible
    top-level widgets until it returns True; the main windows opened are returned."""
    from PySide6.QtCore import QTimer

    windows: list[MainWindow] = []

    def tick() -> None:
        visible = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
        windows.extend(w for w in visible if isinstance(w, MainWindow) and w not in windows)
        if step(visible):
            timer.stop()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    # A flow that never gets where the test expects fails the test instead of hanging it.
    stuck = QTimer()
    stuck.setSingleShot(True)
    stuck.timeout.connect(lambda: QApplication.exit(STUCK))
    stuck.start(60_000)
    try:
        status = app_module.run_gui(lambda: app_module.OpenedClinic(services, prefill))
    finally:
        timer.stop()
        stuck.stop()
        for window in windows:
            window.close()
            window.deleteLater()
    return status, windows


def test_signing_in_through_the_dialog_shown_before_the_clinic_opened(
    qtbot, services, nurse
) -> None:
    offered: list[str] = []

    def step(visible) -> bool:
        for widget in visible:
            if isinstance(widget, LoginDialog) and widget.ok_button.isEnabled():
                offered.append(widget.username.text())
                widget.ok_button.click()
            if isinstance(widget, ChangePasswordDialog):  # her first sign-in
                widget.old.setText(PASSWORDS[Role.NURSE])
                widget.new.setText("nina-own-pass-2")
                widget.confirm.setText("nina-own-pass-2")
                widget.ok_button.click()
            if isinstance(widget, MainWindow):
                QApplication.exit(0)
                return True
        return False

    status, windows = _run_gui_with(qtbot, services, ("nina", PASSWORDS[Role.NURSE]), step)
    assert status == 0
    assert offered == ["nina"]  # the account offered once the clinic was open
    assert len(windows) == 1 and windows[0].actor is not None
    assert windows[0].actor.username == "nina"


def test_a_new_database_asks_for_the_first_administrator_instead(qtbot, services) -> None:
    seen: list[str] = []

    def step(visible) -> bool:
        for widget in visible:
            if widget.objectName() == "loginDialog":
                seen.append("login")
            if type(widget).__name__ == "FirstRunDialog":
                seen.append("first run")
                widget.reject()  # the user gives up
                return True
        return False

    status, windows = _run_gui_with(qtbot, services, None, step)
    assert status == 0 and windows == []
    assert seen[-1] == "first run"
