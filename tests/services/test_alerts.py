"""The alert worklist through the services: bulk reads equal the per-pump forecasts, contact
attempts, do-not-contact, and an alert that closes when the refill is recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select

from pumpclinic.db.models import AuditEntry, ImplantedPump, Patient
from pumpclinic.domain.alerts import (
    AlertKind,
    AlertSettings,
    ContactMethod,
    ContactOutcome,
    PumpSituation,
    RiskFlag,
    Severity,
    apply_risk_flags,
    evaluate,
    risk_flags,
)
from pumpclinic.domain.enums import AppointmentKind, AppointmentStatus, Role
from pumpclinic.services.alerts import ContactInput
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.demo import DEMO_USERS, create_demo_clinic
from pumpclinic.services.errors import NotFound, PermissionDenied, ValidationFailed
from pumpclinic.services.refills import DoubleCheck, RefillInput
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import implanted_patient, record_checked

# The worked example pump (filled NOW − 60 days) is due Fri 11 Dec: stability (77 days)
# ends Sun 13 Dec; the alarm sounds Sat 26 Dec.
DUE = dt.date(2026, 12, 11)


@pytest.fixture
def patient(services: Services, nurse: Actor, clinician: Actor) -> tuple[int, int]:
    return implanted_patient(services, nurse, clinician)


def refill_alerts(services: Services, actor: Actor, pump_id: int) -> list[AlertKind]:
    return [
        row.kind
        for row in services.alerts.alerts(actor).rows
        if row.alert.pump_id == pump_id and row.alert.family.value == "refill"
    ]


# --- the bulk reads ------------------------------------------------------------------------


@pytest.fixture
def demo(services: Services) -> Iterator[tuple[Services, Actor]]:
    create_demo_clinic(services.context, patients=60, years=2)
    nurse = next(u for u in DEMO_USERS if u.role is Role.NURSE)
    yield services, services.users.authenticate(nurse.username, nurse.password)


def test_bulk_forecasts_equal_the_per_pump_forecasts(demo: tuple[Services, Actor]) -> None:
    services, nurse = demo
    bulk = services.alerts.forecasts(nurse)
    with services.context.unit_of_work() as session:
        pump_ids = list(
            session.scalars(select(ImplantedPump.id).where(ImplantedPump.explanted_on.is_(None)))
        )
    assert len(pump_ids) > 50 and set(bulk) == set(pump_ids)
    tolerance = dt.timedelta(milliseconds=1)
    for pump_id in pump_ids:
        single = services.refills.forecast_for_pump(nurse, pump_id)
        assert single is not None
        fast = bulk[pump_id]
        assert fast.refill_due == single.refill_due, pump_id
        for name in ("alarm_at", "empty_at", "stability_limit_at"):
            a, b = getattr(fast, name), getattr(single, name)
            assert (a is None) == (b is None), (pump_id, name)
            assert a is None or abs(a - b) <= tolerance, (pump_id, name, a, b)


def test_bulk_alerts_equal_the_alerts_of_the_per_pump_forecasts(
    demo: tuple[Services, Actor],
) -> None:
    services, nurse = demo
    result = services.alerts.alerts(nurse)
    settings, _version = services.settings.get()
    today_start = dt.datetime.combine(
        NOW.astimezone(settings.zone).date(), dt.time(), tzinfo=settings.zone
    )
    situations = []
    flags = {}
    with services.context.unit_of_work() as session:
        pumps = session.execute(
            select(
                ImplantedPump.id, ImplantedPump.patient_id, ImplantedPump.battery_replace_by
            ).where(ImplantedPump.explanted_on.is_(None))
        ).all()
        for patient in session.scalars(select(Patient)):
            flags[patient.id] = risk_flags(
                sci_at_or_above_t6=patient.sci_at_or_above_t6,
                communication_difficulties=patient.communication_difficulties,
                previous_withdrawal=patient.previous_withdrawal,
            )
    models = {m.id: m for m in services.context.reference.pump_models}
    for pump_id, patient_id, battery in pumps:
        booked = [
            a.starts_at
            for a in services.booking.appointments_for_patient(nurse, patient_id)
            if a.kind is AppointmentKind.REFILL
            and a.status in (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED)
            and a.starts_at >= today_start
        ]
        overview = services.refills.overview(nurse, patient_id)
        assert overview.card is not None
        situations.append(
            PumpSituation(
                patient_id=patient_id,
                pump_id=pump_id,
                forecast=services.refills.forecast_for_pump(nurse, pump_id),
                next_booked_refill_at=min(booked, default=None),
                battery_replace_by=battery,
                battery_notice_days=models[overview.card.model_id].eri_days_before_end,
            )
        )
    one_by_one = apply_risk_flags(
        evaluate(
            situations,
            [],
            NOW,
            AlertSettings(zone=settings.zone, due_soon_horizon_days=settings.due_soon_horizon_days),
        ),
        flags,
    )
    bulk = [row.alert for row in result.rows if row.alert.pump_id is not None]
    assert [(a.pump_id, a.kind, a.severity, a.description) for a in bulk] == [
        (a.pump_id, a.kind, a.severity, a.description) for a in one_by_one
    ]
    # The demo has every refill state: each shows on the list.
    kinds = {a.kind for a in bulk}
    assert {
        AlertKind.PUMP_EMPTY,
        AlertKind.PAST_ALARM,
        AlertKind.REFILL_OVERDUE,
        AlertKind.REFILL_DUE_SOON,
    } <= kinds
    assert result.rows[0].severity is Severity.CRITICAL
    assert result.pumps_checked == len(situations)
    assert result.unforecastable_pump_ids == ()


def _count_statements(services: Services, action) -> int:
    engine = services.context.session_factory.kw["bind"]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_a_constant_number_of_queries_whatever_the_clinic_size(
    services: Services, nurse: Actor, clinician: Actor
) -> None:
    implanted_patient(services, nurse, clinician, mrn="RIV-000101")
    small = _count_statements(services, lambda: services.alerts.alerts(nurse))
    for number in range(102, 108):
        implanted_patient(services, nurse, clinician, mrn=f"RIV-000{number}")
    services.alerts.log_contact(
        nurse, ContactInput(1, NOW, ContactMethod.PHONE, ContactOutcome.NO_ANSWER)
    )
    large = _count_statements(services, lambda: services.alerts.alerts(nurse))
    # 13: the reads, then keeping the forecasts computed (new pumps), in a transaction of
    # its own that first checks that the kept-forecast triggers are in place.
    assert small == large <= 13


# --- an alert closes by itself -------------------------------------------------------------


def test_the_alert_closes_when_the_refill_is_recorded(
    services: Services, nurse: Actor, patient: tuple[int, int], clock
) -> None:
    _patient_id, pump_id = patient
    assert refill_alerts(services, nurse, pump_id) == []  # due in 15 days: not yet "soon"
    clock.advance(days=1)
    assert refill_alerts(services, nurse, pump_id) == [AlertKind.REFILL_DUE_SOON]
    clock.advance(days=15)  # Sat 12 Dec
    assert refill_alerts(services, nurse, pump_id) == [AlertKind.REFILL_OVERDUE]
    record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump_id,
            performed_at=clock(),
            aspirated_residual_ml=4.8,
            drug_product_id="baclofen-2000",
            lot_number="LOT-B2",
            volume_added_ml=20.0,
            dose_mcg_per_day=400.0,
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 400),
    )
    assert refill_alerts(services, nurse, pump_id) == []


def test_a_booking_on_or_before_the_due_date_closes_the_due_soon_alert(
    services: Services, nurse: Actor, patient: tuple[int, int], clock
) -> None:
    patient_id, pump_id = patient
    clock.advance(days=1)
    settings, _version = services.settings.get()
    late = dt.datetime.combine(DUE + dt.timedelta(days=3), dt.time(9, 0), tzinfo=settings.zone)
    row = services.booking.book_refill(nurse, patient_id, late, late_reason="Travelling")
    assert refill_alerts(services, nurse, pump_id) == [AlertKind.REFILL_BOOKED_LATE]
    on_time = dt.datetime.combine(DUE, dt.time(9, 0), tzinfo=settings.zone)
    services.booking.reschedule(nurse, row.id, row.version, on_time)
    assert refill_alerts(services, nurse, pump_id) == []


def test_risk_flags_on_the_patient_raise_the_alert(
    services: Services, nurse: Actor, patient: tuple[int, int], clock
) -> None:
    patient_id, pump_id = patient
    clock.advance(days=1)
    record = services.patients.get_patient(nurse, patient_id)
    from dataclasses import replace

    services.patients.update_patient(
        nurse, patient_id, record.version, replace(record.data, sci_at_or_above_t6=True)
    )
    (row,) = [r for r in services.alerts.alerts(nurse).rows if r.alert.pump_id == pump_id]
    assert row.severity is Severity.WARNING  # due soon (info), raised one level
    assert row.alert.raised_by == (RiskFlag.SCI_AT_OR_ABOVE_T6,)


# --- contact attempts and do-not-contact ---------------------------------------------------


def test_staff_log_contact_attempts_and_the_list_shows_the_last(
    services: Services, staff: Actor, patient: tuple[int, int], clock
) -> None:
    patient_id, pump_id = patient
    clock.advance(days=16)
    first = services.alerts.log_contact(
        staff,
        ContactInput(patient_id, clock() - dt.timedelta(hours=2), "phone", "no-answer"),
    )
    second = services.alerts.log_contact(
        staff,
        ContactInput(
            patient_id,
            clock() - dt.timedelta(minutes=5),
            ContactMethod.PHONE,
            ContactOutcome.REACHED,
            promised_date=DUE + dt.timedelta(days=3),
            notes="  Will come Monday morning  ",
        ),
    )
    assert second.notes == "Will come Monday morning"
    assert second.by == "Stef Frontdesk"
    attempts = services.alerts.contact_attempts(staff, patient_id)
    assert [a.id for a in attempts] == [second.id, first.id]
    (row,) = [r for r in services.alerts.alerts(staff).rows if r.alert.pump_id == pump_id]
    assert row.last_contact is not None
    assert row.last_contact.outcome is ContactOutcome.REACHED
    assert row.last_contact.promised_date == DUE + dt.timedelta(days=3)
    sheet = services.alerts.contact_sheet(staff, patient_id)
    assert sheet.phone == "" and len(sheet.attempts) == 2
    with services.context.unit_of_work() as session:
        logged = session.scalar(select(func.count()).where(AuditEntry.entity == "contact_attempt"))
    assert logged == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"at": NOW + dt.timedelta(hours=1)}, "at"),
        ({"at": dt.datetime(2026, 11, 26, 9, 0)}, "at"),
        ({"method": "pigeon"}, "method"),
        ({"outcome": "maybe"}, "outcome"),
        ({"method": "letter", "outcome": "no-answer"}, "outcome"),
        ({"promised_date": dt.date(2026, 11, 25)}, "promised_date"),
        ({"promised_date": dt.date(2028, 1, 1)}, "promised_date"),
        ({"notes": "x" * 2001}, "notes"),
    ],
)
def test_contact_attempts_are_checked(
    services: Services, staff: Actor, patient: tuple[int, int], changes: dict, field: str
) -> None:
    patient_id, _pump_id = patient
    values = {
        "patient_id": patient_id,
        "at": NOW,
        "method": ContactMethod.PHONE,
        "outcome": ContactOutcome.REACHED,
    }
    values.update(changes)
    with pytest.raises(ValidationFailed) as caught:
        services.alerts.log_contact(staff, ContactInput(**values))
    assert caught.value.for_field(field)
    assert services.alerts.contact_attempts(staff, patient_id) == []


def test_unknown_patient_and_roles(
    services: Services, admin: Actor, staff: Actor, patient: tuple[int, int]
) -> None:
    with pytest.raises(NotFound):
        services.alerts.log_contact(staff, ContactInput(999, NOW, "phone", "reached"))
    with pytest.raises(PermissionDenied):
        services.alerts.alerts(admin)
    with pytest.raises(PermissionDenied):
        services.alerts.log_contact(admin, ContactInput(patient[0], NOW, "phone", "reached"))


def test_do_not_contact_needs_a_reason_and_never_hides_the_alert(
    services: Services, staff: Actor, patient: tuple[int, int], clock
) -> None:
    patient_id, pump_id = patient
    clock.advance(days=16)
    with pytest.raises(ValidationFailed) as caught:
        services.alerts.set_do_not_contact(staff, patient_id, True, "   ")
    assert caught.value.for_field("do_not_contact_reason")
    sheet = services.alerts.set_do_not_contact(
        staff, patient_id, True, "Lives in a care home: call the ward, not the patient"
    )
    assert sheet.do_not_contact
    (row,) = [r for r in services.alerts.alerts(staff).rows if r.alert.pump_id == pump_id]
    assert row.do_not_contact
    assert row.do_not_contact_reason.startswith("Lives in a care home")
    cleared = services.alerts.set_do_not_contact(staff, patient_id, False)
    assert not cleared.do_not_contact and cleared.do_not_contact_reason == ""
    with services.context.unit_of_work() as session:
        changes = session.scalars(
            select(AuditEntry.after_json).where(
                AuditEntry.entity == "patient", AuditEntry.action == "update"
            )
        ).all()
    assert len(changes) == 2


def test_booked_visits_for_the_calendar(
    services: Services, nurse: Actor, patient: tuple[int, int]
) -> None:
    patient_id, _pump_id = patient
    settings, _version = services.settings.get()
    starts = dt.datetime.combine(DUE, dt.time(9, 0), tzinfo=settings.zone)
    services.booking.book_refill(nurse, patient_id, starts)
    visits = services.alerts.booked_visits(nurse, DUE, DUE)
    assert [(v.patient_id, v.starts_at, v.kind) for v in visits] == [
        (patient_id, starts, AppointmentKind.REFILL)
    ]
    assert (
        services.alerts.booked_visits(nurse, DUE + dt.timedelta(days=1), DUE.replace(day=31)) == []
    )
    with pytest.raises(ValidationFailed):
        services.alerts.booked_visits(nurse, DUE, DUE - dt.timedelta(days=1))


def test_a_pump_without_a_forecast_is_reported_not_dropped(
    services: Services, nurse: Actor, patient: tuple[int, int]
) -> None:
    from sqlalchemy import delete

    from pumpclinic.db.models import DoseProgram

    _patient_id, pump_id = patient
    with services.context.unit_of_work() as session:
        session.execute(delete(DoseProgram).where(DoseProgram.pump_id == pump_id))
    result = services.alerts.alerts(nurse)
    assert result.unforecastable == ((pump_id, patient[0], "OKAFOR, Ada", "RIV-000100"),)
    assert result.unforecastable_pump_ids == (pump_id,)


def test_the_csv_keeps_formulas_as_text(
    services: Services, staff: Actor, patient: tuple[int, int], clock
) -> None:
    from pumpclinic.services.alert_reports import alerts_csv, overdue_rows

    patient_id, _pump_id = patient
    clock.advance(days=16)
    services.alerts.set_do_not_contact(staff, patient_id, True, '=HYPERLINK("x")')
    result = services.alerts.alerts(staff)
    text = alerts_csv(result.rows, result.zone)
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    assert [row.kind for row in overdue_rows(result.rows)] == [AlertKind.REFILL_OVERDUE]
