"""Kept forecasts: each pump's forecast is kept in the database and reused only while it
still holds — never a stale forecast after a refill, a program, a pump, a catalog value or
the clinic calendar changed, whoever made the change (the database's triggers count every
change to a pump's rows), nor for a time its rows in force were different."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from pumpclinic.db import triggers
from pumpclinic.db.engine import make_engine
from pumpclinic.db.models import DoseProgram, ImplantedPump, PumpForecast
from pumpclinic.domain.enums import Role
from pumpclinic.domain.reservoir import Forecast
from pumpclinic.services import alerts as alerts_module
from pumpclinic.services.alerts import AlertService, ComputedForecasts, keep_forecasts
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.demo import DEMO_USERS, create_demo_clinic
from pumpclinic.services.refills import DoubleCheck, RefillInput
from tests.conftest import PASSWORDS, FixedClock
from tests.services.refill_fixtures import implanted_patient, record_checked


@pytest.fixture
def demo(services: Services) -> Iterator[tuple[Services, Actor]]:
    create_demo_clinic(services.context, patients=40, years=1)
    nurse = next(u for u in DEMO_USERS if u.role is Role.NURSE)
    yield services, services.users.authenticate(nurse.username, nurse.password)


@pytest.fixture
def pump(services: Services, nurse: Actor, clinician: Actor) -> int:
    """The worked example's pump, its forecast kept by a first read of the alerts."""
    _patient_id, pump_id = implanted_patient(services, nurse, clinician)
    AlertService(services.context).alerts(nurse)
    assert pump_id in kept(services)
    return pump_id


class CountingForecast:
    """Counts the forecasts computed (rather than reused)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = alerts_module.fast_forecast
        monkeypatch.setattr(alerts_module, "fast_forecast", self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._real(*args, **kwargs)  # type: ignore[arg-type]


def kept(services: Services) -> dict[int, tuple[str, int, dt.datetime, dt.datetime | None]]:
    """Per pump: the kept forecast's inputs digest, input revision and span."""
    with services.context.unit_of_work() as session:
        rows = session.execute(
            select(
                PumpForecast.pump_id,
                PumpForecast.inputs,
                PumpForecast.input_revision,
                PumpForecast.inputs_from,
                PumpForecast.inputs_until,
            )
        )
        return {pump_id: tuple(rest) for pump_id, *rest in rows}  # type: ignore[misc]


def implanted_count(services: Services) -> int:
    with services.context.unit_of_work() as session:
        return session.scalar(
            select(func.count(ImplantedPump.id)).where(ImplantedPump.explanted_on.is_(None))
        )


def fresh_alerts(
    services: Services, nurse: Actor, as_of: dt.datetime | None = None
) -> alerts_module.AlertList:
    """As a newly started workstation sees them."""
    return AlertService(services.context).alerts(nurse, as_of)


def fresh_forecast(services: Services, nurse: Actor, pump_id: int) -> Forecast | None:
    return AlertService(services.context).forecasts(nurse)[pump_id]


def computed_alone(services: Services, nurse: Actor, pump_id: int) -> Forecast | None:
    """The pump's forecast from its whole history, as the patient's page computes it."""
    return services.refills.forecast_for_pump(nurse, pump_id)


