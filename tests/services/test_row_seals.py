"""Row seals: refills, dose programs and appointments record their create in the row (a
keyed seal over its values), and each sealed table's head counts and sums the seals, so that
a sealed row changed, inserted, deleted or put back behind PumpClinic's back is found by
the same check as every other clinical row (``audit-verify``)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select, text

from pumpclinic.db.engine import make_engine
from pumpclinic.db.models import (
    Appointment,
    AuditChainHead,
    AuditEntry,
    DoseProgram,
    Refill,
    RowSealHead,
)
from pumpclinic.domain.enums import AppointmentStatus, Role
from pumpclinic.services import row_seals
from pumpclinic.services.audit import verify_chain
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.integrity import check_rows
from pumpclinic.services.refills import DoubleCheck, RecordedRefill, RefillInput
from tests.conftest import PASSWORDS, FixedClock
from tests.services.refill_fixtures import implanted_patient, record_checked


def problems(services: Services) -> list[str]:
    with services.context.unit_of_work() as session:
        check = check_rows(session, services.context.audit_key)
    return [p.describe() for p in check.problems]


def behind_the_apps_back(services: Services, statement: str, **params: object) -> None:
    """Another program's connection to the same database (not PumpClinic's engine)."""
    url = services.context.session_factory.kw["bind"].url
    engine: Engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.begin() as connection:
            connection.execute(text(statement), params)
    finally:
        engine.dispose()


def head(services: Services, table: str) -> tuple[int, str]:
    with services.context.unit_of_work() as session:
        row = session.get(RowSealHead, table)
        assert row is not None
        return row.row_count, row.digest


@pytest.fixture
def refilled(services: Services, nurse: Actor, clinician: Actor, clock: FixedClock) -> int:
    """A pump implanted (fill + program) and refilled once with a new dose (refill +
    program) through the services. Returns the refill's id."""
    _patient_id, pump_id = implanted_patient(services, nurse, clinician)
    clock.advance(days=10)
    recorded = record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump_id,
            performed_at=clock(),
            aspirated_residual_ml=16.0,
            drug_product_id="baclofen-2000",
            lot_number="LOT-B2",
            volume_added_ml=4.0,
            dose_mcg_per_day=450.0,
            change_reason="More spasms at night",
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 450),
    )
    return recorded.refill.id


def test_rows_written_through_the_services_are_sealed_and_counted(
    services: Services, refilled: int
) -> None:
    with services.context.unit_of_work() as session:
        key = services.context.audit_key
        for model in (Refill, DoseProgram):
            table = model.__table__
            rows = session.execute(select(table)).all()
            assert len(rows) == 2
            for row in rows:
                assert row_seals.seal_matches(key, table.name, row._mapping, row.seal)
            count, digest = head(services, table.name)
            assert count == 2
            assert digest == row_seals.digest_hex(sum(row_seals.seal_number(r.seal) for r in rows))
        # The refill's create is its seal, not a second copy of its values in the log.
        entities = set(session.scalars(select(AuditEntry.entity)))
        assert "refill" not in entities and "dose_program" not in entities
    assert problems(services) == []


def test_a_sealed_row_changed_behind_the_apps_back_is_named(
    services: Services, refilled: int
) -> None:
    behind_the_apps_back(
        services, "UPDATE refills SET volume_added_ml = 14 WHERE id = :id", id=refilled
    )
    assert problems(services) == [
        f"refills #{refilled} CHANGED outside PumpClinic: its values no longer match the seal"
        " it was saved with"
    ]


def test_a_sealed_row_inserted_behind_the_apps_back_is_named(
    services: Services, refilled: int
) -> None:
    behind_the_apps_back(
        services,
        "INSERT INTO refills (id, pump_id, performed_at, performed_by_id, lot_number,"
        " concentration_mcg_per_ml, aspirated_residual_ml, volume_added_ml, volume_after_ml,"
        " reconciliation_flagged, notes, created_at, seal)"
        " SELECT 900, pump_id, performed_at, performed_by_id, lot_number,"
        " concentration_mcg_per_ml, aspirated_residual_ml, volume_added_ml, volume_after_ml,"
        " reconciliation_flagged, notes, created_at, seal FROM refills WHERE id = :id",
        id=refilled,
    )
    found = problems(services)
    # A copied seal does not fit another id; the head counts one sealed row too many.
    assert (
        "refills #900 CHANGED outside PumpClinic: its values no longer match the seal" in (found[0])
    )
    assert "refills: sealed rows REPLACED or added outside PumpClinic" in found[1]
    assert len(found) == 2


def test_a_sealed_row_deleted_behind_the_apps_back_is_named(
    services: Services, refilled: int
) -> None:
    behind_the_apps_back(services, "DELETE FROM dose_programs WHERE refill_id = :id", id=refilled)
    behind_the_apps_back(services, "DELETE FROM refills WHERE id = :id", id=refilled)
    found = problems(services)
    assert (
        "refills: 1 sealed row DELETED outside PumpClinic: the table holds 1 sealed rows,"
        in (found[0])
    )
    assert "dose_programs: 1 sealed row DELETED outside PumpClinic" in found[1]
    assert len(found) == 2


