"""Administration page: user accounts and clinic settings, driven through real widgets."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from PySide6.QtCore import QModelIndex, Qt, QTime
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QTabWidget, QWidget

from pumpclinic.domain.clinic import REFILL_SAFETY_MARGIN_DAYS_RANGE, ClinicSettingsData
from pumpclinic.domain.enums import Role
from pumpclinic.services.errors import AuthenticationFailed
from pumpclinic.ui.admin import (
    ACCESS_MESSAGE,
    AdminPage,
    HolidaysTableModel,
    ResetPasswordDialog,
    UserDialog,
    UsersTableModel,
)
from pumpclinic.ui.bus import DataBus
from tests.conftest import PASSWORDS

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def bus() -> DataBus:
    return DataBus()


@pytest.fixture
def page(qtbot, services, admin, bus) -> AdminPage:
    widget = AdminPage(services, admin, bus)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _cell(page: AdminPage, username: str, column: int) -> str:
    proxy = page.users_tab.proxy
    for row in range(proxy.rowCount()):
        if proxy.index(row, UsersTableModel.USERNAME).data() == username:
            return proxy.index(row, column).data()
    raise AssertionError(f"{username} is not in the users table")


def _usernames(page: AdminPage) -> list[str]:
    proxy = page.users_tab.proxy
    return [proxy.index(row, 0).data() for row in range(proxy.rowCount())]


def _click_user(qtbot, page: AdminPage, username: str) -> None:
    table = page.users_tab.table
    proxy = page.users_tab.proxy
    for row in range(proxy.rowCount()):
        index = proxy.index(row, UsersTableModel.FULL_NAME)
        if proxy.index(row, UsersTableModel.USERNAME).data() == username:
            table.scrollTo(index)
            qtbot.mouseClick(table.viewport(), LEFT, pos=table.visualRect(index).center())
            assert page.users_tab.selected_user().username == username
            return
    raise AssertionError(f"{username} is not in the users table")


def _top(widget: QWidget) -> int:
    return widget.mapToGlobal(widget.rect().topLeft()).y()


def _open_new_user_dialog(qtbot, page: AdminPage) -> UserDialog:
    qtbot.mouseClick(page.users_tab.new_button, LEFT)
    dialog = page.users_tab.findChild(UserDialog)
    assert dialog is not None and dialog.isVisible()
    return dialog


def _fill_user(
    qtbot, dialog: UserDialog, username: str, name: str, password: str, confirm: str
) -> None:
    for edit, text in (
        (dialog.username_edit, username),
        (dialog.full_name_edit, name),
        (dialog.password_edit, password),
        (dialog.confirm_edit, confirm),
    ):
        edit.clear()
        qtbot.keyClicks(edit, text)


# --- models -------------------------------------------------------------------------------


def test_users_model_passes_the_model_tester(qtmodeltester, services, admin, nurse) -> None:
    model = UsersTableModel()
    model.set_users(services.users.list_users(admin), services.context.now(), dt.UTC)
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(6)] == [
        "Username",
        "Full name",
        "Role",
        "Status",
        "Last sign-in",
        "Must change password",
    ]


def test_holidays_model_passes_the_model_tester(qtmodeltester) -> None:
    model = HolidaysTableModel()
    model.set_holidays([(dt.date(2026, 12, 25), "Christmas Day")])
    model.add(dt.date(2026, 1, 1), "New Year's Day")
    qtmodeltester.check(model)
    assert model.index(0, 0).data() == "Thu 01 Jan 2026"
    assert model.index(1, 1).data() == "Christmas Day"
    model.remove(0)
    assert model.holidays() == ((dt.date(2026, 12, 25), "Christmas Day"),)
    assert model.index(0, 1, QModelIndex()).data() == "Christmas Day"


# --- users --------------------------------------------------------------------------------


def test_users_table_shows_role_status_and_last_sign_in(
    qtbot, services, admin, nurse, clinician, staff, clock
) -> None:
    clock.advance(minutes=30)
    services.users.authenticate("nina", PASSWORDS[Role.NURSE])
    # Five wrong passwords lock the front-desk account for five minutes.
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            services.users.authenticate("stef", "wrong-pass-9")
    carl = next(u for u in services.users.list_users(admin) if u.username == "carl")
    services.users.set_active(admin, carl.id, False)
    page = AdminPage(services, admin, DataBus())
    qtbot.addWidget(page)

    assert _usernames(page) == ["admin", "carl", "nina", "stef"]
    assert _cell(page, "nina", UsersTableModel.ROLE) == "Nurse"
    assert _cell(page, "stef", UsersTableModel.ROLE) == "Front desk"
    assert _cell(page, "admin", UsersTableModel.STATUS) == "Active"
    assert _cell(page, "carl", UsersTableModel.STATUS) == "Deactivated"
    # The clinic is in Europe/London, which is UTC in November; the clock says 10:30.
    assert _cell(page, "stef", UsersTableModel.STATUS) == "Locked until 10:35"
    assert _cell(page, "nina", UsersTableModel.LAST_SIGN_IN) == "26 Nov 2026 10:30"
    assert _cell(page, "carl", UsersTableModel.LAST_SIGN_IN) == "26 Nov 2026 10:00"
    assert _cell(page, "admin", UsersTableModel.LAST_SIGN_IN) == "never"
    assert _cell(page, "nina", UsersTableModel.MUST_CHANGE) == "yes"
    assert _cell(page, "admin", UsersTableModel.MUST_CHANGE) == "no"
    assert page.users_tab.count_label.text() == "4 users (1 deactivated)"

    page.users_tab.table.sortByColumn(UsersTableModel.LAST_SIGN_IN, Qt.SortOrder.DescendingOrder)
    assert _usernames(page)[0] == "nina"
    assert _usernames(page)[-1] == "admin"
    qtbot.keyClicks(page.users_tab.filter_edit, "front")
    assert _usernames(page) == ["stef"]


def test_last_sign_in_is_shown_in_the_clinic_time_zone(qtbot, services, admin, nurse) -> None:
    settings, version = services.settings.get()
    services.settings.update(admin, replace(settings, time_zone="America/New_York"), version)
    page = AdminPage(services, admin, DataBus())
    qtbot.addWidget(page)
    assert _cell(page, "nina", UsersTableModel.LAST_SIGN_IN) == "26 Nov 2026 05:00"


def test_admin_creates_a_user_through_the_dialog(qtbot, services, page, bus) -> None:
    assert not page.users_tab.reset_button.isEnabled()
    assert not page.users_tab.active_button.isEnabled()
    dialog = _open_new_user_dialog(qtbot, page)
    assert [dialog.role_combo.itemText(i) for i in range(dialog.role_combo.count())] == [
        "Nurse",
        "Clinician",
        "Front desk",
        "Administrator",
    ]
    _fill_user(qtbot, dialog, "mpatel", "Dr Meera Patel", "meera-pass-1", "meera-pass-1")
    dialog.role_combo.setCurrentIndex(dialog.role_combo.findText("Clinician"))
    with qtbot.waitSignal(bus.changed) as notice:
        qtbot.mouseClick(dialog.ok_button, LEFT)

    assert dialog.result() == QDialog.DialogCode.Accepted
    assert not dialog.isVisible()
    assert "user" in notice.args[0]
    assert _cell(page, "mpatel", UsersTableModel.FULL_NAME) == "Dr Meera Patel"
    assert _cell(page, "mpatel", UsersTableModel.ROLE) == "Clinician"
    assert _cell(page, "mpatel", UsersTableModel.MUST_CHANGE) == "yes"
    assert page.users_tab.selected_user().username == "mpatel"
    actor = services.users.authenticate("mpatel", "meera-pass-1")
    assert actor.role is Role.CLINICIAN
    assert actor.must_change_password


def test_ctrl_n_opens_the_new_user_dialog(qtbot, page) -> None:
    page.users_tab.table.setFocus()
    qtbot.keyClick(page.users_tab.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert page.users_tab.findChild(UserDialog) is not None


def test_short_password_is_shown_under_the_password_and_the_dialog_stays_open(
    qtbot, services, admin, page
) -> None:
    dialog = _open_new_user_dialog(qtbot, page)
    _fill_user(qtbot, dialog, "mpatel", "Dr Meera Patel", "short1", "short1")
    qtbot.mouseClick(dialog.ok_button, LEFT)

    assert dialog.isVisible()
    assert "at least 8 characters" in dialog.errors.message("password")
    assert dialog.errors.message("username") == ""
    shown = [label for label in dialog.findChildren(QLabel, "fieldError") if label.isVisible()]
    assert [label.text() for label in shown] == [dialog.errors.message("password")]
    # The message sits between the password field and the confirmation field.
    assert _top(dialog.password_edit) < _top(shown[0]) < _top(dialog.confirm_edit)
    assert "mpatel" not in _usernames(page)
    assert [u.username for u in services.users.list_users(admin)] == ["admin"]

    # Correcting the password clears the message and creates the account.
    dialog.password_edit.clear()
    dialog.confirm_edit.clear()
    qtbot.keyClicks(dialog.password_edit, "meera-pass-1")
    qtbot.keyClicks(dialog.confirm_edit, "meera-pass-1")
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert not dialog.isVisible()
    assert "mpatel" in _usernames(page)


def test_taken_username_is_shown_under_the_username(qtbot, services, admin, nurse, page) -> None:
    dialog = _open_new_user_dialog(qtbot, page)
    _fill_user(qtbot, dialog, "nina", "Another Nina", "other-pass-1", "other-pass-1")
    qtbot.mouseClick(dialog.ok_button, LEFT)

    assert dialog.isVisible()
    assert dialog.errors.message("username") == "Username 'nina' is already taken."
    assert dialog.errors.message("password") == ""
    assert dialog.username_edit.property("invalid") is True
    assert len(services.users.list_users(admin)) == 2


def test_mismatched_confirmation_is_shown_under_confirm(qtbot, services, admin, page) -> None:
    dialog = _open_new_user_dialog(qtbot, page)
    _fill_user(qtbot, dialog, "mpatel", "Dr Meera Patel", "meera-pass-1", "meera-pass-2")
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert dialog.isVisible()
    assert dialog.errors.message("confirm") == "The two passwords do not match."
    assert [u.username for u in services.users.list_users(admin)] == ["admin"]


def test_reset_password_makes_the_user_change_it(qtbot, services, nurse, page) -> None:
    services.users.change_password(
        nurse, PASSWORDS[Role.NURSE], "nina-own-pass-2", "nina-own-pass-2"
    )
    page.users_tab.reload()
    assert _cell(page, "nina", UsersTableModel.MUST_CHANGE) == "no"

    _click_user(qtbot, page, "nina")
    assert page.users_tab.reset_button.isEnabled()
    qtbot.mouseClick(page.users_tab.reset_button, LEFT)
    dialog = page.users_tab.findChild(ResetPasswordDialog)
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.password_edit, "temporary-7")
    qtbot.keyClicks(dialog.confirm_edit, "temporary-8")
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert dialog.isVisible()
    assert dialog.errors.message("confirm") == "The two passwords do not match."

    dialog.confirm_edit.clear()
    qtbot.keyClicks(dialog.confirm_edit, "temporary-7")
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert not dialog.isVisible()
    assert _cell(page, "nina", UsersTableModel.MUST_CHANGE) == "yes"
    actor = services.users.authenticate("nina", "temporary-7")
    assert actor.must_change_password
    with pytest.raises(AuthenticationFailed):
        services.users.authenticate("nina", "nina-own-pass-2")


def test_deactivate_asks_first_then_the_user_cannot_sign_in(
    qtbot, services, nurse, page, monkeypatch
) -> None:
    questions: list[str] = []
    answers = iter([False, True])

    def confirm(text: str) -> bool:
        questions.append(text)
        return next(answers)

    monkeypatch.setattr(page.users_tab, "confirm", confirm)
    _click_user(qtbot, page, "nina")
    button = page.users_tab.active_button
    assert button.text().replace("&", "") == "Deactivate"

    qtbot.mouseClick(button, LEFT)  # answered No: nothing changes
    assert "Nina Nurse" in questions[0]
    assert _cell(page, "nina", UsersTableModel.STATUS) == "Active"
    services.users.authenticate("nina", PASSWORDS[Role.NURSE])

    qtbot.mouseClick(button, LEFT)  # answered Yes
    assert _cell(page, "nina", UsersTableModel.STATUS) == "Deactivated"
    assert button.text().replace("&", "") == "Reactivate"
    with pytest.raises(AuthenticationFailed):
        services.users.authenticate("nina", PASSWORDS[Role.NURSE])

    qtbot.mouseClick(button, LEFT)  # reactivating needs no confirmation
    assert len(questions) == 2
    assert _cell(page, "nina", UsersTableModel.STATUS) == "Active"
    assert services.users.authenticate("nina", PASSWORDS[Role.NURSE]).username == "nina"


def test_admin_cannot_deactivate_their_own_account(
    qtbot, services, admin, page, monkeypatch
) -> None:
    monkeypatch.setattr(page.users_tab, "confirm", lambda text: True)
    _click_user(qtbot, page, "admin")
    qtbot.mouseClick(page.users_tab.active_button, LEFT)

    box = page.findChild(QMessageBox, "knownErrorBox")
    assert box is not None and box.isVisible()
    assert box.text() == "You cannot deactivate your own account."
    box.close()
    assert _cell(page, "admin", UsersTableModel.STATUS) == "Active"
    assert services.users.authenticate("admin", PASSWORDS[Role.ADMIN]).username == "admin"


# --- clinic settings ----------------------------------------------------------------------


def test_settings_form_shows_the_saved_settings(services, page) -> None:
    tab = page.settings_tab
    settings, _version = services.settings.get()
    assert tab.form_data() == settings
    assert tab.clinic_name_edit.text() == "ITB Clinic"
    assert tab.time_zone_combo.currentText() == "Europe/London"
    assert tab.opens_edit.time() == QTime(8, 0)
    assert tab.margin_spin.minimum() == REFILL_SAFETY_MARGIN_DAYS_RANGE[0]
    assert tab.margin_spin.maximum() == REFILL_SAFETY_MARGIN_DAYS_RANGE[1]
    assert tab.margin_spin.suffix() == " days"
    assert tab.idle_spin.suffix() == " min"
    assert [c.text() for c in tab.weekday_checks.values()] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]


def test_change_margin_and_weekdays_then_save(qtbot, services, page, bus) -> None:
    page.show_tab("settings")
    tab = page.settings_tab
    tab.margin_spin.setFocus()
    tab.margin_spin.selectAll()
    qtbot.keyClicks(tab.margin_spin, "10")
    tab.weekday_checks[1].click()  # Monday off
    tab.weekday_checks[6].click()  # Saturday on
    tab.clinic_name_edit.clear()
    qtbot.keyClicks(tab.clinic_name_edit, "Northgate ITB Service")
    tab.time_zone_combo.setCurrentText("America/Chicago")
    assert tab.status_label.text() == "Unsaved changes"

    with qtbot.waitSignal(bus.changed) as notice:
        qtbot.mouseClick(tab.save_button, LEFT)

    assert "settings" in notice.args[0]
    saved, _version = services.settings.get()
    assert saved.refill_safety_margin_days == 10
    assert saved.open_weekdays == frozenset({2, 3, 4, 5, 6})
    assert saved.clinic_name == "Northgate ITB Service"
    assert saved.time_zone == "America/Chicago"
    assert tab.status_label.text().startswith("✓ Saved")
    assert tab.form_data() == saved


def test_closing_before_opening_is_refused_at_the_closing_time(qtbot, services, page) -> None:
    tab = page.settings_tab
    before = services.settings.get()
    tab.closes_edit.setTime(QTime(7, 30))
    tab.margin_spin.setValue(3)
    qtbot.mouseClick(tab.save_button, LEFT)

    assert tab.errors.message("closes_at") == (
        "Closing time (07:30) must be after opening time (08:00)."
    )
    assert tab.errors.message("refill_safety_margin_days") == ""
    assert tab.closes_edit.property("invalid") is True
    assert not tab.status_label.text().startswith("✓")
    assert services.settings.get() == before


def test_unknown_time_zone_is_refused_at_the_time_zone(qtbot, services, page) -> None:
    tab = page.settings_tab
    before = services.settings.get()
    tab.time_zone_combo.setCurrentText("Mars/Olympus")
    qtbot.mouseClick(tab.save_button, LEFT)
    assert "not an IANA zone" in tab.errors.message("time_zone")
    assert services.settings.get() == before


# The completer's popup asks the offscreen platform for things it cannot do.
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_time_zone_completer_finds_zones_by_any_part(qtbot, page) -> None:
    page.show_tab("settings")
    combo = page.settings_tab.time_zone_combo
    combo.clearEditText()
    qtbot.keyClicks(combo.lineEdit(), "chicago")
    completions = combo.completer().completionModel()
    found = [completions.index(row, 0).data() for row in range(completions.rowCount())]
    assert found == ["America/Chicago"]


def test_holidays_are_added_removed_and_saved(qtbot, services, page) -> None:
    tab = page.settings_tab
    tab.holiday_date_edit.setDate(dt.date(2026, 12, 25))
    qtbot.keyClicks(tab.holiday_name_edit, "Christmas Day")
    qtbot.mouseClick(tab.holiday_add_button, LEFT)
    tab.holiday_date_edit.setDate(dt.date(2026, 12, 24))
    qtbot.keyClicks(tab.holiday_name_edit, "Staff training")
    qtbot.mouseClick(tab.holiday_add_button, LEFT)
    tab.holiday_date_edit.setDate(dt.date(2026, 12, 25))
    qtbot.keyClicks(tab.holiday_name_edit, "Twice")
    qtbot.mouseClick(tab.holiday_add_button, LEFT)
    assert "already listed" in tab.errors.message("holidays")
    assert tab.holidays_model.rowCount() == 2

    # The first row (24 Dec, kept in date order) is removed.
    tab.holidays_table.selectRow(0)
    qtbot.mouseClick(tab.holiday_remove_button, LEFT)
    qtbot.mouseClick(tab.save_button, LEFT)
    saved, _version = services.settings.get()
    assert saved.holidays == ((dt.date(2026, 12, 25), "Christmas Day"),)


def test_stale_settings_offer_a_reload(qtbot, services, admin, page) -> None:
    page.show_tab("settings")
    tab = page.settings_tab
    # Someone else saves after the form was loaded.
    current, version = services.settings.get()
    services.settings.update(admin, replace(current, observation_beds=5), version)

    tab.margin_spin.setValue(12)
    qtbot.mouseClick(tab.save_button, LEFT)
    assert tab.stale_banner.isVisible()
    assert "changed by someone else" in tab.stale_banner.text()
    assert tab.reload_button.isVisible()
    assert services.settings.get()[0].refill_safety_margin_days == 7

    qtbot.mouseClick(tab.reload_button, LEFT)
    assert not tab.stale_banner.isVisible()
    assert tab.beds_spin.value() == 5
    assert tab.margin_spin.value() == 7
    tab.margin_spin.setValue(12)
    qtbot.mouseClick(tab.save_button, LEFT)
    saved, _version = services.settings.get()
    assert (saved.observation_beds, saved.refill_safety_margin_days) == (5, 12)


# --- access -------------------------------------------------------------------------------


def test_a_nurse_sees_only_the_explanation(qtbot, services, nurse) -> None:
    page = AdminPage(services, nurse, DataBus())
    qtbot.addWidget(page)
    page.show()
    assert page.findChild(QTabWidget) is None
    assert page.users_tab is None and page.settings_tab is None
    assert page.access_banner.isVisible()
    assert page.access_banner.text() == ACCESS_MESSAGE


def test_settings_defaults_match_the_domain(services, page) -> None:
    assert page.settings_tab.form_data() == ClinicSettingsData()
