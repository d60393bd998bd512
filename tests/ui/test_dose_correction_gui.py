"""Correcting a given test dose from the trial panel: the dialog, the refusal naming the
limit, and the superseded entry kept on the panel, struck through."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt

from pumpclinic.services.screening import ObservationInput
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.screening import CorrectDoseDialog, DosesModel, SupersededLine, TrialPanel
from tests.ui.test_screening_gui import (
    LEFT,
    THU,
    give,
    new_patient,
    open_dialog,
    plan,
    set_moment,
    show,
)

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def bus() -> DataBus:
    return DataBus()


def test_a_clinician_corrects_the_time_given_and_the_entry_stays_struck_through(
    qtbot, qtmodeltester, services, clock, bus, nurse, clinician
) -> None:
    patient_id = new_patient(services, nurse)
    trial = give(services, clinician, plan(services, clinician, patient_id), 1, THU)
    clock.current = THU + dt.timedelta(hours=1)
    services.screening.record_observation(
        nurse, trial.id, 1, ObservationInput(observed_at=THU + 50 * MINUTE, heart_rate_bpm=72)
    )
    panel = TrialPanel(services, clinician, bus)
    show(qtbot, panel)
    panel.show_trial(trial.id)
    assert not panel.correct_dose_button.isEnabled()
    panel.doses_table.selectRow(0)
    assert panel.correct_dose_button.isEnabled()
    assert panel.correct_dose_button.text() == "Correct dos&e 1…"

    dialog = open_dialog(qtbot, panel.correct_dose())
    assert isinstance(dialog, CorrectDoseDialog)
    assert "As recorded (entry #" in dialog.recorded.text()
    assert "Thu 26 Nov 10:00 by carl · lot LOT-1 · lumbar puncture" in dialog.recorded.text()
    assert dialog.lot.text() == "LOT-1"

    # Without a reason, and then too late for the observation recorded at 10:50.
    set_moment(dialog.given_at, THU + 55 * MINUTE)
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert dialog.isVisible()
    assert dialog.errors.message("reason") == "Reason for the correction is required."
    assert "cannot be later than that" in dialog.errors.message("given_at")
    assert dialog.error_banner.text() == "⚠ Not saved."

    set_moment(dialog.given_at, THU + 20 * MINUTE)
    dialog.reason.setText("Charted at the start of the procedure, not the injection")
    with qtbot.waitSignal(dialog.corrected):
        qtbot.mouseClick(dialog.save_button, LEFT)
    assert not dialog.isVisible()

    qtbot.waitUntil(lambda: panel.doses_model.rowCount() == 4)
    model = panel.doses_model
    assert model.index(0, DosesModel.WHEN).data() == "Thu 26 Nov 10:20 · carl"
    assert model.index(0, DosesModel.DOSE).data() == "1: 50 mcg ✎"
    assert "Charted at the start" in model.index(0, DosesModel.WHEN).data(
        Qt.ItemDataRole.ToolTipRole
    )
    superseded = model.index(1, DosesModel.WHEN)
    assert isinstance(superseded.data(Qt.ItemDataRole.UserRole), SupersededLine)
    assert superseded.data() == "Thu 26 Nov 10:00 · LOT-1"
    assert superseded.data(Qt.ItemDataRole.FontRole).strikeOut()
    assert model.index(1, DosesModel.RESPONSE).data().startswith("corrected by #")
    assert (
        model.index(1, DosesModel.RESPONSE)
        .data()
        .endswith(": Charted at the start of the procedure, not the injection")
    )
    # Observation windows follow the corrected time.
    assert model.index(0, DosesModel.ASSESS).data() == "14:20"
    # A superseded entry cannot itself be corrected.
    panel.doses_table.selectRow(1)
    assert not panel.correct_dose_button.isEnabled()
    assert panel.correct_dose() is None
    qtmodeltester.check(model)


def test_a_nurse_sees_no_dose_correction(qtbot, services, bus, nurse, clinician) -> None:
    patient_id = new_patient(services, nurse)
    trial = give(services, clinician, plan(services, clinician, patient_id), 1, THU)
    panel = TrialPanel(services, nurse, bus)
    show(qtbot, panel)
    panel.show_trial(trial.id)
    panel.doses_table.selectRow(0)
    assert panel.correct_dose_button.isHidden()
    assert panel.correct_dose() is None
