"""Patient registry rules: what a valid patient record is, and what needs a warning."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pumpclinic.domain.enums import Sex, SpasticityOrigin
from pumpclinic.domain.validation import FieldError, limit_text, require_text

# The safety of intrathecal baclofen is not established under 4 years (label and leaflet).
MIN_ESTABLISHED_AGE_YEARS = 4
OLDEST_BIRTH_DATE = dt.date(1900, 1, 1)
MRN_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/\-]{0,31}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_PATTERN = re.compile(r"^[0-9+()\-. ]{3,50}$")


@dataclass(frozen=True, slots=True)
class PatientInput:
    """What the add/edit form submits."""

    mrn: str
    family_name: str
    given_name: str
    date_of_birth: dt.date | None
    spasticity_origin: str
    diagnosis: str
    sex: str = Sex.UNKNOWN.value
    sci_at_or_above_t6: bool = False
    communication_difficulties: bool = False
    previous_withdrawal: bool = False
    allergies: str = ""
    other_medicines: str = ""
    pregnant: bool = False
    breastfeeding: bool = False
    phone: str = ""
    email: str = ""
    address: str = ""
    notes: str = ""
    contact_name: str = ""
    contact_relationship: str = ""
    contact_phone: str = ""
    condition_codes: frozenset[str] = field(default_factory=frozenset)
    medicine_codes: frozenset[str] = field(default_factory=frozenset)

    def normalized(self) -> PatientInput:
        """Trimmed copy; MRNs are compared case-insensitively, so stored upper case."""
        return PatientInput(
            mrn=self.mrn.strip().upper(),
            family_name=self.family_name.strip(),
            given_name=self.given_name.strip(),
            date_of_birth=self.date_of_birth,
            spasticity_origin=self.spasticity_origin,
            diagnosis=self.diagnosis.strip(),
            sex=self.sex,
            sci_at_or_above_t6=self.sci_at_or_above_t6,
            communication_difficulties=self.communication_difficulties,
            previous_withdrawal=self.previous_withdrawal,
            allergies=self.allergies.strip(),
            other_medicines=self.other_medicines.strip(),
            pregnant=self.pregnant,
            breastfeeding=self.breastfeeding,
            phone=self.phone.strip(),
            email=self.email.strip(),
            address=self.address.strip(),
            notes=self.notes.strip(),
            contact_name=self.contact_name.strip(),
            contact_relationship=self.contact_relationship.strip(),
            contact_phone=self.contact_phone.strip(),
            condition_codes=self.condition_codes,
            medicine_codes=self.medicine_codes,
        )


def age_in_years(date_of_birth: dt.date, today: dt.date) -> int:
    years = today.year - date_of_birth.year
    if (today.month, today.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def validate_patient(
    data: PatientInput,
    today: dt.date,
    known_condition_codes: Collection[str],
    known_medicine_codes: Collection[str],
) -> list[FieldError]:
    """Every problem with ``data``, each naming its field and the limit."""
    errors: list[FieldError] = []
    if not data.mrn.strip():
        errors.append(FieldError("mrn", "MRN is required."))
    elif not MRN_PATTERN.match(data.mrn.strip()):
        errors.append(
            FieldError(
                "mrn",
                "MRN must be 1 to 32 letters, digits, '-' or '/', starting with a letter or digit.",
            )
        )
    require_text(errors, "family_name", "Family name", data.family_name, 100)
    require_text(errors, "given_name", "Given name", data.given_name, 100)
    if data.date_of_birth is None:
        errors.append(FieldError("date_of_birth", "Date of birth is required."))
    elif data.date_of_birth > today:
        errors.append(
            FieldError(
                "date_of_birth",
                f"Date of birth cannot be in the future (today is {today.isoformat()}).",
            )
        )
    elif data.date_of_birth < OLDEST_BIRTH_DATE:
        errors.append(
            FieldError("date_of_birth", f"Date of birth must be on or after {OLDEST_BIRTH_DATE}.")
        )
    if not data.spasticity_origin:
        errors.append(FieldError("spasticity_origin", "Spasticity origin is required."))
    elif data.spasticity_origin not in {o.value for o in SpasticityOrigin}:
        errors.append(
            FieldError("spasticity_origin", "Spasticity origin must be spinal or cerebral.")
        )
    if data.sex not in {s.value for s in Sex}:
        errors.append(FieldError("sex", "Sex must be female, male, other or unknown."))
    require_text(errors, "diagnosis", "Diagnosis", data.diagnosis, 300)
    for name, label, limit in (
        ("allergies", "Allergies", 2000),
        ("other_medicines", "Other medicines", 2000),
        ("address", "Address", 500),
        ("notes", "Notes", 5000),
        ("contact_name", "Contact name", 200),
        ("contact_relationship", "Contact relationship", 100),
    ):
        limit_text(errors, name, label, getattr(data, name), limit)
    for name, label in (("phone", "Phone"), ("contact_phone", "Contact phone")):
        value = getattr(data, name).strip()
        if value and not PHONE_PATTERN.match(value):
            errors.append(
                FieldError(name, f"{label} may hold only digits, spaces and + ( ) - . (3 to 50).")
            )
    if data.email.strip() and not EMAIL_PATTERN.match(data.email.strip()):
        errors.append(FieldError("email", "Email must look like name@example.org."))
    if (data.contact_phone.strip() or data.contact_relationship.strip()) and not (
        data.contact_name.strip()
    ):
        errors.append(FieldError("contact_name", "Contact name is required for a contact."))
    if data.sex == Sex.MALE.value and (data.pregnant or data.breastfeeding):
        errors.append(
            FieldError("pregnant", "Pregnancy and breast-feeding do not apply when sex is male.")
        )
    unknown_conditions = sorted(set(data.condition_codes) - set(known_condition_codes))
    if unknown_conditions:
        errors.append(
            FieldError("conditions", f"Unknown condition codes: {', '.join(unknown_conditions)}.")
        )
    unknown_medicines = sorted(set(data.medicine_codes) - set(known_medicine_codes))
    if unknown_medicines:
        errors.append(
            FieldError("medicines", f"Unknown medicine codes: {', '.join(unknown_medicines)}.")
        )
    return errors


@dataclass(frozen=True, slots=True)
class PatientWarning:
    """Something a clinician must see; not a reason to refuse the record."""

    field: str
    message: str


def patient_warnings(
    date_of_birth: dt.date | None,
    medicine_codes: Collection[str],
    interacting_medicine_labels: Mapping[str, str],
    today: dt.date,
    pregnant: bool = False,
    breastfeeding: bool = False,
) -> list[PatientWarning]:
    """Warnings for the form: interacting medicines, age under 4, pregnancy."""
    warnings: list[PatientWarning] = []
    interacting = sorted(
        interacting_medicine_labels[code]
        for code in medicine_codes
        if code in interacting_medicine_labels
    )
    if interacting:
        warnings.append(
            PatientWarning(
                "medicines",
                "Interacts with intrathecal baclofen (leaflet list): "
                + ", ".join(interacting)
                + ". Added CNS depression: review with the clinician.",
            )
        )
    if date_of_birth is not None and date_of_birth <= today:
        age = age_in_years(date_of_birth, today)
        if age < MIN_ESTABLISHED_AGE_YEARS:
            warnings.append(
                PatientWarning(
                    "date_of_birth",
                    f"Patient is {age} years old: safety of intrathecal baclofen is not "
                    f"established under {MIN_ESTABLISHED_AGE_YEARS} years.",
                )
            )
    if pregnant:
        warnings.append(
            PatientWarning("pregnant", "Pregnant: tell the clinician before any dose change.")
        )
    if breastfeeding:
        warnings.append(
            PatientWarning("breastfeeding", "Breast-feeding: baclofen may pass into breast milk.")
        )
    return warnings
