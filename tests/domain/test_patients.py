from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumpclinic.domain.patients import (
    PatientInput,
    age_in_years,
    patient_warnings,
    validate_patient,
)

TODAY = dt.date(2026, 11, 26)
CONDITIONS = {"epilepsy", "kidney-disease"}
MEDICINES = {"codeine", "morphine"}


def valid(**changes: object) -> PatientInput:
    base = {
        "mrn": "RIV-000001",
        "family_name": "Okafor",
        "given_name": "Ada",
        "date_of_birth": dt.date(1975, 4, 3),
        "spasticity_origin": "spinal",
        "diagnosis": "Multiple sclerosis",
    }
    base.update(changes)
    return PatientInput(**base)  # type: ignore[arg-type]


def fields(data: PatientInput) -> dict[str, str]:
    return {e.field: e.message for e in validate_patient(data, TODAY, CONDITIONS, MEDICINES)}


def test_a_complete_record_is_valid() -> None:
    assert fields(valid(condition_codes=frozenset({"epilepsy"}))) == {}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"mrn": ""}, "mrn", "MRN is required"),
        ({"mrn": "has space"}, "mrn", "1 to 32"),
        ({"mrn": "X" * 33}, "mrn", "1 to 32"),
        ({"family_name": "  "}, "family_name", "Family name is required"),
        ({"given_name": "x" * 101}, "given_name", "at most 100"),
        ({"date_of_birth": None}, "date_of_birth", "Date of birth is required"),
        ({"date_of_birth": dt.date(2026, 11, 27)}, "date_of_birth", "cannot be in the future"),
        ({"date_of_birth": dt.date(1899, 1, 1)}, "date_of_birth", "1900-01-01"),
        ({"spasticity_origin": ""}, "spasticity_origin", "is required"),
        ({"spasticity_origin": "muscular"}, "spasticity_origin", "spinal or cerebral"),
        ({"diagnosis": ""}, "diagnosis", "Diagnosis is required"),
        ({"email": "not-an-email"}, "email", "name@example.org"),
        ({"phone": "call me"}, "phone", "digits"),
        ({"contact_phone": "0123 456"}, "contact_name", "Contact name is required"),
        ({"sex": "male", "pregnant": True}, "pregnant", "do not apply"),
        ({"condition_codes": frozenset({"gout"})}, "conditions", "gout"),
        ({"medicine_codes": frozenset({"aspirin"})}, "medicines", "aspirin"),
    ],
)
def test_each_problem_names_its_field_and_limit(
    changes: dict[str, object], field: str, words: str
) -> None:
    problems = fields(valid(**changes))
    assert field in problems
    assert words in problems[field]


def test_date_of_birth_today_is_accepted() -> None:
    assert "date_of_birth" not in fields(valid(date_of_birth=TODAY))


def test_normalized_trims_and_upper_cases_the_mrn() -> None:
    data = valid(mrn="  riv-12 ", family_name=" Okafor ").normalized()
    assert data.mrn == "RIV-12"
    assert data.family_name == "Okafor"


@pytest.mark.parametrize(
    ("born", "age"),
    [
        (dt.date(2022, 11, 26), 4),
        (dt.date(2022, 11, 27), 3),
        (dt.date(2000, 2, 29), 26),
    ],
)
def test_age_in_years_counts_birthdays(born: dt.date, age: int) -> None:
    assert age_in_years(born, TODAY) == age


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY))
def test_age_is_never_negative_and_never_too_high(born: dt.date) -> None:
    age = age_in_years(born, TODAY)
    assert 0 <= age <= TODAY.year - born.year
    assert age >= TODAY.year - born.year - 1


def test_warnings_for_interacting_medicine_and_age_under_4() -> None:
    warnings = patient_warnings(
        dt.date(2023, 6, 1), {"codeine"}, {"codeine": "Codeine"}, TODAY, pregnant=True
    )
    by_field = {w.field: w.message for w in warnings}
    assert "Codeine" in by_field["medicines"]
    assert "under 4 years" in by_field["date_of_birth"]
    assert "pregnant" in by_field


def test_no_warning_for_a_four_year_old_without_interacting_medicines() -> None:
    assert patient_warnings(dt.date(2022, 11, 26), set(), {"codeine": "Codeine"}, TODAY) == []


@pytest.mark.parametrize("name", ["Europe", "", " UTC", "Mars/Olympus", "../etc/passwd"])
def test_invalid_time_zone_names(name: str) -> None:
    from pumpclinic.domain.clinic import is_valid_time_zone

    assert not is_valid_time_zone(name)


def test_valid_time_zone_names() -> None:
    from pumpclinic.domain.clinic import is_valid_time_zone

    assert is_valid_time_zone("Europe/London") and is_valid_time_zone("UTC")
