"""Clinical rows changed, inserted or deleted behind PumpClinic's back are named by
``pumpclinic audit-verify``: the table, the record and the fields that differ from the
latest audited values. The tampering is done with sqlite3 on the file, as someone with the
file and no key would."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from pumpclinic.cli import main
from pumpclinic.domain.enums import DoseResponse
from pumpclinic.services.audit import head_seal
from pumpclinic.services.demo import create_demo_clinic
from pumpclinic.services.integrity import ADOPTING_USER
from pumpclinic.services.screening import DoseCorrection, ObservationInput
from tests.services.refill_fixtures import implanted_patient
from tests.services.test_screening import MON, give, new_patient, plan, respond

pytestmark = pytest.mark.sqlite_only

HOUR = dt.timedelta(hours=1)


def verify(db: Path, capsys) -> tuple[int, str]:
    code = main(["audit-verify", "--db", str(db)])
    return code, capsys.readouterr().out


def sql(db: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement, params)


def one(db: Path, query: str, *params: object) -> tuple:
    with sqlite3.connect(db) as connection:
        row = connection.execute(query, params).fetchone()
    assert row is not None, query
    return row


@pytest.fixture
def demo_clinic(services, db_path: Path) -> Path:
    create_demo_clinic(services.context)
    services.close()
    return db_path


def test_an_untouched_demo_clinic_verifies(demo_clinic: Path, capsys) -> None:
    code, out = verify(demo_clinic, capsys)
    assert code == 0, out
    assert "Audit chain intact" in out
    assert "Clinical rows match the audit trail" in out
    assert "in 9 tables" in out


def test_a_refill_volume_changed_with_sqlite3_is_named(demo_clinic: Path, capsys) -> None:
    refill_id, volume = one(
        demo_clinic, "SELECT id, volume_added_ml FROM refills ORDER BY id DESC LIMIT 1"
    )
    sql(demo_clinic, "UPDATE refills SET volume_added_ml = ? WHERE id = ?", volume - 5, refill_id)
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert "Audit chain intact" in out  # the log itself is untouched
    # A demo refill records its create in its seal (no audit entry repeats its values), so
    # the row is named, not the field.
    assert (
        f"refills #{refill_id} CHANGED outside PumpClinic: its values no longer match the seal"
        " it was saved with"
    ) in out
    assert "Clinical rows DIFFER from the audit trail: 1 of" in out
    sql(demo_clinic, "UPDATE refills SET volume_added_ml = ? WHERE id = ?", volume, refill_id)
    code, out = verify(demo_clinic, capsys)
    assert code == 0, out


def test_a_test_dose_changed_with_sqlite3_is_named(demo_clinic: Path, capsys) -> None:
    (dose_id,) = one(demo_clinic, "SELECT id FROM test_doses WHERE given_at IS NOT NULL LIMIT 1")
    sql(
        demo_clinic,
        "UPDATE test_doses SET given_at = datetime(given_at, '+2 hours'), lot_number = 'X'"
        " WHERE id = ?",
        dose_id,
    )
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith(f"test_doses #{dose_id} "))
    assert "CHANGED outside PumpClinic: given_at (audited " in line
    assert "lot_number (audited " in line and "now 'X')" in line


def test_an_observation_deleted_with_sqlite3_is_named(demo_clinic: Path, capsys) -> None:
    (observation_id,) = one(demo_clinic, "SELECT max(id) FROM observations")
    sql(demo_clinic, "DELETE FROM ashworth_scores WHERE observation_id = ?", observation_id)
    sql(
        demo_clinic,
        "DELETE FROM observation_adverse_effects WHERE observation_id = ?",
        observation_id,
    )
    sql(demo_clinic, "DELETE FROM observations WHERE id = ?", observation_id)
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert f"observations #{observation_id} DELETED outside PumpClinic" in out


def test_a_patient_inserted_with_sqlite3_is_named(demo_clinic: Path, capsys) -> None:
    sql(
        demo_clinic,
        "INSERT INTO patients (mrn, family_name, given_name, date_of_birth, sex,"
        " spasticity_origin, diagnosis, sci_at_or_above_t6, communication_difficulties,"
        " previous_withdrawal, allergies, other_medicines, pregnant, breastfeeding, phone,"
        " email, address, notes, do_not_contact, do_not_contact_reason, created_at,"
        " updated_at, version) VALUES ('FAKE-1', 'Nobody', 'Ghost', '1970-01-01', 'unknown',"
        " 'spinal', 'none', 0, 0, 0, '', '', 0, 0, '', '', '', '', 0, '',"
        " '2026-11-26 09:00:00', '2026-11-26 09:00:00', 1)",
    )
    (patient_id,) = one(demo_clinic, "SELECT id FROM patients WHERE mrn = 'FAKE-1'")
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert f"patients #{patient_id} INSERTED outside PumpClinic: no audit entry records it" in out


@pytest.fixture
def used_clinic(services, clock, nurse, clinician, db_path: Path) -> Path:
    """Rows written through the services: an implant (pump, fill, program), a screening
    trial with a dose given, corrected, observed and answered."""
    implanted_patient(services, nurse, clinician)
    patient_id = new_patient(services, nurse, "SCR-000009")
    trial = plan(services, clinician, patient_id, MON)
    clock.current = MON
    trial = give(services, clinician, trial, 1, MON)
    clock.current = MON + HOUR
    trial = services.screening.correct_dose(
        clinician,
        trial.id,
        trial.version,
        1,
        DoseCorrection(MON + dt.timedelta(minutes=10), "SCR-LOT-1", "lumbar puncture", "typo"),
    )
    services.screening.record_observation(
        nurse, trial.id, 1, ObservationInput(observed_at=clock.current, spo2_pct=97)
    )
    clock.current = MON + 5 * HOUR
    respond(services, clinician, trial, 1, DoseResponse.INADEQUATE, clock.current)
    services.alerts.set_do_not_contact(nurse, patient_id, True, "Asked not to be called")
    services.close()
    return db_path


def test_rows_written_through_the_services_verify(used_clinic: Path, capsys) -> None:
    code, out = verify(used_clinic, capsys)
    assert code == 0, out


def test_an_implant_fill_changed_with_sqlite3_is_named(used_clinic: Path, capsys) -> None:
    (fill_id,) = one(used_clinic, "SELECT id FROM refills ORDER BY id LIMIT 1")
    sql(used_clinic, "UPDATE refills SET volume_after_ml = 40 WHERE id = ?", fill_id)
    (program_id,) = one(used_clinic, "SELECT id FROM dose_programs ORDER BY id LIMIT 1")
    sql(used_clinic, "UPDATE dose_programs SET dose_mcg_per_day = 900 WHERE id = ?", program_id)
    code, out = verify(used_clinic, capsys)
    assert code == 1
    assert f"refills #{fill_id} CHANGED outside PumpClinic: volume_after_ml" in out
    assert (
        f"dose_programs #{program_id} CHANGED outside PumpClinic: dose_mcg_per_day"
        " (audited 400.0, now 900.0)"
    ) in out


def test_a_superseded_dose_entry_changed_with_sqlite3_is_named(used_clinic: Path, capsys):
    (original_id,) = one(
        used_clinic, "SELECT corrects_id FROM test_doses WHERE corrects_id IS NOT NULL"
    )
    sql(used_clinic, "UPDATE test_doses SET lot_number = 'OTHER' WHERE id = ?", original_id)
    code, out = verify(used_clinic, capsys)
    assert code == 1
    assert (
        f"test_doses #{original_id} CHANGED outside PumpClinic: lot_number"
        " (audited 'SCR-LOT-1', now 'OTHER')"
    ) in out


def test_rows_an_older_version_left_unaudited_are_adopted_once_at_the_upgrade(
    services, nurse, clinician, db_path: Path, reference, capsys
) -> None:
    from pumpclinic.db.models import Patient
    from pumpclinic.services.clinic import open_clinic

    patient_id, _pump_id = implanted_patient(services, nurse, clinician)
    # As an older PumpClinic left a do-not-contact change: the row written, the entry
    # holding two fields (and not the new version or update time).
    with services.context.unit_of_work() as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        patient.do_not_contact = True
        patient.updated_at = patient.updated_at + dt.timedelta(minutes=5)
    key = services.context.audit_key
    services.close()
    from alembic import command

    from pumpclinic.db.engine import alembic_config, make_engine

    engine = make_engine(f"sqlite+pysqlite:///{db_path}")
    command.downgrade(alembic_config(engine), "0005")
    engine.dispose()
    # An older version sealed the chain's head over its newest entry alone (there were no
    # sealed tables' heads to cover).
    (last_id, last_hash) = one(
        db_path, "SELECT last_entry_id, last_entry_hash FROM audit_chain_head"
    )
    sql(
        db_path,
        "UPDATE audit_chain_head SET seal = ?",
        head_seal(key, last_id, last_hash),
    )
    code, out = verify(db_path, capsys)
    assert code == 0, out
    assert "Clinical rows not checked" in out

    open_clinic(f"sqlite+pysqlite:///{db_path}", reference).close()
    code, out = verify(db_path, capsys)
    assert code == 0, out
    assert "Clinical rows match the audit trail" in out
    (adopted,) = one(db_path, "SELECT count(*) FROM audit_log WHERE username = ?", ADOPTING_USER)
    assert adopted == 1

    # Adopted once: from now on a change behind PumpClinic's back is named.
    sql(db_path, "UPDATE patients SET do_not_contact = 0 WHERE id = ?", patient_id)
    open_clinic(f"sqlite+pysqlite:///{db_path}", reference).close()
    code, out = verify(db_path, capsys)
    assert code == 1
    assert f"patients #{patient_id} CHANGED outside PumpClinic: do_not_contact" in out
