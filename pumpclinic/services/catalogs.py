"""The catalogs an administrator maintains: pump models and drug products.

The rows are seeded from resources/ (``sync_catalogs``) and then belong to the clinic. An
edit applies to new implants and new fills only: an implanted pump keeps the reservoir and
alarm volumes copied at implant, and a recorded fill keeps its drug and dates.

Each row has a version: a save names the version its form showed, and is refused (nothing
written) when another administrator saved the row since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select

from pumpclinic.db.models import DrugProduct, PumpModel
from pumpclinic.domain.enums import AuditAction
from pumpclinic.domain.validation import FieldError, require_int_range
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import NotFound, StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, require
from pumpclinic.services.settings import clinic_zone

STABILITY_DAYS_RANGE = (1, 365)


@dataclass(frozen=True, slots=True)
class PumpModelRow:
    id: str
    manufacturer: str
    name: str
    model_number: str
    kind: str
    reservoir_ml: float
    low_reservoir_alarm_ml: float
    flow_accuracy_pct: float
    pocket_fill_warning_ml: float
    active: bool
    version: int  # what a save of this row must name


@dataclass(frozen=True, slots=True)
class PumpModelEdit:
    """What an administrator may change on a pump model."""

    low_reservoir_alarm_ml: float
    flow_accuracy_pct: float
    pocket_fill_warning_ml: float
    active: bool


@dataclass(frozen=True, slots=True)
class DrugProductRow:
    id: str
    name: str
    concentration_mcg_per_ml: float
    screening_only: bool
    stability_days: int
    active: bool
    version: int  # what a save of this row must name


@dataclass(frozen=True, slots=True)
class DrugProductEdit:
    """What an administrator may change on a drug product (never screening-only)."""

    stability_days: int
    active: bool


def _pump_row(model: PumpModel) -> PumpModelRow:
    return PumpModelRow(
        id=model.id,
        manufacturer=model.manufacturer,
        name=model.name,
        model_number=model.model_number,
        kind=model.kind,
        reservoir_ml=model.reservoir_ml,
        low_reservoir_alarm_ml=model.low_reservoir_alarm_ml,
        flow_accuracy_pct=model.flow_accuracy_pct,
        pocket_fill_warning_ml=model.pocket_fill_warning_ml,
        active=model.active,
        version=model.version,
    )


def _drug_row(drug: DrugProduct) -> DrugProductRow:
    return DrugProductRow(
        id=drug.id,
        name=drug.name,
        concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
        screening_only=drug.screening_only,
        stability_days=drug.stability_days,
        active=drug.active,
        version=drug.version,
    )


def _ml(value: float) -> str:
    return f"{value:g} mL"


def pump_model_errors(reservoir_ml: float, data: PumpModelEdit) -> list[FieldError]:
    """Field errors for ``data`` on a pump model whose reservoir holds ``reservoir_ml``."""
    errors: list[FieldError] = []
    alarm = data.low_reservoir_alarm_ml
    if not (math.isfinite(alarm) and 0 < alarm < reservoir_ml):
        errors.append(
            FieldError(
                "low_reservoir_alarm_ml",
                "Low-reservoir alarm must be above 0 mL and below the "
                f"{_ml(reservoir_ml)} reservoir ({alarm:g} mL).",
            )
        )
    accuracy = data.flow_accuracy_pct
    if not (math.isfinite(accuracy) and 0 < accuracy < 100):
        errors.append(
            FieldError(
                "flow_accuracy_pct",
                f"Flow accuracy must be above 0 % and below 100 % ({accuracy:g} %).",
            )
        )
    pocket = data.pocket_fill_warning_ml
    if not (math.isfinite(pocket) and 0 < pocket < reservoir_ml):
        errors.append(
            FieldError(
                "pocket_fill_warning_ml",
                "Pocket-fill warning must be above 0 mL and below the "
                f"{_ml(reservoir_ml)} reservoir ({pocket:g} mL).",
            )
        )
    return errors


def drug_product_errors(data: DrugProductEdit) -> list[FieldError]:
    errors: list[FieldError] = []
    require_int_range(
        errors, "stability_days", "Stability", data.stability_days, *STABILITY_DAYS_RANGE
    )
    return errors


class CatalogService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    def pump_models(self, actor: Actor) -> list[PumpModelRow]:
        """Every pump model, active or not (anyone signed in may read the catalog)."""
        with self._ctx.unit_of_work() as session:
            models = session.scalars(
                select(PumpModel).order_by(PumpModel.manufacturer, PumpModel.name)
            )
            return [_pump_row(model) for model in models]

    def drug_products(self, actor: Actor) -> list[DrugProductRow]:
        """Every drug product, active or not (anyone signed in may read the catalog)."""
        with self._ctx.unit_of_work() as session:
            drugs = session.scalars(
                select(DrugProduct).order_by(
                    DrugProduct.screening_only, DrugProduct.concentration_mcg_per_ml
                )
            )
            return [_drug_row(drug) for drug in drugs]

    def update_pump_model(
        self, actor: Actor, model_id: str, expected_version: int, data: PumpModelEdit
    ) -> PumpModelRow:
        """Save ``data`` over the version ``expected_version`` the form showed."""
        require(actor, Permission.MANAGE_CATALOGS)
        with self._ctx.unit_of_work() as session:
            model = session.get(PumpModel, model_id)
            if model is None:
                raise NotFound(f"There is no pump model {model_id!r} in the catalog.")
            if model.version != expected_version:
                raise StaleRecord(
                    audit.stale_message(
                        session,
                        f"Pump model {model.name}",
                        "pump_model",
                        model.id,
                        clinic_zone(session),
                    )
                )
            errors = pump_model_errors(model.reservoir_ml, data)
            if errors:
                raise ValidationFailed(errors)
            before = audit.snapshot(model)
            model.low_reservoir_alarm_ml = data.low_reservoir_alarm_ml
            model.flow_accuracy_pct = data.flow_accuracy_pct
            model.pocket_fill_warning_ml = data.pocket_fill_warning_ml
            model.active = data.active
            if audit.snapshot(model) != before:
                session.flush()  # the UPDATE names the version read above, and bumps it
                audit.record(
                    session,
                    actor=actor,
                    at=self._ctx.now(),
                    action=AuditAction.UPDATE,
                    entity="pump_model",
                    entity_id=model.id,
                    before=before,
                    after=audit.snapshot(model),
                )
            return _pump_row(model)

    def update_drug_product(
        self, actor: Actor, product_id: str, expected_version: int, data: DrugProductEdit
    ) -> DrugProductRow:
        """Save ``data`` over the version ``expected_version`` the form showed."""
        require(actor, Permission.MANAGE_CATALOGS)
        errors = drug_product_errors(data)
        if errors:
            raise ValidationFailed(errors)
        with self._ctx.unit_of_work() as session:
            drug = session.get(DrugProduct, product_id)
            if drug is None:
                raise NotFound(f"There is no drug product {product_id!r} in the catalog.")
            if drug.version != expected_version:
                raise StaleRecord(
                    audit.stale_message(
                        session,
                        f"Drug product {drug.name}",
                        "drug_product",
                        drug.id,
                        clinic_zone(session),
                    )
                )
            before = audit.snapshot(drug)
            # Only these two: a screening-only product stays screening-only.
            drug.stability_days = data.stability_days
            drug.active = data.active
            if audit.snapshot(drug) != before:
                session.flush()  # the UPDATE names the version read above, and bumps it
                audit.record(
                    session,
                    actor=actor,
                    at=self._ctx.now(),
                    action=AuditAction.UPDATE,
                    entity="drug_product",
                    entity_id=drug.id,
                    before=before,
                    after=audit.snapshot(drug),
                )
            return _drug_row(drug)
