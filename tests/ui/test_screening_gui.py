"""Screening trials through the GUI on a real SQLite clinic: plan with the start checks, give
the doses 24 h apart, observe, decide; the board's live countdowns; the urgent banner.

The clock starts Thu 26 Nov 2026 10:00 (GMT, so London = UTC); the clinic is open Mon–Fri
08:00–18:00 with 2 observation beds.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from PySide6.QtCore import QDate, QPoint, Qt, QTime
from PySide6.QtWidgets import QCheckBox, QWidget

from pumpclinic.domain.enums import DoseResponse, TrialStatus
from pumpclinic.domain.patients import PatientInput
from pumpclinic.domain.screening import TrialStage
from pumpclinic.services.screening import ObservationInput
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.screening import (
    BaselineChangeModel,
    BoardPhase,
    DosesModel,
    EffectChoiceModel,
    GiveDoseDialog,
    MomentField,
    ObservationsModel,
    PlanTrialDialog,
    ProposalModel,
    ScreeningBoardModel,
    ScreeningPage,
    StopTrialDialog,
    TrialDialog,
    TrialPanel,
    open_plan_trial,
    open_trial,
    patient_trial_id,
    per_hour_text,
)

LONDON = zoneinfo.ZoneInfo("Europe/London")
LEFT = Qt.MouseButton.LeftButton
HOUR = dt.timedelta(hours=1)


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=LONDON)


THU = at(11, 26, 10)  # the clock's start
FRI = at(11, 27, 10)
MON = at(11, 30, 8)  # dose 3: the clinic is closed at the weekend


@pytest.fixture
def bus() -> DataBus:
    return DataBus()


def new_patient(services, nurse, mrn: str = "SCR-000101", **changes: object) -> int:
    data: dict[str, object] = {
        "mrn": mrn,
        "family_name": "Mensah",
        "given_name": "Kofi",
        "date_of_birth": dt.date(1988, 6, 14),
        "spasticity_origin": "cerebral",
        "diagnosis": "Cerebral palsy (spastic diplegia)",
    }
    data.update(changes)
    return services.patients.create_patient(nurse, PatientInput(**data)).id  # type: ignore[arg-type]


def plan(services, clinician, patient_id: int, first_dose_at: dt.datetime = THU):
    checks = services.screening.start_checks(clinician, patient_id, False)
    return services.screening.plan_trial(
        clinician, patient_id, "standard", first_dose_at, False, checks
    )


def give(services, clinician, trial, number: int, given_at: dt.datetime):
    return services.screening.give_dose(
        clinician, trial.id, trial.version, number, given_at, f"LOT-{number}"
    )


def show(qtbot, widget: QWidget, width: int = 1180, height: int = 800) -> None:
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)


def set_moment(field: MomentField, moment: dt.datetime) -> None:
    local = moment.astimezone(LONDON)
    field.date.setDate(QDate(local.year, local.month, local.day))
    field.time.setTime(QTime(local.hour, local.minute))


def screening_page(qtbot, services, actor, bus) -> ScreeningPage:
    page = ScreeningPage(services, actor, bus)
    show(qtbot, page, 1280, 800)
    return page


def board_texts(page: ScreeningPage, row: int = 0) -> list[str]:
    model = page.board_model
    return [model.index(row, c).data() for c in range(model.columnCount())]


def tick(qtbot, box: QCheckBox) -> None:
    """Click the box's indicator, as a user does."""
    qtbot.mouseClick(box, LEFT, pos=QPoint(8, box.height() // 2))


def open_dialog(qtbot, dialog):
    assert dialog is not None
    qtbot.waitExposed(dialog)
    return dialog


def record_response(qtbot, panel: TrialPanel, response: DoseResponse, hours: float = 0):
    dialog = open_dialog(qtbot, panel.record_response())
    button = dialog.positive if response is DoseResponse.POSITIVE else dialog.inadequate
    qtbot.mouseClick(button, LEFT)
    if hours:
        dialog.effect_hours.setValue(hours)
    with qtbot.waitSignal(dialog.decided):
        qtbot.mouseClick(dialog.save_button, LEFT)
    return dialog


def give_through_dialog(qtbot, panel: TrialPanel, lot: str, given_at: dt.datetime | None = None):
    dialog = open_dialog(qtbot, panel.give_dose())
    qtbot.keyClicks(dialog.lot, lot)
    if given_at is not None:
        set_moment(dialog.given_at, given_at)
    with qtbot.waitSignal(dialog.given):
        qtbot.mouseClick(dialog.save_button, LEFT)
    return dialog


# --- the whole trial --------------------------------------------------------------------------


def test_plan_three_doses_observations_and_not_a_candidate(
    qtbot, services, clock, nurse, clinician, bus
) -> None:
    patient_id = new_patient(
        services,
        nurse,
        medicine_codes=frozenset({"codeine"}),
        condition_codes=frozenset({"epilepsy"}),
    )

    # Plan: the start checks must be ticked; the proposal skips the weekend and says why.
    dialog = PlanTrialDialog(services, clinician, patient_id, bus=bus)
    show(qtbot, dialog, 860, 760)
    titles = [box.text() for box in dialog.check_boxes.values()]
    assert [box.objectName() for box in dialog.check_boxes.values()] == [
        "startCheck-interacting-medicine-codeine",
        "startCheck-precaution-condition-epilepsy",
    ]
    assert titles == ["Acknowledged — Interacting medicine", "Acknowledged — Precaution"]
    assert "Codeine" in dialog.check_boxes["interacting-medicine:codeine"].accessibleName()
    proposal = dialog.proposal_model.proposal()
    assert proposal is not None
    assert [d.at for d in proposal.doses] == [THU, FRI, MON]
    reason = dialog.proposal_model.index(2, ProposalModel.REASON)
    assert reason.data() == "no: see why below"
    tip = reason.data(Qt.ItemDataRole.ToolTipRole)
    assert "closed on Saturdays" in tip and "next allowed: Mon 30 Nov 08:00" in tip
    assert dialog.proposal_model.index(1, ProposalModel.REASON).data() == "yes, exactly"
    assert "Dose 3: 24 h later is Sat 28 Nov 10:00" in dialog.reasons.text()
    assert dialog.first_dose.moment() == THU

    tick(qtbot, dialog.check_boxes["interacting-medicine:codeine"])
    qtbot.mouseClick(dialog.plan_button, LEFT)
    message = dialog.errors.message("acknowledged")
    assert message.startswith("Acknowledge: Epilepsy")
    assert dialog.result_trial is None
    assert services.screening.trials_for_patient(clinician, patient_id) == []

    tick(qtbot, dialog.check_boxes["precaution-condition:epilepsy"])
    with qtbot.waitSignal(dialog.planned) as planned, qtbot.waitSignal(bus.changed):
        qtbot.mouseClick(dialog.plan_button, LEFT)
    trial = planned.args[0]
    assert [d.planned_at for d in trial.doses] == [THU, FRI, MON]
    assert len(trial.acknowledged_checks) == 2 and trial.checks_acknowledged_by == "carl"

    # The board shows dose 1 due now; the clinician opens the trial from it.
    page = screening_page(qtbot, services, clinician, bus)
    assert board_texts(page)[:5] == [
        "10:00",
        "MENSAH, Kofi",
        "SCR-000101",
        "1: 50 mcg (1 mL)",
        "Due now",
    ]
    page.table.selectRow(0)
    panel = page.panel
    assert panel.trial_id() == trial.id
    assert panel.give_button.text() == "&Give dose 1…"
    assert not panel.response_button.isEnabled()

    # A nurse records the baseline before the dose.
    nurse_panel = TrialPanel(services, nurse, bus)
    show(qtbot, nurse_panel)
    nurse_panel.show_trial(trial.id)
    assert nurse_panel.give_button.isHidden() and nurse_panel.response_button.isHidden()
    baseline = open_dialog(qtbot, nurse_panel.record_observation())
    assert baseline.baseline.isChecked() and baseline.dose_number() == 1
    set_moment(baseline.observed_at, THU - dt.timedelta(minutes=15))
    baseline.set_score("Hip adductors", "L", "3")
    baseline.set_score("Hip adductors", "R", "3")
    baseline.set_score("Knee flexors", "L", "2")
    baseline.set_penn(3)
    baseline.heart_rate.setValue(74)
    with qtbot.waitSignal(baseline.recorded):
        qtbot.mouseClick(baseline.save_button, LEFT)

    # Dose 1 at 10:00.
    give_through_dialog(qtbot, panel, "LOT-A1")
    assert panel.trial().stage is TrialStage.DOSE_GIVEN
    given = panel.doses_model.index(0, DosesModel.WHEN)
    assert given.data() == "Thu 26 Nov 10:00 · carl"
    assert "Lot LOT-A1 · lumbar puncture" in given.data(Qt.ItemDataRole.ToolTipRole)
    assert "Response from 14:00" in panel.action_hint.text()

    # An hour later the nurse records vitals: inside the 2-hour vitals watch.
    clock.current = THU + HOUR
    page.tick()
    vitals = open_dialog(qtbot, nurse_panel.record_observation())
    assert not vitals.baseline.isChecked()
    assert vitals.in_vitals_watch()
    assert "In the vitals watch (10:00–12:00" in vitals.vitals_watch.text()
    vitals.heart_rate.setValue(70)
    vitals.respiratory_rate.setValue(14)
    vitals.spo2.setValue(97)
    with qtbot.waitSignal(vitals.recorded):
        qtbot.mouseClick(vitals.save_button, LEFT)
    model = panel.observations_model
    assert model.rowCount() == 2
    assert [model.index(r, ObservationsModel.KIND).data() for r in range(2)] == ["Baseline", ""]
    assert model.index(0, ObservationsModel.AFTER).data() == "−15 min"
    assert model.index(1, ObservationsModel.AFTER).data() == "+1 h 00 min"
    assert model.index(1, ObservationsModel.SPO2).data() == "97"
    assert model.index(1, ObservationsModel.SPO2).data(Qt.ItemDataRole.BackgroundRole) is not None

    # From 14:00 the response may be recorded: inadequate.
    clock.current = THU + 4 * HOUR + dt.timedelta(minutes=5)
    scores = open_dialog(qtbot, nurse_panel.record_observation())
    assert not scores.in_vitals_watch()
    scores.set_score("Hip adductors", "L", "2")
    scores.set_score("Hip adductors", "R", "3")
    scores.set_penn(3)
    with qtbot.waitSignal(scores.recorded):
        qtbot.mouseClick(scores.save_button, LEFT)
    page.tick()
    assert panel.response_button.isEnabled()
    change = panel.change_model
    rows = [
        [change.index(r, c).data() for c in range(change.columnCount())]
        for r in range(change.rowCount())
    ]
    assert rows == [
        ["Hip adductors (L)", "3", "2", "−1 step"],
        ["Hip adductors (R)", "3", "3", "no change"],
        ["Knee flexors (L)", "2", "—", ""],
        ["Penn spasms", "3", "3", "no change"],
    ]
    decision = record_response(qtbot, panel, DoseResponse.INADEQUATE)
    assert "Dose 2 may follow 24 hours after dose 1" in decision.outcome.text()
    assert panel.trial().next_dose_number == 2
    assert panel.give_button.text() == "&Give dose 2…"

    # Friday: dose 2 at 24 h exactly, then inadequate.
    clock.current = FRI
    page.tick()
    give_through_dialog(qtbot, panel, "LOT-A2", FRI)
    clock.current = FRI + 4 * HOUR + dt.timedelta(minutes=5)
    page.tick()
    record_response(qtbot, panel, DoseResponse.INADEQUATE)

    # Monday 08:00: dose 3; inadequate at the last dose ends the trial.
    clock.current = MON
    page.show_day(MON.date())
    give_through_dialog(qtbot, panel, "LOT-A3", MON)
    clock.current = MON + 4 * HOUR + dt.timedelta(minutes=5)
    page.tick()
    dialog = open_dialog(qtbot, panel.record_response())
    qtbot.mouseClick(dialog.inadequate, LEFT)
    assert "an inadequate response ends the trial" in dialog.outcome.text()
    with qtbot.waitSignal(dialog.decided):
        qtbot.mouseClick(dialog.save_button, LEFT)

    ended = panel.trial()
    assert ended.status is TrialStatus.NOT_CANDIDATE
    assert panel.status.text() == "No adequate response after 3 doses: not a candidate"
    assert "Decided by carl" in panel.decision.text()
    assert not panel.give_button.isEnabled() and not panel.response_button.isEnabled()
    assert not panel.stop_button.isEnabled()
    assert [panel.doses_model.index(r, DosesModel.RESPONSE).data()[:10] for r in range(3)] == [
        "Inadequate"
    ] * 3
    assert board_texts(page)[4] == "Not a candidate"


def test_positive_at_dose_2_with_a_10_hour_effect_suggests_75_mcg_a_day(
    qtbot, services, clock, nurse, clinician, bus
) -> None:
    patient_id = new_patient(services, nurse)
    trial = plan(services, clinician, patient_id)
    trial = give(services, clinician, trial, 1, THU)
    clock.current = THU + 5 * HOUR
    trial = services.screening.record_response(
        clinician, trial.id, trial.version, 1, DoseResponse.INADEQUATE, clock.current, None, ""
    )
    clock.current = FRI
    trial = give(services, clinician, trial, 2, FRI)
    clock.current = FRI + 6 * HOUR

    dialog = open_trial(services, clinician, trial.id, bus=bus)
    qtbot.addWidget(dialog)
    assert isinstance(dialog, TrialDialog)
    panel = dialog.panel
    assert panel.response_button.text() == "Record &response to dose 2…"
    response = open_dialog(qtbot, panel.record_response())
    qtbot.mouseClick(response.positive, LEFT)
    assert response.suggested.isHidden()
    assert "Enter how long the effect lasted" in response.suggested_why.text()
    response.effect_hours.setValue(10)
    assert response.suggested.text() == "75 mcg/day (3.13 mcg/h)"
    assert "1 × the effective dose of 75 mcg" in response.suggested_why.text()
    response.effect_hours.setValue(6)
    assert response.suggested.text() == "150 mcg/day (6.25 mcg/h)"
    response.effect_hours.setValue(10)
    with qtbot.waitSignal(response.decided):
        qtbot.mouseClick(response.save_button, LEFT)

    result = panel.trial()
    assert result.status is TrialStatus.CANDIDATE
    assert result.suggested_starting_dose_mcg_per_day == 75
    assert not panel.suggested_caption.isHidden()
    assert panel.suggested.text() == "75 mcg/day (3.13 mcg/h)"
    assert "Positive response to 75 mcg (dose 2): a candidate" in panel.decision.text()
    assert [d.number for d in result.doses] == [1, 2]
    assert not panel.give_button.isEnabled()
    dialog.close()


def test_a_positive_decision_without_duration_asks_for_it_later(
    qtbot, services, clock, nurse, clinician, bus
) -> None:
    trial = plan(services, clinician, new_patient(services, nurse))
    trial = give(services, clinician, trial, 1, THU)
    clock.current = THU + 5 * HOUR
    panel = TrialPanel(services, clinician, bus)
    show(qtbot, panel)
    panel.show_trial(trial.id)
    record_response(qtbot, panel, DoseResponse.POSITIVE)
    assert panel.suggested.isHidden()
    assert not panel.effect_button.isHidden()
    effect = open_dialog(qtbot, panel.set_effect_duration())
    effect.effect_hours.setValue(9)
    assert effect.suggested.text() == "50 mcg/day (2.08 mcg/h)"
    with qtbot.waitSignal(effect.saved):
        qtbot.mouseClick(effect.save_button, LEFT)
    assert panel.suggested.text() == "50 mcg/day (2.08 mcg/h)"


# --- refusals and warnings --------------------------------------------------------------------


def test_a_dose_23_h_59_min_after_the_last_is_refused_under_the_time(
    qtbot, services, clock, nurse, clinician, bus
) -> None:
    trial = plan(services, clinician, new_patient(services, nurse))
    trial = give(services, clinician, trial, 1, THU)
    clock.current = THU + 5 * HOUR
    trial = services.screening.record_response(
        clinician, trial.id, trial.version, 1, DoseResponse.INADEQUATE, clock.current, None, ""
    )
    clock.current = FRI
    dialog = GiveDoseDialog(services, clinician, trial, bus=bus)
    show(qtbot, dialog, 620, 420)
    assert "Earliest allowed: Fri 27 Nov 10:00" in dialog.earliest.text()
    assert dialog.given_at.moment() == FRI
    qtbot.keyClicks(dialog.lot, "LOT-B2")
    set_moment(dialog.given_at, FRI - dt.timedelta(minutes=1))
    qtbot.mouseClick(dialog.save_button, LEFT)
    message = dialog.errors.message("given_at")
    assert "too early" in message and "Earliest allowed: Fri 27 Nov 2026 10:00 GMT" in message
    assert dialog.error_banner.text() == "⚠ Not saved."
    assert services.screening.trial(clinician, trial.id).dose(2).given_at is None
    assert dialog.isVisible()

    set_moment(dialog.given_at, FRI)
    with qtbot.waitSignal(dialog.given):
        qtbot.mouseClick(dialog.save_button, LEFT)
    assert dialog.result_trial.dose(2).given_at == FRI


def test_an_overdose_sign_raises_the_urgent_banner_with_the_leaflet_signs(
    qtbot, services, clock, nurse, clinician, bus
) -> None:
    trial = plan(services, clinician, new_patient(services, nurse))
    give(services, clinician, trial, 1, THU)
    clock.current = THU + 90 * dt.timedelta(minutes=1)
    page = screening_page(qtbot, services, nurse, bus)
    page.table.selectRow(0)
    panel = page.panel
    assert panel.urgent.isHidden()

    dialog = open_dialog(qtbot, panel.record_observation())
    model = dialog.effects_model
    assert isinstance(model, EffectChoiceModel)
    first = model.index(0)
    assert first.data() == "⚠ Convulsions (seizures)"
    assert first.data(Qt.ItemDataRole.AccessibleTextRole).endswith(
        "an overdose sign (patient leaflet)"
    )
    assert dialog.overdose_warning.isHidden()
    model.set_checked("drowsiness-or-dizziness", True)
    assert not dialog.overdose_warning.isHidden()
    assert "Drowsiness, dizziness, or lightheadedness" in dialog.overdose_warning.text()
    dialog.respiratory_rate.setValue(9)
    with qtbot.waitSignal(dialog.recorded):
        qtbot.mouseClick(dialog.save_button, LEFT)

    assert not panel.urgent.isHidden()
    text = panel.urgent.text()
    assert "URGENT — OVERDOSE SIGNS RECORDED: Drowsiness, dizziness, or lightheadedness" in text
    for sign in services.screening.leaflet_overdose_signs(nurse):
        assert sign in text
    effects = panel.observations_model.index(0, ObservationsModel.EFFECTS)
    assert effects.data() == "⚠ Drowsiness, dizziness, or lightheadedness"
    assert effects.data(Qt.ItemDataRole.ForegroundRole).color().name() == "#8c1d18"
    patient, notes = board_texts(page)[1], board_texts(page)[7]
    assert patient == "⚠ MENSAH, Kofi"
    assert notes.startswith("⚠ OVERDOSE: Drowsiness, dizziness, or lightheadedness")
    assert "with overdose signs" in page.summary.text()

    # A correction keeps the original, struck through; the banner goes with the sign.
    panel.observations_table.selectRow(0)
    assert panel.correct_button.isEnabled()
    correction = open_dialog(qtbot, panel.correct_selected())
    assert correction.respiratory_rate.number() == 9
    assert "drowsiness-or-dizziness" in correction.effects_model.checked_codes()
    correction.effects_model.set_checked("drowsiness-or-dizziness", False)
    correction.respiratory_rate.setValue(16)
    correction.notes.setPlainText("RR miscounted; alert and talking.")
    with qtbot.waitSignal(correction.recorded):
        qtbot.mouseClick(correction.save_button, LEFT)
    assert panel.urgent.isHidden()
    rows = panel.observations_model
    assert rows.rowCount() == 2
    old = rows.index(0, ObservationsModel.RR)
    assert old.data() == "9" and old.data(Qt.ItemDataRole.FontRole).strikeOut()
    assert rows.index(0, ObservationsModel.KIND).data() == "Corrected"
    assert rows.index(1, ObservationsModel.KIND).data() == "Correction"
    assert rows.index(1, ObservationsModel.RR).data() == "16"


def test_stop_for_an_adverse_event_needs_a_reason(
    qtbot, services, clock, nurse, clinician, bus
) -> None:
    trial = plan(services, clinician, new_patient(services, nurse))
    give(services, clinician, trial, 1, THU)
    clock.current = THU + HOUR
    panel = TrialPanel(services, clinician, bus)
    show(qtbot, panel)
    panel.show_trial(trial.id)
    dialog = open_dialog(qtbot, panel.stop_trial())
    assert isinstance(dialog, StopTrialDialog) and dialog.adverse.isChecked()
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert dialog.errors.message("reason") == "Reason for stopping is required."
    qtbot.keyClicks(dialog.reason, "Respiratory depression, RR 8/min")
    with qtbot.waitSignal(dialog.stopped):
        qtbot.mouseClick(dialog.save_button, LEFT)
    assert panel.status.text() == "Stopped for an adverse event: Respiratory depression, RR 8/min"
    assert not panel.stop_button.isEnabled() and not panel.give_button.isEnabled()


# --- the board --------------------------------------------------------------------------------


def test_the_board_counts_down_as_the_clock_moves(
    qtbot, services, clock, nurse, clinician, staff, bus
) -> None:
    first = plan(services, clinician, new_patient(services, nurse))
    plan(services, clinician, new_patient(services, nurse, "SCR-000102", given_name="Ama"), FRI)
    give(services, clinician, first, 1, THU)
    page = screening_page(qtbot, services, staff, bus)
    assert page.board_model.rowCount() == 1
    texts = board_texts(page)
    assert texts[0] == "10:00"
    assert texts[4] == "Observing"
    assert texts[5] == "14:00 · in 4 h 00 min"
    assert texts[6] == "18:00 · in 8 h 00 min"
    assert texts[7] == "Given 10:00; assess from 14:00"
    assert page.summary.text() == "1 dose · 1 in observation"

    clock.advance(minutes=90)
    page.tick()
    texts = board_texts(page)
    assert texts[5] == "14:00 · in 2 h 30 min"
    assert texts[6] == "18:00 · in 6 h 30 min"

    clock.current = THU + 4 * HOUR + dt.timedelta(minutes=10)
    page.tick()
    texts = board_texts(page)
    assert texts[4] == "Assess now"
    assert texts[5] == "14:00 · now"
    assert texts[7] == "Assess now; observation ends 18:00"  # fetched again at the change
    assert page.summary.text() == "1 dose · 1 in observation · 1 to assess now"

    clock.current = THU + 7 * HOUR + dt.timedelta(minutes=45)
    page.tick()
    assert board_texts(page)[4] == "Ending soon"
    assert board_texts(page)[6] == "18:00 · in 15 min"
    clock.current = THU + 8 * HOUR + dt.timedelta(minutes=5)
    page.tick()
    assert board_texts(page)[4] == "Response due"
    assert board_texts(page)[6] == "18:00 · 5 min ago"

    # Tomorrow: the second patient's first dose, and dose 2 waiting for dose 1's response.
    page.next_day()
    assert page.day == FRI.date()
    assert [board_texts(page, r)[:2] for r in range(2)] == [
        ["10:00", "MENSAH, Ama"],
        ["10:00", "MENSAH, Kofi"],
    ]
    assert page.board_model.phases(clock.current) == [BoardPhase.PLANNED, BoardPhase.WAITING]
    assert board_texts(page, 0)[4] == "Planned"
    time = page.board_model.index(0, ScreeningBoardModel.TIME)
    assert time.data(Qt.ItemDataRole.ToolTipRole) == "Planned 10:00: in 15 h 55 min"
    assert board_texts(page, 1)[4] == "Waiting"


def test_staff_see_the_board_but_no_recording_buttons(
    qtbot, services, nurse, clinician, staff, admin, bus
) -> None:
    trial = plan(services, clinician, new_patient(services, nurse))
    page = screening_page(qtbot, services, staff, bus)
    assert page.board_model.rowCount() == 1
    page.table.selectRow(0)
    panel = page.panel
    assert panel.trial_id() == trial.id and not panel.content.isHidden()
    for widget in (
        panel.give_button,
        panel.observe_button,
        panel.correct_button,
        panel.response_button,
        panel.effect_button,
        panel.stop_button,
    ):
        assert widget.isHidden()
    assert panel.give_dose() is None and panel.record_observation() is None
    assert "View only" in panel.action_hint.text()

    nurse_page = screening_page(qtbot, services, nurse, bus)
    nurse_page.table.selectRow(0)
    assert not nurse_page.panel.observe_button.isHidden()
    assert nurse_page.panel.give_button.isHidden() and nurse_page.panel.stop_button.isHidden()

    admin_page = screening_page(qtbot, services, admin, bus)
    info = admin_page.findChild(QWidget, "screeningNoAccess")
    assert info is not None and "not part of the administrator role" in info.text()


def test_the_page_follows_change_notices(qtbot, services, nurse, clinician, bus) -> None:
    page = screening_page(qtbot, services, nurse, bus)
    assert page.board_model.rowCount() == 0 and not page.empty.isHidden()
    assert page.panel.placeholder.isVisible()
    plan(services, clinician, new_patient(services, nurse))
    bus.notify("trial")
    assert page.board_model.rowCount() == 1 and page.empty.isHidden()


def test_open_functions_for_the_patient_page(qtbot, services, nurse, clinician, bus) -> None:
    patient_id = new_patient(services, nurse)
    assert patient_trial_id(services, clinician, patient_id) is None
    dialog = open_plan_trial(services, clinician, patient_id, bus=bus)
    qtbot.addWidget(dialog)
    assert dialog.objectName() == "planTrialDialog" and dialog.isVisible()
    with qtbot.waitSignal(dialog.planned):
        qtbot.mouseClick(dialog.plan_button, LEFT)
    trial_id = patient_trial_id(services, clinician, patient_id)
    assert trial_id is not None
    window = open_trial(services, nurse, trial_id, bus=bus)
    qtbot.addWidget(window)
    assert window.windowTitle() == "Screening trial — MENSAH, Kofi · SCR-000101"
    window.close()

    nurse_plan = PlanTrialDialog(services, nurse, new_patient(services, nurse, "SCR-000103"))
    show(qtbot, nurse_plan, 860, 760)
    assert not nurse_plan.plan_button.isEnabled()


def test_plan_refuses_a_first_dose_after_hours_under_the_time(
    qtbot, services, nurse, clinician
) -> None:
    dialog = PlanTrialDialog(services, clinician, new_patient(services, nurse))
    show(qtbot, dialog, 860, 760)
    set_moment(dialog.first_dose, THU + HOUR)
    assert dialog.stale_note.isVisible()
    qtbot.mouseClick(dialog.plan_button, LEFT)
    message = dialog.errors.message("first_dose_at")
    assert "after closing (18:00)" in message and "next allowed: Fri 27 Nov 08:00" in message
    qtbot.mouseClick(dialog.propose_button, LEFT)
    assert dialog.first_dose.moment() == at(11, 27, 8)
    assert not dialog.stale_note.isVisible()


# --- models -----------------------------------------------------------------------------------


def test_models_pass_the_model_tester(
    qtmodeltester, qtbot, services, clock, nurse, clinician, bus
) -> None:
    for empty in (
        ScreeningBoardModel(),
        DosesModel(),
        ObservationsModel(),
        BaselineChangeModel(),
        ProposalModel(),
        EffectChoiceModel([]),
    ):
        qtmodeltester.check(empty)

    patient_id = new_patient(services, nurse)
    trial = plan(services, clinician, patient_id)
    services.screening.record_observation(
        nurse,
        trial.id,
        1,
        ObservationInput(
            observed_at=THU - dt.timedelta(minutes=10),
            is_baseline=True,
            penn_spasm_frequency=3,
            ashworth={"Hip adductors (L)": "3", "Knee flexors (R)": "2"},
        ),
    )
    trial = give(services, clinician, trial, 1, THU)
    clock.current = THU + 4 * HOUR
    services.screening.record_observation(
        nurse,
        trial.id,
        1,
        ObservationInput(
            observed_at=clock.current,
            penn_spasm_frequency=1,
            heart_rate_bpm=70,
            ashworth={"Hip adductors (L)": "1+"},
            adverse_effect_codes=("sleepiness", "seizures"),
        ),
    )
    zone = LONDON
    board = ScreeningBoardModel()
    board.set_rows(services.screening.board(nurse), zone, clock.current)
    qtmodeltester.check(board)
    doses = DosesModel()
    doses.set_trial(services.screening.trial(nurse, trial.id), zone)
    qtmodeltester.check(doses)
    observations = ObservationsModel()
    observations.set_rows(services.screening.observations(nurse, trial.id), zone)
    qtmodeltester.check(observations)
    change = BaselineChangeModel()
    change.set_change(services.screening.baseline_change(nurse, trial.id, 1))
    qtmodeltester.check(change)
    assert change.index(0, BaselineChangeModel.CHANGE).data() == "−2 steps"
    proposal = ProposalModel()
    other = new_patient(services, nurse, "SCR-000104")
    proposal.set_proposal(services.screening.propose_schedule(nurse, other, "standard", FRI), zone)
    qtmodeltester.check(proposal)
    effects = EffectChoiceModel(services.screening.adverse_effect_choices(nurse))
    effects.set_checked("seizures", True)
    qtmodeltester.check(effects)


def test_hourly_rate_is_rounded_half_up() -> None:
    assert per_hour_text(75) == "3.13 mcg/h"
    assert per_hour_text(150) == "6.25 mcg/h"
    assert per_hour_text(50) == "2.08 mcg/h"


def test_patient_page_plans_then_opens_the_trial(qtbot, services, clinician) -> None:
    from pumpclinic.ui.bus import DataBus
    from pumpclinic.ui.patient_page import PatientPage
    from pumpclinic.ui.screening import PlanTrialDialog

    record = services.patients.create_patient(
        clinician,
        PatientInput(
            mrn="RIV-SCR",
            family_name="Trial",
            given_name="Tess",
            date_of_birth=dt.date(1985, 6, 1),
            spasticity_origin="cerebral",
            diagnosis="Cerebral palsy",
        ),
    )
    page = PatientPage(services, clinician, DataBus())
    qtbot.addWidget(page)
    page.show_patient(record.id)
    assert page.screening_button.isVisibleTo(page)
    assert isinstance(page.open_screening(), PlanTrialDialog)
