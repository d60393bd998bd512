"""A patient with a SynchroMed II 20 mL pump: 20 mL of 2000 mcg/mL at 400 mcg/day,
filled 60 days before the fixed clock (ITB-FACTS §4–§5 worked example)."""

from __future__ import annotations

import datetime as dt

from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.refills import DoubleCheck, ImplantInput, RecordedRefill, RefillInput
from tests.conftest import NOW, PASSWORDS

FILLED_AT = NOW - dt.timedelta(days=60)


def checker(role_password_key, username: str, concentration: float, dose: float) -> DoubleCheck:
    return DoubleCheck(username, PASSWORDS[role_password_key], concentration, dose)


def record_checked(
    services: Services, actor: Actor, data: RefillInput, check: DoubleCheck
) -> RecordedRefill:
    """A refill saved as the refill dialog saves it: the second person's double check
    verified, then the refill recorded with the token it gives."""
    token = services.refills.verify_double_check(actor, data.pump_id, check)
    return services.refills.record_refill(actor, data, token)


def implanted_patient(
    services: Services,
    nurse: Actor,
    clinician: Actor,
    *,
    mrn: str = "RIV-000100",
    origin: str = "spinal",
    dose_mcg_per_day: float = 400,
    volume_ml: float = 20,
    drug: str = "baclofen-2000",
) -> tuple[int, int]:
    record = services.patients.create_patient(
        nurse,
        PatientInput(
            mrn=mrn,
            family_name="Okafor",
            given_name="Ada",
            date_of_birth=dt.date(1975, 4, 3),
            spasticity_origin=origin,
            diagnosis="Traumatic spinal cord injury T4",
        ),
    )
    concentration = {"baclofen-500": 500, "baclofen-1000": 1000, "baclofen-2000": 2000}[drug]
    from pumpclinic.domain.enums import Role

    pump_id = services.refills.implant_pump(
        nurse,
        ImplantInput(
            patient_id=record.id,
            pump_model_id="synchromed-ii-20",
            serial_number=f"NGP{mrn[-3:]}01",
            implanted_on=FILLED_AT.date(),
            filled_at=FILLED_AT,
            drug_product_id=drug,
            lot_number="LOT-A1",
            volume_ml=volume_ml,
            dose_mcg_per_day=dose_mcg_per_day,
        ),
        DoubleCheck(clinician.username, PASSWORDS[Role.CLINICIAN], concentration, dose_mcg_per_day),
    )
    return record.id, pump_id