def test_a_seal_removed_leaves_a_row_nothing_records(services: Services, refilled: int) -> None:
    behind_the_apps_back(services, "UPDATE refills SET seal = NULL WHERE id = :id", id=refilled)
    found = problems(services)
    assert found[0] == (
        f"refills #{refilled} INSERTED outside PumpClinic: neither a seal nor an audit entry"
        " records it"
    )
    assert "refills: 1 sealed row DELETED outside PumpClinic" in found[1]


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("UPDATE row_seal_heads SET row_count = 1 WHERE table_name = 'refills'", "was CHANGED"),
        ("DELETE FROM row_seal_heads WHERE table_name = 'refills'", "is MISSING"),
    ],
    ids=["changed", "deleted"],
)
def test_a_head_tampered_with_is_reported_and_never_sealed_again(
    services: Services,
    nurse: Actor,
    refilled: int,
    clock: FixedClock,
    statement: str,
    says: str,
) -> None:
    behind_the_apps_back(services, statement)
    before = problems(services)
    assert before[0].startswith(f"refills: its sealed head {says}")
    assert before[0].endswith("sealed rows deleted behind PumpClinic's back cannot be ruled out")
    assert len(before) == 1
    # Another refill through the app: sealed, but the head is left as found, not sealed
    # again over what was changed (that would hide the deletion it may stand for).
    pump_id = _pump_of(services, refilled)
    clock.advance(days=20)
    refill_again(services, nurse, pump_id, clock)
    assert problems(services) == before


def refill_again(
    services: Services, nurse: Actor, pump_id: int, clock: FixedClock
) -> RecordedRefill:
    """Another refill through the services, at the same dose."""
    return record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump_id,
            performed_at=clock(),
            aspirated_residual_ml=9.0,
            drug_product_id="baclofen-2000",
            lot_number="LOT-C3",
            volume_added_ml=11.0,
            dose_mcg_per_day=450.0,
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 450),
    )


def _pump_of(services: Services, refill_id: int) -> int:
    with services.context.unit_of_work() as session:
        refill = session.get(Refill, refill_id)
        assert refill is not None
        return refill.pump_id


@pytest.fixture
def appointment(services: Services, staff: Actor, nurse: Actor, clinician: Actor) -> int:
    patient_id, _pump_id = implanted_patient(services, nurse, clinician)
    starts = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    return services.booking.book_refill(staff, patient_id, starts).id


def test_an_appointment_changed_through_the_app_is_sealed_again_and_audited(
    services: Services, staff: Actor, appointment: int
) -> None:
    first = _seal_of(services, appointment)
    services.booking.set_status(staff, appointment, 1, AppointmentStatus.ARRIVED)
    second = _seal_of(services, appointment)
    assert second != first
    with services.context.unit_of_work() as session:
        actions = session.execute(
            select(AuditEntry.action).where(
                AuditEntry.entity == "appointment", AuditEntry.entity_id == str(appointment)
            )
        ).scalars()
        assert list(actions) == ["update"]
    assert head(services, "appointments") == (
        1,
        row_seals.digest_hex(row_seals.seal_number(second)),
    )
    assert problems(services) == []


def test_an_older_version_of_a_changed_row_put_back_is_named(
    services: Services, staff: Actor, appointment: int
) -> None:
    """The old values with the old (valid) seal: the entry of the change names what
    differs, and the head's sum no longer adds up."""
    booked = _seal_of(services, appointment)
    services.booking.set_status(staff, appointment, 1, AppointmentStatus.ARRIVED)
    behind_the_apps_back(
        services,
        "UPDATE appointments SET status = 'booked', status_changed_at = NULL,"
        " status_changed_by_id = NULL, version = 1, seal = :seal WHERE id = :id",
        seal=booked,
        id=appointment,
    )
    found = problems(services)
    assert found[0].startswith(f"appointments #{appointment} CHANGED outside PumpClinic: ")
    assert "status (audited 'arrived', now 'booked')" in found[0]
    assert "appointments: sealed rows REPLACED or added outside PumpClinic" in found[1]
    assert len(found) == 2


def _seal_of(services: Services, appointment_id: int) -> bytes:
    with services.context.unit_of_work() as session:
        seal = session.scalar(select(Appointment.seal).where(Appointment.id == appointment_id))
        assert isinstance(seal, bytes)
        return seal


def test_a_session_without_the_audit_key_seals_nothing(services: Services, refilled: int) -> None:
    """Rows written without the key (not through a unit of work) are not sealed, so they
    do not pass for PumpClinic's."""
    with services.context.session_factory() as session, session.begin():
        refill = session.get(Refill, refilled)
        assert refill is not None
        session.add(
            Refill(
                pump_id=refill.pump_id,
                performed_at=refill.performed_at,
                performed_by_id=refill.performed_by_id,
                concentration_mcg_per_ml=2000,
                aspirated_residual_ml=0,
                volume_added_ml=1,
                volume_after_ml=1,
                created_at=refill.created_at,
            )
        )
    with services.context.unit_of_work() as session:
        unsealed = session.scalar(
            select(func.count()).select_from(Refill).where(Refill.seal.is_(None))
        )
    assert unsealed == 1
    assert any("INSERTED outside PumpClinic" in line for line in problems(services))


