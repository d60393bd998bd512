"""Starting dose and titration after implant (ITB-FACTS §2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumpclinic.domain.enums import SpasticityOrigin
from pumpclinic.domain.titration import (
    TitrationRange,
    check_titration,
    increase_bounds,
    starting_dose_mcg_per_day,
    titration_range,
)

SPINAL = SpasticityOrigin.SPINAL
CEREBRAL = SpasticityOrigin.CEREBRAL


# --- Starting dose --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screening_dose_mcg", "effect_hours", "expected"),
    [
        (50, 4, 100),
        (50, 8, 100),  # exactly 8 hours is not "more than 8 hours"
        (50, 8.01, 50),
        (50, 12, 50),
        (75, 6, 150),
        (100, 7.99, 200),
        (100, 8.5, 100),
        (25, 5, 50),
    ],
)
def test_starting_dose_is_twice_the_screening_dose_unless_the_effect_lasted_over_8_hours(
    screening_dose_mcg: float, effect_hours: float, expected: float
) -> None:
    assert starting_dose_mcg_per_day(screening_dose_mcg, effect_hours) == expected


def test_the_screening_dose_module_offers_the_same_rule() -> None:
    from pumpclinic.domain import screening

    assert screening.starting_dose_mcg_per_day is starting_dose_mcg_per_day


@pytest.mark.parametrize(
    ("dose", "hours", "words"),
    [
        (0, 4, "screening dose"),
        (-50, 4, "screening dose"),
        (float("nan"), 4, "screening dose"),
        (250, 4, "at most 200"),
        (50, 0, "effect duration"),
        (50, -1, "effect duration"),
        (50, float("inf"), "effect duration"),
        (50, 49, "at most 48"),
    ],
)
def test_starting_dose_refuses_nonsense(dose: float, hours: float, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        starting_dose_mcg_per_day(dose, hours)


# --- Titration range ------------------------------------------------------------------------


def test_spinal_adults_increase_10_to_30_percent() -> None:
    bounds = titration_range(100, SPINAL, child=False)
    assert bounds.min_mcg_per_day == pytest.approx(110)
    assert bounds.max_mcg_per_day == pytest.approx(130)
    assert increase_bounds(SPINAL, False) == (0.10, 0.30)


def test_cerebral_origin_increases_5_to_15_percent() -> None:
    bounds = titration_range(400, CEREBRAL, child=False)
    assert bounds == TitrationRange(pytest.approx(420), pytest.approx(460))


@pytest.mark.parametrize("origin", [SPINAL, CEREBRAL])
def test_children_increase_5_to_15_percent_whatever_the_origin(origin: SpasticityOrigin) -> None:
    bounds = titration_range(200, origin, child=True)
    assert (bounds.min_mcg_per_day, bounds.max_mcg_per_day) == (
        pytest.approx(210),
        pytest.approx(230),
    )


@pytest.mark.parametrize("dose", [0, -10, float("nan"), float("inf"), 3001])
def test_titration_range_refuses_nonsense(dose: float) -> None:
    with pytest.raises(ValueError, match="current dose"):
        titration_range(dose, SPINAL, child=False)


@given(
    dose=st.floats(min_value=1, max_value=2000),
    origin=st.sampled_from(list(SpasticityOrigin)),
    child=st.booleans(),
)
def test_the_range_is_always_above_the_current_dose(
    dose: float, origin: SpasticityOrigin, child: bool
) -> None:
    bounds = titration_range(dose, origin, child)
    assert dose < bounds.min_mcg_per_day < bounds.max_mcg_per_day <= dose * 1.3 + 1e-9
    # The top of the range itself never draws a warning a day later.
    assert check_titration(dose, bounds.max_mcg_per_day, origin, child, 24) is None


# --- Checking a change ----------------------------------------------------------------------


def test_an_increase_within_the_bounds_after_24_hours_is_fine() -> None:
    assert check_titration(100, 130, SPINAL, False, 24) is None
    assert check_titration(100, 115, CEREBRAL, False, 48) is None
    assert check_titration(100, 115, SPINAL, True, 30) is None


def test_a_small_increase_is_not_a_warning() -> None:
    assert check_titration(100, 104, SPINAL, False, 48) is None


def test_an_increase_over_30_percent_for_spinal_origin_is_a_warning() -> None:
    warning = check_titration(100, 131, SPINAL, False, 48)
    assert warning is not None
    assert "31.0 %" in warning and "more than the 30 %" in warning
    assert "spasticity of spinal origin" in warning and "at most 130 mcg/day" in warning


def test_an_increase_over_15_percent_for_cerebral_origin_or_a_child_is_a_warning() -> None:
    cerebral = check_titration(100, 120, CEREBRAL, False, 48)
    assert cerebral is not None and "more than the 15 %" in cerebral
    assert "cerebral origin" in cerebral
    child = check_titration(100, 120, SPINAL, True, 48)
    assert child is not None and "for children" in child


def test_a_second_increase_within_24_hours_is_a_warning() -> None:
    warning = check_titration(100, 110, SPINAL, False, 23.5)
    assert warning is not None
    assert "23 h 30 min ago" in warning and "at most once per 24 hours" in warning


def test_no_increase_in_the_first_24_hours_after_implant() -> None:
    warning = check_titration(100, 110, SPINAL, False, 0)
    assert warning is not None and "first 24 hours after implant" in warning


def test_both_problems_in_one_warning() -> None:
    warning = check_titration(100, 200, SPINAL, False, 2)
    assert warning is not None
    assert "more than the 30 %" in warning and "at most once per 24 hours" in warning


def test_a_decrease_or_no_change_is_never_a_warning() -> None:
    assert check_titration(100, 50, SPINAL, False, 0) is None
    assert check_titration(100, 100, CEREBRAL, True, 1) is None


def test_check_titration_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="new dose"):
        check_titration(100, 0, SPINAL, False, 24)
    with pytest.raises(ValueError, match="old dose"):
        check_titration(float("nan"), 100, SPINAL, False, 24)
    with pytest.raises(ValueError, match="hours since the last change"):
        check_titration(100, 110, SPINAL, False, -1)
