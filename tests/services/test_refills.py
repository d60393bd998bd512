"""The refill visit through the services, on the ITB-FACTS worked examples."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from pumpclinic.db.models import DoseProgram, Refill
from pumpclinic.domain.enums import Role
from pumpclinic.services.errors import AuthenticationFailed, PermissionDenied, ValidationFailed
from pumpclinic.services.refills import DoubleCheck, DoubleCheckToken, RefillInput, RefillService
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import FILLED_AT, implanted_patient, record_checked


@pytest.fixture
def patient(services, nurse, clinician):
    return implanted_patient(services, nurse, clinician)


def refill(pump_id: int, **changes: object) -> RefillInput:
    base: dict[str, object] = {
        "pump_id": pump_id,
        "performed_at": NOW,
        "aspirated_residual_ml": 8.0,
        "drug_product_id": "baclofen-2000",
        "lot_number": "LOT-B2",
        "volume_added_ml": 20.0,
        "dose_mcg_per_day": 400.0,
    }
    base.update(changes)
    return RefillInput(**base)  # type: ignore[arg-type]


def clinician_check(concentration: float = 2000, dose: float = 400) -> DoubleCheck:
    return DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], concentration, dose)


def count(services, model) -> int:
    with services.context.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_overview_shows_the_worked_example(services, nurse, patient) -> None:
    patient_id, _pump_id = patient
    overview = services.refills.overview(nurse, patient_id)
    card = overview.card
    assert card is not None and card.program is not None
    assert card.model_name == "SynchroMed II 20 mL"
    assert card.program.dose_mcg_per_day == 400
    assert card.program.dose_mcg_per_hour == pytest.approx(400 / 24)
    assert card.program.daily_volume_ml == pytest.approx(0.2)
    reservoir = overview.reservoir
    assert reservoir is not None
    assert reservoir.volume_now_ml == pytest.approx(8.0)
    assert reservoir.forecast.alarm_at == FILLED_AT + dt.timedelta(days=90)
    assert reservoir.forecast.empty_at == FILLED_AT + dt.timedelta(days=100)
    # Stability (77 days: Sun 13 Dec) comes before alarm − 7 days (19 Dec): the latest open
    # day on or before 13 Dec is Friday 11 Dec.
    assert reservoir.forecast.refill_due == dt.date(2026, 12, 11)


def test_expected_residual_before_aspiration(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    assert services.refills.expected_residual_ml(nurse, pump_id, NOW) == pytest.approx(8.0)


def test_preview_reconciles_and_flags_the_worked_example(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    preview = services.refills.preview(nurse, refill(pump_id, aspirated_residual_ml=5.5))
    rec = preview.reconciliation
    assert rec is not None
    assert rec.expected_residual_ml == pytest.approx(8.0)
    assert rec.discrepancy_ml == pytest.approx(-2.5)
    assert rec.delivery_error_pct == pytest.approx(20.8333, abs=1e-3)
    assert rec.flags == {"discrepancy_over_2ml", "delivery_error_over_14_5_pct"}
    assert rec.next_steps


def test_record_refill_with_double_check(services, nurse, patient, clock) -> None:
    patient_id, pump_id = patient
    recorded = record_checked(
        services, nurse, refill(pump_id, aspirated_residual_ml=7.6), clinician_check()
    )
    assert recorded.refill.double_checked_by == "carl"
    assert recorded.refill.performed_by == "nina"
    assert recorded.refill.expected_residual_ml == pytest.approx(8.0)
    assert not recorded.refill.flagged
    assert recorded.forecast.alarm_at == NOW + dt.timedelta(days=90)
    assert "Sweating" in recorded.card.withdrawal_signs
    overview = services.refills.overview(nurse, patient_id)
    assert overview.reservoir is not None
    assert overview.reservoir.volume_now_ml == pytest.approx(20.0)
    assert overview.refills[0].id == recorded.refill.id


def test_double_check_mismatch_blocks_and_saves_nothing(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    before = count(services, Refill), count(services, DoseProgram)
    with pytest.raises(ValidationFailed) as caught:
        record_checked(
            services, nurse, refill(pump_id), clinician_check(concentration=2000, dose=40)
        )
    assert caught.value.for_field("check_dose")
    assert not caught.value.for_field("check_concentration")
    with pytest.raises(ValidationFailed) as caught:
        record_checked(services, nurse, refill(pump_id), clinician_check(concentration=500))
    assert caught.value.for_field("check_concentration")
    assert (count(services, Refill), count(services, DoseProgram)) == before


def test_the_recorder_cannot_check_their_own_refill(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    own = DoubleCheck("nina", PASSWORDS[Role.NURSE], 2000, 400)
    with pytest.raises(ValidationFailed, match="second person") as caught:
        services.refills.verify_double_check(nurse, pump_id, own)
    assert caught.value.for_field("double_check")


def test_wrong_checker_password_is_refused(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    before = count(services, Refill)
    with pytest.raises(AuthenticationFailed):
        services.refills.verify_double_check(
            nurse, pump_id, DoubleCheck("carl", "wrong-pass-1", 2000, 400)
        )
    assert count(services, Refill) == before


def test_staff_cannot_check_or_record(services, nurse, staff, patient) -> None:
    _patient_id, pump_id = patient
    with pytest.raises(PermissionDenied):
        services.refills.verify_double_check(staff, pump_id, clinician_check())
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    with pytest.raises(PermissionDenied):
        services.refills.record_refill(staff, refill(pump_id), token)
    with pytest.raises(ValidationFailed, match="may not check"):
        services.refills.verify_double_check(
            nurse, pump_id, DoubleCheck("stef", PASSWORDS[Role.STAFF], 2000, 400)
        )


# --- the double check verified once, then taken by the save --------------------------------


def refused_at_double_check(services, actor, data, token, words: str) -> None:
    before = count(services, Refill), count(services, DoseProgram)
    with pytest.raises(ValidationFailed) as caught:
        services.refills.record_refill(actor, data, token)
    messages = caught.value.for_field("double_check")
    assert messages and words in messages[0], caught.value.errors
    assert (count(services, Refill), count(services, DoseProgram)) == before


def test_the_double_check_is_good_for_five_minutes(services, nurse, patient, clock) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    clock.advance(minutes=4, seconds=59)
    assert services.refills.record_refill(nurse, refill(pump_id), token).refill.id


def test_an_expired_double_check_is_refused(services, nurse, patient, clock) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    clock.advance(minutes=5)
    refused_at_double_check(
        services,
        nurse,
        refill(pump_id),
        token,
        "The double check has expired: ask the second nurse or clinician to confirm again.",
    )


def test_a_double_check_is_taken_once(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    first = services.refills.record_refill(nurse, refill(pump_id), token)
    correction = refill(pump_id, volume_added_ml=18.0, corrects_refill_id=first.refill.id)
    refused_at_double_check(services, nurse, correction, token, "already used")


def test_a_save_refused_for_a_typing_error_leaves_the_double_check_for_the_corrected_one(
    services, nurse, patient
) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    before = count(services, Refill)
    with pytest.raises(ValidationFailed) as caught:
        services.refills.record_refill(nurse, refill(pump_id, volume_added_ml=999.0), token)
    assert caught.value.for_field("volume_added_ml"), caught.value.errors
    assert count(services, Refill) == before
    saved = services.refills.record_refill(nurse, refill(pump_id), token)
    assert saved.refill.id
    correction = refill(pump_id, volume_added_ml=18.0, corrects_refill_id=saved.refill.id)
    refused_at_double_check(services, nurse, correction, token, "already used")


def test_a_double_check_is_for_its_pump_and_patient(services, nurse, clinician, patient) -> None:
    _patient_id, pump_id = patient
    _other_patient, other_pump = implanted_patient(services, nurse, clinician, mrn="RIV-000200")
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    refused_at_double_check(services, nurse, refill(other_pump), token, "another patient's pump")
    # Refused, not taken: it still serves the refill it was given for.
    assert services.refills.record_refill(nurse, refill(pump_id), token).refill.id


def test_a_double_check_is_for_the_values_checked(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check(dose=400))
    with pytest.raises(ValidationFailed) as caught:
        services.refills.record_refill(nurse, refill(pump_id, dose_mcg_per_day=380.0), token)
    assert caught.value.for_field("check_dose")
    assert not caught.value.for_field("check_concentration")
    # The values in a token cannot be changed to fit.
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check(dose=400))
    edited = replace(token, dose_mcg_per_day=380.0)
    refused_at_double_check(
        services, nurse, refill(pump_id, dose_mcg_per_day=380.0), edited, "not valid"
    )


def test_a_double_check_is_for_the_user_recording(services, nurse, admin, patient) -> None:
    _patient_id, pump_id = patient
    from tests.conftest import _user

    olga = _user(services, admin, Role.NURSE, "olga", "Olga Other-Nurse")
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    refused_at_double_check(services, olga, refill(pump_id), token, "another user recording")


@pytest.mark.parametrize(
    "forge",
    [
        lambda token, clinician: replace(token, checker_user_id=clinician.user_id + 1),
        lambda token, clinician: replace(token, expires_at=token.expires_at + dt.timedelta(days=1)),
        lambda token, clinician: replace(token, signature="0" * 64),
        lambda token, clinician: DoubleCheckToken(
            checker_user_id=clinician.user_id,
            recorder_user_id=token.recorder_user_id,
            pump_id=token.pump_id,
            patient_id=token.patient_id,
            concentration_mcg_per_ml=2000,
            dose_mcg_per_day=400,
            expires_at=token.expires_at,
            nonce="made-up",
        ),
    ],
)
def test_a_forged_double_check_is_refused(services, nurse, clinician, patient, forge) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    refused_at_double_check(
        services,
        nurse,
        refill(pump_id),
        forge(token, clinician),
        "The double check is not valid: ask the second nurse or clinician to confirm again.",
    )


def test_a_double_check_from_another_service_is_refused(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    elsewhere = RefillService(services.context)  # another process: its own signing key
    token = elsewhere.verify_double_check(nurse, pump_id, clinician_check())
    refused_at_double_check(services, nurse, refill(pump_id), token, "not valid")


def test_the_checker_locked_or_disabled_since_cannot_be_the_check(
    services, nurse, admin, clinician, patient
) -> None:
    _patient_id, pump_id = patient
    token = services.refills.verify_double_check(nurse, pump_id, clinician_check())
    for _ in range(5):  # five wrong passwords lock the account
        with pytest.raises(AuthenticationFailed):
            services.users.authenticate("carl", "wrong-pass-1")
    refused_at_double_check(
        services, nurse, refill(pump_id), token, "Dr Carl Clinician's account is locked"
    )

    from tests.conftest import _user

    _user(services, admin, Role.NURSE, "olga", "Olga Other-Nurse")
    olga_check = DoubleCheck("olga", PASSWORDS[Role.NURSE], 2000, 400)
    token = services.refills.verify_double_check(nurse, pump_id, olga_check)
    olga_id = next(u.id for u in services.users.list_users(admin) if u.username == "olga")
    services.users.set_active(admin, olga_id, False)
    refused_at_double_check(services, nurse, refill(pump_id), token, "no longer active")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"volume_added_ml": 20.5}, "volume_added_ml", "cannot exceed the reservoir, 20 mL"),
        ({"volume_added_ml": 0.0}, "volume_added_ml", "more than 0"),
        ({"aspirated_residual_ml": -1.0}, "aspirated_residual_ml", "0 mL or more"),
        ({"lot_number": " "}, "lot_number", "Lot number is required"),
        ({"drug_product_id": "baclofen-50"}, "drug_product_id", "Choose the drug"),
        ({"dose_mcg_per_day": 9600.0}, "dose_mcg_per_day", "between 0 and 3000"),
        ({"performed_at": NOW + dt.timedelta(hours=1)}, "performed_at", "future"),
        ({"performed_at": FILLED_AT - dt.timedelta(days=1)}, "performed_at", "after the last"),
    ],
)
def test_bad_refill_input_names_the_field(
    services, nurse, patient, changes: dict[str, object], field: str, words: str
) -> None:
    _patient_id, pump_id = patient
    with pytest.raises(ValidationFailed) as caught:
        services.refills.preview(nurse, refill(pump_id, **changes))
    assert any(words in m for m in caught.value.for_field(field)), caught.value.errors


def test_a_change_beyond_titration_bounds_needs_a_clinician(
    services, nurse, admin, patient
) -> None:
    _patient_id, pump_id = patient
    from tests.conftest import _user

    _user(services, admin, Role.NURSE, "olga", "Olga Other-Nurse")
    jump = refill(pump_id, dose_mcg_per_day=600.0)  # +50 %, spinal allows 30 %
    preview = services.refills.preview(nurse, jump)
    assert preview.needs_clinician
    assert "30 %" in (preview.titration_warning or "")
    nurse_check = DoubleCheck("olga", PASSWORDS[Role.NURSE], 2000, 600)
    with pytest.raises(ValidationFailed) as caught:
        record_checked(services, nurse, jump, nurse_check)
    assert caught.value.for_field("dose_mcg_per_day")
    with pytest.raises(ValidationFailed) as caught:
        record_checked(services, nurse, jump, clinician_check(dose=600))
    assert caught.value.for_field("change_reason")
    recorded = record_checked(
        services,
        nurse,
        refill(pump_id, dose_mcg_per_day=600.0, change_reason="Rebound spasticity, reviewed"),
        clinician_check(dose=600),
    )
    assert recorded.forecast.daily_volume_ml == pytest.approx(0.3)


def test_a_correction_is_a_new_entry_and_both_stay(services, nurse, patient) -> None:
    patient_id, pump_id = patient
    first = record_checked(services, nurse, refill(pump_id), clinician_check())
    corrected = record_checked(
        services,
        nurse,
        refill(
            pump_id,
            volume_added_ml=18.0,
            corrects_refill_id=first.refill.id,
            notes="Volume added was 18 mL, not 20",
        ),
        clinician_check(),
    )
    overview = services.refills.overview(nurse, patient_id)
    ids = {r.id: r for r in overview.refills}
    assert ids[first.refill.id].corrected_by_id == corrected.refill.id
    assert ids[corrected.refill.id].corrects_refill_id == first.refill.id
    assert overview.reservoir is not None
    assert overview.reservoir.volume_now_ml == pytest.approx(18.0)
    with pytest.raises(ValidationFailed, match="already corrected"):
        services.refills.preview(nurse, refill(pump_id, corrects_refill_id=first.refill.id))


def test_pocket_fill_check_warns(services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    preview = services.refills.preview(nurse, refill(pump_id, measured_after_ml=18.5))
    assert preview.pocket_fill is not None and preview.pocket_fill.flagged
    preview = services.refills.preview(nurse, refill(pump_id, measured_after_ml=19.5))
    assert preview.pocket_fill is not None and not preview.pocket_fill.flagged


def test_zero_dose_is_a_clinicians_decision(services, nurse, admin, patient) -> None:
    """Found by the hostile-input test: 0 mcg/day crashed the titration check."""
    _patient_id, pump_id = patient
    from tests.conftest import _user

    _user(services, admin, Role.NURSE, "olga", "Olga Other-Nurse")
    stop = refill(pump_id, dose_mcg_per_day=0.0)
    preview = services.refills.preview(nurse, stop)
    assert preview.needs_clinician and "withdrawal" in (preview.titration_warning or "")
    with pytest.raises(ValidationFailed):
        record_checked(services, nurse, stop, DoubleCheck("olga", PASSWORDS[Role.NURSE], 2000, 0.0))