def test_the_audit_view_shows_the_sealed_creates_with_who_and_when(
    services: Services, nurse: Actor, staff: Actor, appointment: int
) -> None:
    services.booking.set_status(staff, appointment, 1, AppointmentStatus.ARRIVED)
    with services.context.unit_of_work() as session:
        patient_id = session.scalar(
            select(Appointment.patient_id).where(Appointment.id == appointment)
        )
    assert patient_id is not None
    rows = services.audit.for_patient(nurse, patient_id)
    lines = {(r.action, r.entity, r.entity_id): r for r in rows}
    created = lines[("create", "appointment", str(appointment))]
    assert created.username == "stef"
    # The values it was booked with (the change's "before"), not the ones it has now.
    assert ("status", "", "booked") in created.changes
    changed = lines[("update", "appointment", str(appointment))]
    assert ("status", "booked", "arrived") in changed.changes
    # The implant fill and starting program, sealed, are there too with their nurse.
    assert lines[("create", "refill", "1")].username == "nina"
    assert ("volume_after_ml", "", "20.0") in lines[("create", "refill", "1")].changes
    assert lines[("create", "dose_program", "1")].username == "nina"
    assert [r.at for r in rows] == sorted((r.at for r in rows), reverse=True)


def chain(services: Services) -> str:
    """What the chain check says of the audit chain's head (which covers the heads)."""
    with services.context.unit_of_work() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        result = verify_chain(
            services.context.audit_key,
            entries,
            session.get(AuditChainHead, 1),
            row_seals.heads_state(session.connection()),
        )
    return "intact" if result.ok else result.reason


def test_an_older_copy_of_the_heads_put_back_breaks_the_chain_head(
    services: Services, nurse: Actor, refilled: int, clock: FixedClock
) -> None:
    """Saving the heads, then deleting the refills recorded since and putting the saved
    heads back, leaves counts and sums that add up: the chain's head, sealed over every
    head, is what tells."""
    assert chain(services) == "intact"
    with services.context.unit_of_work() as session:
        saved = [
            (h.table_name, h.row_count, h.digest, h.seal)
            for h in session.scalars(select(RowSealHead))
        ]
    clock.advance(days=20)
    newest = refill_again(services, nurse, _pump_of(services, refilled), clock)
    assert chain(services) == "intact"
    for statement in (
        "DELETE FROM dose_programs WHERE refill_id = :id",
        "DELETE FROM refills WHERE id = :id",
    ):
        behind_the_apps_back(services, statement, id=newest.refill.id)
    for name, count, digest, seal in saved:
        behind_the_apps_back(
            services,
            "UPDATE row_seal_heads SET row_count = :count, digest = :digest, seal = :seal"
            " WHERE table_name = :name",
            count=count,
            digest=digest,
            seal=seal,
            name=name,
        )
    assert problems(services) == []  # the rows agree with the heads put back...
    assert chain(services).startswith("the chain's sealed head was changed")  # ...not the chain


def test_an_app_change_does_not_seal_over_a_change_made_behind_its_back(
    services: Services, staff: Actor, appointment: int
) -> None:
    behind_the_apps_back(
        services, "UPDATE appointments SET notes = 'moved by phone' WHERE id = :id", id=appointment
    )
    changed = [
        f"appointments #{appointment} CHANGED outside PumpClinic: its values no longer match"
        " the seal it was saved with"
    ]
    assert problems(services) == changed
    services.booking.set_status(staff, appointment, 1, AppointmentStatus.ARRIVED)
    found = problems(services)
    assert found[0].startswith(f"appointments #{appointment} CHANGED outside PumpClinic")


def test_a_row_inserted_behind_the_apps_back_is_not_adopted_by_an_app_change(
    services: Services, staff: Actor, appointment: int
) -> None:
    behind_the_apps_back(
        services,
        "INSERT INTO appointments (id, patient_id, pump_id, kind, status, starts_at, ends_at,"
        " booked_by_id, booked_at, late_reason, cancel_reason, notes, version)"
        " SELECT 777, patient_id, pump_id, kind, status, starts_at, ends_at, booked_by_id,"
        " booked_at, late_reason, cancel_reason, notes, version FROM appointments"
        " WHERE id = :id",
        id=appointment,
    )
    inserted = (
        "appointments #777 INSERTED outside PumpClinic: neither a seal nor an audit entry"
        " records it"
    )
    assert problems(services) == [inserted]
    services.booking.set_status(staff, 777, 1, AppointmentStatus.ARRIVED)
    assert _seal_of_or_none(services, 777) is None  # not sealed by the change
    assert problems(services) == [inserted]  # nor taken for PumpClinic's by its entry


def _seal_of_or_none(services: Services, appointment_id: int) -> bytes | None:
    with services.context.unit_of_work() as session:
        return session.scalar(select(Appointment.seal).where(Appointment.id == appointment_id))
