"""Kept forecasts: each pump's forecast is stored with the exact inputs it came from, and
reused only while those inputs are the same — never a stale forecast after a refill, a
program, a catalog value or the clinic calendar changed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from pumpclinic.db.models import ImplantedPump, PumpForecast
from pumpclinic.domain.enums import Role
from pumpclinic.services import alerts as alerts_module
from pumpclinic.services.alerts import AlertService
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.demo import DEMO_USERS, create_demo_clinic
from pumpclinic.services.refills import DoubleCheck, RefillInput
from tests.conftest import PASSWORDS
from tests.services.refill_fixtures import implanted_patient, record_checked


@pytest.fixture
def demo(services: Services) -> Iterator[tuple[Services, Actor]]:
    create_demo_clinic(services.context, patients=40, years=1)
    nurse = next(u for u in DEMO_USERS if u.role is Role.NURSE)
    yield services, services.users.authenticate(nurse.username, nurse.password)


class CountingForecast:
    """Counts the forecasts computed (rather than reused)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = alerts_module.fast_forecast
        monkeypatch.setattr(alerts_module, "fast_forecast", self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._real(*args, **kwargs)  # type: ignore[arg-type]


def kept(services: Services) -> dict[int, str]:
    with services.context.unit_of_work() as session:
        return dict(session.execute(select(PumpForecast.pump_id, PumpForecast.inputs)).all())


def implanted_count(services: Services) -> int:
    with services.context.unit_of_work() as session:
        return session.scalar(
            select(func.count(ImplantedPump.id)).where(ImplantedPump.explanted_on.is_(None))
        )


def fresh_alerts(services: Services, nurse: Actor) -> alerts_module.AlertList:
    """As a newly started workstation sees them: no forecasts kept in memory."""
    return AlertService(services.context).alerts(nurse)


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
    assert set(after) == set(before) and all(after[p] != before[p] for p in before)
    # ... and nobody is told to come on the new holiday.
    assert all(row.alert.refill_due != holiday[0] for row in result.rows)


@pytest.fixture
def admin_of_demo(demo: tuple[Services, Actor]) -> Actor:
    services, _nurse = demo
    admin = next(u for u in DEMO_USERS if u.role is Role.ADMIN)
    return services.users.authenticate(admin.username, admin.password)


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
    services: Services, nurse: Actor, clinician: Actor, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patient_id, pump_id = implanted_patient(services, nurse, clinician)
    services.alerts.alerts(nurse)
    first = kept(services)[pump_id]
    clock.advance(days=16)  # Sat 12 Dec: overdue
    assert [r.kind.value for r in fresh_alerts(services, nurse).rows] == ["refill_overdue"]
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
    counting = CountingForecast(monkeypatch)
    assert fresh_alerts(services, nurse).rows == ()  # the overdue alert closed
    assert counting.calls == 1
    second = kept(services)[pump_id]
    assert second != first
    single = services.refills.forecast_for_pump(nurse, pump_id)
    with services.context.unit_of_work() as session:
        row = session.get(PumpForecast, pump_id)
        assert row is not None and single is not None
        assert (row.refill_due, row.alarm_at) == (single.refill_due, single.alarm_at)


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
