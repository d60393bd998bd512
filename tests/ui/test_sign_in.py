"""First run, sign-in and the main window shell."""

from __future__ import annotations

from PySide6.QtCore import Qt

from pumpclinic.domain.enums import Role
from pumpclinic.ui.login import FirstRunDialog, LoginDialog
from pumpclinic.ui.main_window import NAVIGATION, MainWindow
from tests.conftest import PASSWORDS


def test_first_run_creates_the_admin_and_names_the_clinic(qtbot, services) -> None:
    dialog = FirstRunDialog(services)
    qtbot.addWidget(dialog)
    dialog.clinic_name.clear()
    qtbot.keyClicks(dialog.clinic_name, "Northgate Spasticity Service")
    dialog.time_zone.setCurrentText("America/Chicago")
    qtbot.keyClicks(dialog.full_name, "Grace Hopper")
    qtbot.keyClicks(dialog.username, "grace")
    qtbot.keyClicks(dialog.password, "short")
    qtbot.keyClicks(dialog.confirm, "short")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert "at least 8 characters" in dialog.errors.message("password")
    assert services.users.needs_first_admin()

    dialog.password.clear()
    dialog.confirm.clear()
    qtbot.keyClicks(dialog.password, "grace-pass-1")
    qtbot.keyClicks(dialog.confirm, "grace-pass-1")
    with qtbot.waitSignal(dialog.accepted):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.actor is not None and dialog.actor.role is Role.ADMIN
    settings, _version = services.settings.get()
    assert settings.clinic_name == "Northgate Spasticity Service"
    assert settings.time_zone == "America/Chicago"


def test_first_run_refuses_an_unknown_time_zone(qtbot, services) -> None:
    dialog = FirstRunDialog(services)
    qtbot.addWidget(dialog)
    dialog.time_zone.setCurrentText("Mars/Olympus")
    qtbot.keyClicks(dialog.full_name, "Grace Hopper")
    qtbot.keyClicks(dialog.username, "grace")
    qtbot.keyClicks(dialog.password, "grace-pass-1")
    qtbot.keyClicks(dialog.confirm, "grace-pass-1")
    dialog.ok_button.click()
    assert "not an IANA zone" in dialog.errors.message("time_zone")
    assert services.users.needs_first_admin()


def test_login_with_wrong_then_right_password(qtbot, services, admin) -> None:
    dialog = LoginDialog(services, "Clinic")
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.username, "admin")
    qtbot.keyClicks(dialog.password, "wrong-pass-1")
    dialog.ok_button.click()
    assert dialog.actor is None
    assert "wrong password" in dialog.error_banner.text()
    assert dialog.password.text() == ""
    qtbot.keyClicks(dialog.password, PASSWORDS[Role.ADMIN])
    with qtbot.waitSignal(dialog.accepted):
        dialog.ok_button.click()
    assert dialog.actor is not None and dialog.actor.username == "admin"


def test_main_window_navigation_and_status_bar(qtbot, services, nurse) -> None:
    window = MainWindow(services, nurse)
    qtbot.addWidget(window)
    window.show()
    assert [window.navigation.item(i).text() for i in range(window.navigation.count())] == [
        title for _key, title in NAVIGATION
    ]
    assert window.current_page_key() == "patients"
    assert "Nina Nurse" in window.user_label.text()
    assert window.role_label.text() == "Role: Nurse"
    assert "Europe/London" in window.zone_label.text()
    assert services.context.database_label in window.database_label.text()
    window.show_page("alerts")
    # Built with its data once its "Loading …" note is on screen.
    qtbot.waitUntil(lambda: window.pages.currentWidget().objectName() == "alertsPage")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page_key() == "today"


def test_admin_starts_on_the_admin_page(qtbot, services, admin) -> None:
    window = MainWindow(services, admin)
    qtbot.addWidget(window)
    assert window.current_page_key() == "admin"


def test_idle_window_locks_and_only_the_password_unlocks(qtbot, services, nurse) -> None:
    window = MainWindow(services, nurse)
    qtbot.addWidget(window)
    window.show()
    assert window.idle_timer.timer.interval() == 15 * 60_000  # the clinic default
    window.idle_timer.set_minutes(0.002)  # 120 ms
    qtbot.waitUntil(window.is_locked, timeout=3000)
    assert not window.centralWidget().isVisible()
    dialog = window.unlock_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.password, "wrong-pass-9")
    dialog.ok_button.click()
    assert window.is_locked()
    assert "wrong password" in dialog.error_banner.text()
    qtbot.keyClicks(dialog.password, PASSWORDS[Role.NURSE])
    dialog.ok_button.click()
    assert not window.is_locked()
    assert window.centralWidget().isVisible()


def test_activity_postpones_the_lock(qtbot, services, nurse) -> None:
    window = MainWindow(services, nurse)
    qtbot.addWidget(window)
    window.show()
    window.idle_timer.set_minutes(1 / 60)  # 1 s
    for _ in range(8):  # 1.6 s of activity in all, never 1 s apart
        qtbot.wait(200)
        qtbot.keyClick(window.navigation, Qt.Key.Key_Down)
    assert not window.is_locked()
    qtbot.waitUntil(window.is_locked, timeout=3000)