def assert_same(a: Forecast | None, b: Forecast | None) -> None:
    assert a is not None and b is not None
    assert (a.refill_due, a.daily_volume_ml) == (b.refill_due, pytest.approx(b.daily_volume_ml))
    for name in ("alarm_at", "empty_at", "stability_limit_at"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        assert x is None or abs(x - y) <= dt.timedelta(milliseconds=1), (name, x, y)


def test_the_demo_clinic_keeps_every_forecast_and_a_new_process_reuses_them(
    demo: tuple[Services, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, nurse = demo
    assert len(kept(services)) == implanted_count(services) > 30
    counting = CountingForecast(monkeypatch)
    result = fresh_alerts(services, nurse)
    assert counting.calls == 0 and result.rows


def test_kept_forecasts_give_the_same_alerts_as_computing_them(
    demo: tuple[Services, Actor],
) -> None:
    services, nurse = demo
    with_kept = fresh_alerts(services, nurse)
    with services.context.unit_of_work() as session:
        session.execute(PumpForecast.__table__.delete())
    computed = fresh_alerts(services, nurse)
    assert computed.rows == with_kept.rows
    assert len(kept(services)) == implanted_count(services)  # kept again


@pytest.fixture
def admin_of_demo(demo: tuple[Services, Actor]) -> Actor:
    services, _nurse = demo
    admin = next(u for u in DEMO_USERS if u.role is Role.ADMIN)
    return services.users.authenticate(admin.username, admin.password)


def test_a_calendar_change_makes_every_forecast_be_computed_again(
    demo: tuple[Services, Actor], admin_of_demo: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, nurse = demo
    before = kept(services)
    settings, version = services.settings.get()
    holiday = (dt.date(2026, 12, 10), "Staff training")
    services.settings.update(
        admin_of_demo,
        dataclasses.replace(settings, holidays=(*settings.holidays, holiday)),
        version,
    )
    counting = CountingForecast(monkeypatch)
    result = fresh_alerts(services, nurse)
    assert counting.calls == len(before)
    after = kept(services)
    assert set(after) == set(before) and all(after[p][0] != before[p][0] for p in before)
    # ... and nobody is told to come on the new holiday.
    assert all(row.alert.refill_due != holiday[0] for row in result.rows)


def test_a_catalog_change_is_not_hidden_by_a_kept_forecast(
    demo: tuple[Services, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, nurse = demo
    before = kept(services)
    with services.context.unit_of_work() as session:
        from pumpclinic.db.models import DrugProduct

        session.execute(update(DrugProduct).values(stability_days=DrugProduct.stability_days - 1))
    counting = CountingForecast(monkeypatch)
    fresh_alerts(services, nurse)
    assert counting.calls == len(before)


def test_a_recorded_refill_replaces_the_kept_forecast(
    services: Services, nurse: Actor, pump: int, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.advance(days=16)  # Sat 12 Dec: overdue
    assert [r.kind.value for r in fresh_alerts(services, nurse).rows] == ["refill_overdue"]
    first = kept(services)[pump]
    record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump,
            performed_at=clock(),
            aspirated_residual_ml=4.8,
            drug_product_id="baclofen-2000",
            lot_number="LOT-B2",
            volume_added_ml=20.0,
            dose_mcg_per_day=400.0,
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 400),
    )
    assert pump not in kept(services)  # deleted in the refill's own transaction
    counting = CountingForecast(monkeypatch)
    assert fresh_alerts(services, nurse).rows == ()  # the overdue alert closed
    assert counting.calls == 1
    second = kept(services)[pump]
    assert second[1] > first[1] and second[2] == clock()
    single = computed_alone(services, nurse, pump)
    with services.context.unit_of_work() as session:
        row = session.get(PumpForecast, pump)
        assert row is not None and single is not None
        assert (row.refill_due, row.alarm_at) == (single.refill_due, single.alarm_at)


def test_a_program_change_replaces_the_kept_forecast(
    services: Services, nurse: Actor, pump: int, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fresh_forecast(services, nurse, pump)
    with services.context.unit_of_work() as session:
        session.add(
            DoseProgram(
                pump_id=pump,
                effective_from=clock() - dt.timedelta(days=1),
                concentration_mcg_per_ml=2000,
                dose_mcg_per_day=600,
                reason="titration",
                created_at=clock(),
            )
        )
    assert pump not in kept(services)
    counting = CountingForecast(monkeypatch)
    after = fresh_forecast(services, nurse, pump)
    assert counting.calls == 1
    assert before is not None and after is not None and after.empty_at < before.empty_at
    assert_same(after, computed_alone(services, nurse, pump))


def test_a_change_to_the_pump_replaces_the_kept_forecast(
    services: Services, nurse: Actor, pump: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fresh_forecast(services, nurse, pump)
    with services.context.unit_of_work() as session:
        session.execute(
            update(ImplantedPump).where(ImplantedPump.id == pump).values(low_reservoir_alarm_ml=4)
        )
    counting = CountingForecast(monkeypatch)
    after = fresh_forecast(services, nurse, pump)
    assert counting.calls == 1
    assert before is not None and after is not None and after.alarm_at < before.alarm_at
    assert_same(after, computed_alone(services, nurse, pump))


# Writes made with another tool, straight to the tables: (statement, what it changes).
BEHIND_THE_APP = [
    pytest.param(
        "UPDATE refills SET volume_after_ml = volume_after_ml - 10 WHERE pump_id = :pump",
        "empty_at",
        id="fill",
    ),
    pytest.param(
        "UPDATE dose_programs SET dose_mcg_per_day = 200 WHERE pump_id = :pump",
        "empty_at",
        id="program",
    ),
    pytest.param(
        "INSERT INTO flex_steps (program_id, step_number, starts_at_minute, rate_mcg_per_day)"
        " SELECT id, 1, 0, 800 FROM dose_programs WHERE pump_id = :pump",
        "empty_at",
        id="flex-step",
    ),
    pytest.param(
        "UPDATE implanted_pumps SET low_reservoir_alarm_ml = 5 WHERE id = :pump",
        "alarm_at",
        id="pump",
    ),
]


def _plain_engine(services: Services) -> Engine:
    """Another program's connection to the same database (not PumpClinic's engine)."""
    url = services.context.session_factory.kw["bind"].url
    return make_engine(url.render_as_string(hide_password=False))


@pytest.mark.parametrize(("statement", "changed"), BEHIND_THE_APP)
def test_a_write_behind_the_apps_back_is_not_hidden_by_a_kept_forecast(
    services: Services,
    nurse: Actor,
    pump: int,
    monkeypatch: pytest.MonkeyPatch,
    statement: str,
    changed: str,
) -> None:
    before = fresh_forecast(services, nurse, pump)
    engine = _plain_engine(services)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement), {"pump": pump})
    finally:
        engine.dispose()
    counting = CountingForecast(monkeypatch)
    after = fresh_forecast(services, nurse, pump)
    assert counting.calls == 1
    assert getattr(after, changed) != getattr(before, changed)
    assert_same(after, computed_alone(services, nurse, pump))


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("statement", "changed"), BEHIND_THE_APP)
def test_a_write_with_the_sqlite3_module_is_not_hidden_by_a_kept_forecast(
    services: Services,
    nurse: Actor,
    pump: int,
    monkeypatch: pytest.MonkeyPatch,
    statement: str,
    changed: str,
) -> None:
    before = fresh_forecast(services, nurse, pump)
    path = make_url(str(services.context.session_factory.kw["bind"].url)).database
    connection = sqlite3.connect(str(path))
    try:
        with connection:
            connection.execute(statement, {"pump": pump})
    finally:
        connection.close()
    counting = CountingForecast(monkeypatch)
    after = fresh_forecast(services, nurse, pump)
    assert counting.calls == 1
    assert getattr(after, changed) != getattr(before, changed)
    assert_same(after, computed_alone(services, nurse, pump))


def test_a_forecast_read_before_a_change_and_kept_after_it_is_not_reused(
    services: Services, nurse: Actor, pump: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workstations: one reads the pump (and computes its forecast) while the other
    records a change, and keeps the forecast only after the change was committed."""
    with services.context.unit_of_work() as session:
        session.execute(PumpForecast.__table__.delete())
    computed: ComputedForecasts = []
    with services.context.unit_of_work() as session:
        alerts_module.read_forecasts(
            session, services.context.reference, services.context.now(), computed=computed
        )
    with services.context.unit_of_work() as session:
        session.execute(
            update(DoseProgram).where(DoseProgram.pump_id == pump).values(dose_mcg_per_day=200)
        )
    keep_forecasts(services.context, computed)  # stale: computed from the 400 mcg/day
    assert pump in kept(services)
    counting = CountingForecast(monkeypatch)
    after = fresh_forecast(services, nurse, pump)
    assert counting.calls == 1
    assert_same(after, computed_alone(services, nurse, pump))


def test_a_kept_forecast_holds_only_for_times_with_the_same_rows_in_force(
    services: Services, nurse: Actor, pump: int, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.advance(days=16)  # Sat 12 Dec: overdue
    refill = RefillInput(
        pump_id=pump,
        performed_at=clock(),
        aspirated_residual_ml=4.8,
        drug_product_id="baclofen-2000",
        lot_number="LOT-B2",
        volume_added_ml=20.0,
        dose_mcg_per_day=400.0,
    )
    record_checked(
        services, nurse, refill, DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 400)
    )
    assert fresh_alerts(services, nurse).rows == ()
    kept_now = kept(services)[pump]
    # An hour before the refill, the earlier fill was in force: the pump was overdue.
    hour_before = clock() - dt.timedelta(hours=1)
    earlier = fresh_alerts(services, nurse, hour_before)
    assert [r.kind.value for r in earlier.rows] == ["refill_overdue"]
    # ... and that read did not replace the forecast that holds now.
    assert kept(services)[pump] == kept_now
    counting = CountingForecast(monkeypatch)
    assert fresh_alerts(services, nurse).rows == ()
    assert counting.calls == 0


def test_a_kept_forecast_ends_where_a_later_program_starts(
    services: Services, nurse: Actor, pump: int, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = clock() + dt.timedelta(days=3)
    with services.context.unit_of_work() as session:
        session.add(
            DoseProgram(
                pump_id=pump,
                effective_from=starts,
                concentration_mcg_per_ml=2000,
                dose_mcg_per_day=800,
                reason="planned increase",
                created_at=clock(),
            )
        )
    before = fresh_forecast(services, nurse, pump)
    assert kept(services)[pump][3] == starts
    clock.advance(days=4)
    counting = CountingForecast(monkeypatch)
    after = fresh_forecast(services, nurse, pump)
    assert counting.calls == 1
    assert before is not None and after is not None and after.empty_at < before.empty_at
    assert_same(after, computed_alone(services, nurse, pump))


def test_without_the_triggers_no_kept_forecast_is_trusted(
    demo: tuple[Services, Actor], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    services, nurse = demo
    with_kept = fresh_alerts(services, nurse)
    with services.context.unit_of_work() as session:
        dialect = session.get_bind().dialect.name
        session.execute(text(triggers.drop_statements(dialect)[0]))
    counting = CountingForecast(monkeypatch)
    caplog.set_level(logging.WARNING, logger="pumpclinic.alerts")
    assert fresh_alerts(services, nurse).rows == with_kept.rows
    assert counting.calls == implanted_count(services)
    assert "triggers are missing" in caplog.text
    # Nothing is kept without them, and what was kept is cleared.
    assert kept(services) == {}


def test_a_forecast_kept_before_the_triggers_went_missing_is_not_trusted_once_they_are_back(
    services: Services, nurse: Actor, pump: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change made while the triggers are missing counts no revision: the forecast kept
    before it must not look current again when the triggers are created again (as a
    migration that rebuilds a table on SQLite must do)."""
    before = fresh_forecast(services, nurse, pump)
    assert pump in kept(services)
    with services.context.unit_of_work() as session:
        dialect = session.get_bind().dialect.name
        for statement in triggers.drop_statements(dialect):
            session.execute(text(statement))
    with services.context.unit_of_work() as session:
        session.execute(
            update(DoseProgram).where(DoseProgram.pump_id == pump).values(dose_mcg_per_day=200)
        )
    during = fresh_forecast(services, nurse, pump)
    assert before is not None and during is not None and during.empty_at != before.empty_at
    with services.context.unit_of_work() as session:
        for statement in triggers.create_statements(dialect):
            session.execute(text(statement))
    after = fresh_forecast(services, nurse, pump)
    assert after is not None and after.empty_at == during.empty_at
    assert_same(after, computed_alone(services, nurse, pump))


def test_a_kept_forecast_that_cannot_be_written_is_only_logged(
    demo: tuple[Services, Actor], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    services, nurse = demo
    caplog.set_level(logging.INFO, logger="pumpclinic.alerts")
    with services.context.unit_of_work() as session:
        session.execute(PumpForecast.__table__.delete())

    def read_only(*_args: object) -> None:
        raise OperationalError("INSERT", {}, Exception("attempt to write a readonly database"))

    monkeypatch.setattr(alerts_module, "store_forecasts", read_only)
    result = fresh_alerts(services, nurse)
    assert result.rows and kept(services) == {}
    assert "forecasts not kept" in caplog.text


def test_a_forecast_for_a_pump_gone_since_is_only_logged(
    services: Services, nurse: Actor, pump: int, caplog
) -> None:
    """Keeping forecasts never fails a read: here the pump is no longer there (another
    workstation keeping the same pump's forecast at the same moment fails the same way)."""
    caplog.set_level(logging.INFO, logger="pumpclinic.alerts")
    forecast = fresh_forecast(services, nurse, pump)
    assert forecast is not None
    now = services.context.now()
    gone = alerts_module.ComputedForecast(pump + 1000, "v0:x", 0, now, None, forecast)
    keep_forecasts(services.context, [gone])
    assert "forecasts not kept" in caplog.text
    assert set(kept(services)) == {pump}
