"""Opening a clinic database: schema upgrade, catalogs, settings, and the service bundle."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from pumpclinic.db.engine import (
    current_revision,
    make_engine,
    make_session_factory,
    upgrade_schema,
)
from pumpclinic.db.models import DrugProduct, PumpModel
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.reference import Reference
from pumpclinic.services.alerts import AlertService
from pumpclinic.services.audit import AuditService, seal_existing_chain
from pumpclinic.services.audit_key import load_or_create_key
from pumpclinic.services.booking import BookingService
from pumpclinic.services.catalogs import CatalogService
from pumpclinic.services.context import Clock, ServiceContext, system_clock
from pumpclinic.services.errors import DatabaseUnavailable
from pumpclinic.services.integrity import ROWS_CHECKED_FROM_REVISION, adopt_unchecked_rows
from pumpclinic.services.patients import PatientService
from pumpclinic.services.refills import RefillService
from pumpclinic.services.row_seals import make_heads
from pumpclinic.services.screening import ScreeningService
from pumpclinic.services.settings import SettingsService, ensure_settings
from pumpclinic.services.users import UserService

# The migration that added the audit chain's sealed head.
SEALED_HEAD_REVISION = "0005"


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the GUI and the CLI may call, built around one context."""

    context: ServiceContext
    users: UserService
    patients: PatientService
    settings: SettingsService
    refills: RefillService
    booking: BookingService
    screening: ScreeningService
    audit: AuditService
    alerts: AlertService
    catalogs: CatalogService

    def close(self) -> None:
        bind = self.context.session_factory.kw.get("bind")
        if bind is not None:
            bind.dispose()


def sync_catalogs(session: Session, reference: Reference) -> None:
    """Add catalog entries new in the resource files; an admin's edits are kept."""
    have_pumps = set(session.scalars(select(PumpModel.id)))
    for spec in reference.pump_models:
        if spec.id in have_pumps:
            continue
        session.add(
            PumpModel(
                id=spec.id,
                manufacturer=spec.manufacturer,
                name=spec.name,
                model_number=spec.model_number,
                kind=str(spec.kind),
                reservoir_ml=spec.reservoir_ml,
                low_reservoir_alarm_ml=spec.low_reservoir_alarm_ml,
                flow_accuracy_pct=spec.flow_accuracy_pct,
                max_flex_steps=spec.max_flex_steps,
                battery_life_years=spec.battery_life_years,
                eri_days_before_end=spec.eri_days_before_end,
                constant_flow_ml_per_day=spec.constant_flow_ml_per_day,
                pocket_fill_warning_ml=spec.pocket_fill_warning_ml,
                plans_refill_with_boluses=spec.plans_refill_with_boluses,
                active=True,
            )
        )
    have_drugs = set(session.scalars(select(DrugProduct.id)))
    for drug in reference.drug_products:
        if drug.id in have_drugs:
            continue
        session.add(
            DrugProduct(
                id=drug.id,
                name=drug.name,
                concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
                screening_only=drug.screening_only,
                stability_days=drug.stability_days,
                active=True,
            )
        )


def open_clinic(
    url: str,
    reference: Reference,
    *,
    clock: Clock = system_clock,
    database_label: str | None = None,
    default_settings: ClinicSettingsData | None = None,
    audit_key: bytes | None = None,
) -> Services:
    """Open (creating if needed) the clinic database at ``url`` and upgrade its schema."""
    label = database_label or url
    try:
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"The database URL {label} is not valid: {exc}") from exc
    except ImportError as exc:
        raise DatabaseUnavailable(
            f"The database driver for {label} is not installed ({exc.name}); "
            "for PostgreSQL install PumpClinic with the 'postgresql' extra."
        ) from exc
    try:
        revision_before = current_revision(engine)
        upgrade_schema(engine)
    except OperationalError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"Could not open the database {label}: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"Could not upgrade the database {label}: {exc}") from exc
    context = ServiceContext(
        session_factory=make_session_factory(engine),
        clock=clock,
        reference=reference,
        database_label=label,
        audit_key=audit_key if audit_key is not None else load_or_create_key(),
    )
    with context.unit_of_work() as session:
        sync_catalogs(session, reference)
        ensure_settings(session, default_settings or ClinicSettingsData())
        if revision_before is not None and revision_before < SEALED_HEAD_REVISION:
            # This upgrade introduced the sealed head: seal the chain as it stands.
            seal_existing_chain(session, context.audit_key)
        # Created, or last written before row seals: the sealed tables' heads, made once
        # (make_heads leaves one missing since alone, for audit-verify to report).
        make_heads(session, context.audit_key)
        if revision_before is not None and revision_before < ROWS_CHECKED_FROM_REVISION:
            # This upgrade began checking clinical rows against the audit trail: record,
            # once, the rows earlier versions wrote without a complete entry.
            adopt_unchecked_rows(session, context.now())
    return Services(
        context=context,
        users=UserService(context),
        patients=PatientService(context),
        settings=SettingsService(context),
        refills=RefillService(context),
        booking=BookingService(context),
        screening=ScreeningService(context),
        audit=AuditService(context),
        alerts=AlertService(context),
        catalogs=CatalogService(context),
    )
