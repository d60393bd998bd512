"""Catalog edits: administrators only, validated field by field, audited, never retroactive."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from pumpclinic.db.models import AuditEntry, ImplantedPump
from pumpclinic.domain.enums import Role
from pumpclinic.services import catalogs
from pumpclinic.services.catalogs import (
    DrugProductEdit,
    DrugProductRow,
    PumpModelEdit,
    PumpModelRow,
)
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import NotFound, PermissionDenied, StaleRecord, ValidationFailed
from tests.conftest import PASSWORDS
from tests.services.refill_fixtures import implanted_patient

PUMP = "synchromed-ii-20"
DRUG = "baclofen-2000"


def _pump(services: Services, actor: Actor, model_id: str = PUMP) -> PumpModelRow:
    return next(m for m in services.catalogs.pump_models(actor) if m.id == model_id)


def _drug(services: Services, actor: Actor, product_id: str = DRUG) -> DrugProductRow:
    return next(d for d in services.catalogs.drug_products(actor) if d.id == product_id)


def _edit(model: PumpModelRow, **changes: object) -> PumpModelEdit:
    values: dict[str, object] = {
        "low_reservoir_alarm_ml": model.low_reservoir_alarm_ml,
        "flow_accuracy_pct": model.flow_accuracy_pct,
        "pocket_fill_warning_ml": model.pocket_fill_warning_ml,
        "active": model.active,
    }
    values.update(changes)
    return PumpModelEdit(**values)  # type: ignore[arg-type]


def _audits(services: Services, entity: str) -> list[AuditEntry]:
    with services.context.unit_of_work() as session:
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
        return entries


def test_anyone_signed_in_reads_every_catalog_row(services, admin, nurse, staff) -> None:
    assert services.catalogs.update_drug_product(admin, DRUG, 1, DrugProductEdit(30, False))
    for actor in (admin, nurse, staff):
        assert PUMP in {m.id for m in services.catalogs.pump_models(actor)}
        drugs = {d.id: d for d in services.catalogs.drug_products(actor)}
        assert DRUG in drugs and not drugs[DRUG].active  # inactive rows are listed too


def test_admin_edits_a_pump_model_and_it_is_audited(services, admin) -> None:
    before = _pump(services, admin)
    saved = services.catalogs.update_pump_model(
        admin,
        PUMP,
        before.version,
        PumpModelEdit(
            low_reservoir_alarm_ml=4.0,
            flow_accuracy_pct=12.5,
            pocket_fill_warning_ml=1.5,
            active=False,
        ),
    )
    assert (saved.low_reservoir_alarm_ml, saved.flow_accuracy_pct) == (4.0, 12.5)
    assert (saved.pocket_fill_warning_ml, saved.active) == (1.5, False)
    assert _pump(services, admin) == saved
    assert saved.reservoir_ml == before.reservoir_ml  # not editable

    [entry] = _audits(services, "pump_model")
    assert (entry.action, entry.entity_id, entry.username) == ("update", PUMP, "admin")
    old, new = json.loads(entry.before_json or ""), json.loads(entry.after_json or "")
    assert old["low_reservoir_alarm_ml"] == before.low_reservoir_alarm_ml
    assert new["low_reservoir_alarm_ml"] == 4.0 and new["active"] is False


def test_admin_edits_a_drug_product_and_it_is_audited(services, admin) -> None:
    before = _drug(services, admin)
    saved = services.catalogs.update_drug_product(admin, DRUG, 1, DrugProductEdit(30, True))
    assert saved.stability_days == 30 and _drug(services, admin).stability_days == 30
    [entry] = _audits(services, "drug_product")
    assert json.loads(entry.before_json or "")["stability_days"] == before.stability_days
    assert json.loads(entry.after_json or "")["stability_days"] == 30


def test_saving_unchanged_values_writes_no_audit_entry(services, admin) -> None:
    model = _pump(services, admin)
    services.catalogs.update_pump_model(admin, PUMP, 1, _edit(model))
    assert _audits(services, "pump_model") == []


def test_a_screening_only_product_stays_screening_only(services, admin) -> None:
    screening = next(d for d in services.catalogs.drug_products(admin) if d.screening_only)
    saved = services.catalogs.update_drug_product(admin, screening.id, 1, DrugProductEdit(10, True))
    assert saved.screening_only and _drug(services, admin, screening.id).screening_only


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("low_reservoir_alarm_ml", 0.0, "20 mL"),
        ("low_reservoir_alarm_ml", -1.0, "20 mL"),
        ("low_reservoir_alarm_ml", 20.0, "20 mL"),
        ("low_reservoir_alarm_ml", math.nan, "20 mL"),
        ("flow_accuracy_pct", 0.0, "100 %"),
        ("flow_accuracy_pct", 100.0, "100 %"),
        ("flow_accuracy_pct", math.inf, "100 %"),
        ("pocket_fill_warning_ml", 0.0, "20 mL"),
        ("pocket_fill_warning_ml", 25.0, "20 mL"),
    ],
)
def test_a_bad_pump_value_names_its_field_and_changes_nothing(
    services, admin, field: str, value: float, limit: str
) -> None:
    before = _pump(services, admin)
    with pytest.raises(ValidationFailed) as failed:
        services.catalogs.update_pump_model(admin, PUMP, 1, _edit(before, **{field: value}))
    [error] = failed.value.errors
    assert error.field == field and limit in error.message
    assert _pump(services, admin) == before
    assert _audits(services, "pump_model") == []


@pytest.mark.parametrize("days", [0, -5, 366])
def test_a_bad_stability_names_its_field_and_changes_nothing(services, admin, days) -> None:
    before = _drug(services, admin)
    with pytest.raises(ValidationFailed) as failed:
        services.catalogs.update_drug_product(admin, DRUG, 1, DrugProductEdit(days, False))
    assert failed.value.for_field("stability_days") == [
        f"Stability must be between 1 and 365 ({days})."
    ]
    assert _drug(services, admin) == before
    assert _audits(services, "drug_product") == []


@pytest.mark.parametrize("role", ["nurse", "clinician", "staff"])
def test_other_roles_are_refused(services, admin, role, request) -> None:
    actor = request.getfixturevalue(role)
    model, drug = _pump(services, admin), _drug(services, admin)
    with pytest.raises(PermissionDenied, match="edit catalogs"):
        services.catalogs.update_pump_model(actor, PUMP, 1, _edit(model, active=False))
    with pytest.raises(PermissionDenied, match="edit catalogs"):
        services.catalogs.update_drug_product(actor, DRUG, 1, DrugProductEdit(30, False))
    assert (_pump(services, admin), _drug(services, admin)) == (model, drug)


def test_an_unknown_row_is_not_found(services, admin) -> None:
    with pytest.raises(NotFound):
        services.catalogs.update_drug_product(admin, "no-such-drug", 1, DrugProductEdit(30, True))
    with pytest.raises(NotFound):
        services.catalogs.update_pump_model(
            admin, "no-such-pump", 1, PumpModelEdit(2.0, 10.0, 1.0, True)
        )


def test_an_implanted_pump_keeps_the_volumes_copied_at_implant(
    services, admin, nurse, clinician
) -> None:
    _patient_id, pump_id = implanted_patient(services, nurse, clinician)
    services.catalogs.update_pump_model(
        admin, PUMP, 1, _edit(_pump(services, admin), low_reservoir_alarm_ml=5.0)
    )
    with services.context.unit_of_work() as session:
        pump = session.get(ImplantedPump, pump_id)
        assert pump is not None
        assert (pump.reservoir_ml, pump.low_reservoir_alarm_ml) == (20.0, 2.0)


# --- two administrators on the same row -------------------------------------------------


@pytest.fixture
def alex(services: Services, admin: Actor) -> Actor:
    """A second administrator, at another workstation."""
    services.users.create_user(admin, "alex", "Alex Admin", Role.ADMIN, PASSWORDS[Role.ADMIN])
    return services.users.authenticate("alex", PASSWORDS[Role.ADMIN])


def test_a_stale_pump_model_save_is_refused_naming_who_and_when(services, admin, alex) -> None:
    opened = _pump(services, admin)  # the form ada fills
    alex_saved = services.catalogs.update_pump_model(
        alex, PUMP, opened.version, _edit(opened, low_reservoir_alarm_ml=3.0)
    )
    assert alex_saved.version == opened.version + 1

    with pytest.raises(StaleRecord) as refused:
        services.catalogs.update_pump_model(
            admin, PUMP, opened.version, _edit(opened, flow_accuracy_pct=10.0)
        )
    assert str(refused.value) == (
        f"Pump model {opened.name} was changed by alex at 2026-11-26 10:00 GMT after you opened"
        " it. Reload to see their changes; your edits were not saved."
    )
    assert _pump(services, admin) == alex_saved  # alex's save stands, nothing of ada's
    assert [e.username for e in _audits(services, "pump_model")] == ["alex"]

    # Over the version that is there now, ada's save goes through.
    saved = services.catalogs.update_pump_model(
        admin, PUMP, alex_saved.version, _edit(alex_saved, flow_accuracy_pct=10.0)
    )
    assert (saved.low_reservoir_alarm_ml, saved.flow_accuracy_pct) == (3.0, 10.0)
    assert saved.version == alex_saved.version + 1


def test_a_stale_drug_product_save_is_refused_naming_who_and_when(services, admin, alex) -> None:
    opened = _drug(services, admin)
    services.catalogs.update_drug_product(alex, DRUG, opened.version, DrugProductEdit(20, True))
    with pytest.raises(StaleRecord, match="changed by alex at 2026-11-26 10:00 GMT"):
        services.catalogs.update_drug_product(admin, DRUG, opened.version, DrugProductEdit(9, True))
    stored = _drug(services, admin)
    assert (stored.stability_days, stored.version) == (20, opened.version + 1)
    assert [e.username for e in _audits(services, "drug_product")] == ["alex"]


def test_two_saves_at_the_same_moment_one_wins_the_other_is_refused(
    services, admin, alex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both saves pass the version check; alex commits in between. The version in the
    UPDATE's WHERE catches it: refused, nothing of it written."""
    opened = _pump(services, admin)
    check = catalogs.pump_model_errors

    def alex_saves_meanwhile(reservoir_ml: float, data: PumpModelEdit) -> list:
        monkeypatch.setattr(catalogs, "pump_model_errors", check)
        services.catalogs.update_pump_model(
            alex, PUMP, opened.version, _edit(opened, pocket_fill_warning_ml=2.5)
        )
        return check(reservoir_ml, data)

    monkeypatch.setattr(catalogs, "pump_model_errors", alex_saves_meanwhile)
    with pytest.raises(StaleRecord, match="Reload"):
        services.catalogs.update_pump_model(
            admin, PUMP, opened.version, _edit(opened, active=False)
        )
    stored = _pump(services, admin)
    assert (stored.pocket_fill_warning_ml, stored.active) == (2.5, True)
    assert stored.version == opened.version + 1
    assert [e.username for e in _audits(services, "pump_model")] == ["alex"]
