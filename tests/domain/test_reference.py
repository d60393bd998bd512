"""Reference data parsing: what an admin's edit of a resources file can and cannot get past."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumpclinic.domain.enums import PumpKind
from pumpclinic.domain.reference import (
    DrugProductSpec,
    LeafletItem,
    LeafletLists,
    Reference,
    ReferenceDataError,
    ScreeningDoseSpec,
    ScreeningProtocolSpec,
    SideEffectSeverity,
    parse_drug_products,
    parse_leaflet,
    parse_pump_catalog,
    parse_screening_protocols,
)

Entry = dict[str, Any]
Mutation = Callable[[Entry], None]


# --- Valid data -------------------------------------------------------------------------------


def programmable_pump() -> Entry:
    return {
        "id": "synchromed-ii-20",
        "manufacturer": "Medtronic",
        "name": "SynchroMed II 20 mL",
        "model_number": "8637-20",
        "kind": "programmable",
        "reservoir_ml": 20,
        "low_reservoir_alarm_ml": 2.0,
        "flow_accuracy_pct": 14.5,
        "max_flex_steps": 13,
        "battery_life_years": 7,
        "eri_days_before_end": 90,
        "constant_flow_ml_per_day": None,
        "pocket_fill_warning_ml": 1.0,
        "plans_refill_with_boluses": False,
        "min_patient_age_years": None,
        "allowed_concentrations_mcg_per_ml": [],
        "source": "test",
    }


def constant_flow_pump() -> Entry:
    return {
        "id": "codman-3000-30",
        "manufacturer": "Codman",
        "name": "Codman 3000 30 mL",
        "model_number": "3000",
        "kind": "constant-flow",
        "reservoir_ml": 30.0,
        "low_reservoir_alarm_ml": 2.0,
        "flow_accuracy_pct": 15.0,
        "max_flex_steps": 0,
        "battery_life_years": None,
        "eri_days_before_end": None,
        "constant_flow_ml_per_day": 1.0,
        "pocket_fill_warning_ml": 1.5,
        "plans_refill_with_boluses": False,
        "min_patient_age_years": 12,
        "allowed_concentrations_mcg_per_ml": [2000, 500],
        "source": "test",
    }


def drug(drug_id: str = "baclofen-500", concentration: float = 500, **changes: Any) -> Entry:
    entry: Entry = {
        "id": drug_id,
        "name": f"Baclofen {concentration} mcg/mL",
        "concentration_mcg_per_ml": concentration,
        "screening_only": False,
        "stability_days": 77,
        "ampoule_volume_ml": 20.0,
        "source": "test",
    }
    return entry | changes


def protocol() -> Entry:
    return {
        "id": "standard",
        "name": "Standard",
        "concentration_mcg_per_ml": 50,
        "min_interval_hours": 24,
        "assess_from_hours": 4,
        "observe_until_hours": 8,
        "vitals_watch_hours": 2,
        "doses": [
            {"number": 1, "dose_mcg": 50, "volume_ml": 1.0},
            {"number": 2, "dose_mcg": 75, "volume_ml": 1.5},
            {"number": 3, "dose_mcg": 100, "volume_ml": 2.0},
        ],
        "source": "test",
    }


def leaflet() -> Entry:
    def items(*pairs: tuple[str, str]) -> list[Entry]:
        return [{"id": item_id, "label": label} for item_id, label in pairs]

    return {
        "schema": 1,
        "source": "test leaflet",
        "interacting_medicines": items(("morphine", "Morphine"), ("zolpidem", "Zolpidem")),
        "precaution_conditions": items(("epilepsy", "Epilepsy")),
        "side_effects": [
            {"id": "seizures", "label": "Convulsions (seizures)", "severity": "seek-care"},
            {"id": "headache", "label": "Headache", "severity": "common"},
            {"id": "dry-mouth", "label": "Dry mouth", "severity": "less-common"},
        ],
        "overdose_signs": items(("seizures", "Convulsions (seizures)")),
        "withdrawal_signs": items(("sweating", "Sweating")),
        "treated_conditions": items(("cerebral-palsy", "Cerebral Palsy")),
        "cns_depressant_classes": items(("barbiturates", "Barbiturates")),
    }


def pumps_file(*entries: object) -> Entry:
    return {"schema": 1, "pump_models": list(entries)}


def drugs_file(*entries: Entry) -> Entry:
    return {"schema": 1, "drug_products": list(entries)}


def protocols_file(*entries: Entry) -> Entry:
    return {"schema": 1, "protocols": list(entries)}


def build_reference(
    pumps: tuple[Entry, ...] = (), drugs: tuple[Entry, ...] = (), protocols: tuple[Entry, ...] = ()
) -> Reference:
    return Reference(
        pump_models=parse_pump_catalog(pumps_file(*(pumps or (programmable_pump(),))), "p.json"),
        drug_products=parse_drug_products(
            drugs_file(*(drugs or (drug("baclofen-50", 50, screening_only=True), drug()))),
            "d.json",
        ),
        screening_protocols=parse_screening_protocols(
            protocols_file(*(protocols or (protocol(),))), "s.json"
        ),
        leaflet=parse_leaflet(leaflet(), "l.json"),
    )


def as_json(spec: object) -> Entry:
    """A spec written back as the JSON entry it came from."""
    assert dataclasses.is_dataclass(spec) and not isinstance(spec, type)
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(spec).items()
    }


@pytest.mark.parametrize("entry", [programmable_pump(), constant_flow_pump()])
def test_pump_entries_round_trip(entry: Entry) -> None:
    (spec,) = parse_pump_catalog(pumps_file(copy.deepcopy(entry)), "pumps.json")

    expected = entry | {
        "allowed_concentrations_mcg_per_ml": sorted(entry["allowed_concentrations_mcg_per_ml"])
    }
    assert as_json(spec) == expected
    assert isinstance(spec.kind, PumpKind)
    assert isinstance(spec.reservoir_ml, float)


def test_drug_products_round_trip() -> None:
    entries = [drug("baclofen-50", 50, screening_only=True, ampoule_volume_ml=1.0), drug()]

    specs = parse_drug_products(drugs_file(*copy.deepcopy(entries)), "drugs.json")

    assert [as_json(spec) for spec in specs] == entries
    assert specs[0] == DrugProductSpec(
        "baclofen-50", "Baclofen 50 mcg/mL", 50.0, True, 77, 1.0, "test"
    )


def test_screening_protocol_round_trips() -> None:
    (spec,) = parse_screening_protocols(protocols_file(protocol()), "screening-protocols.json")

    assert as_json(spec) == protocol()
    assert spec.doses == (
        ScreeningDoseSpec(1, 50.0, 1.0),
        ScreeningDoseSpec(2, 75.0, 1.5),
        ScreeningDoseSpec(3, 100.0, 2.0),
    )


def test_leaflet_round_trips_and_looks_up_items() -> None:
    lists = parse_leaflet(leaflet(), "leaflet.json")

    assert lists.source == "test leaflet"
    assert lists.side_effects[0] == LeafletItem(
        "seizures", "Convulsions (seizures)", SideEffectSeverity.SEEK_CARE
    )
    assert lists.interacting_medicines[0].severity is None
    assert lists.interacting_medicine_ids == frozenset({"morphine", "zolpidem"})
    assert lists.item("withdrawal_signs", "sweating").label == "Sweating"
    assert lists.labels("interacting_medicines") == {"morphine": "Morphine", "zolpidem": "Zolpidem"}
    assert [item.id for item in lists.items("overdose_signs")] == ["seizures"]
    with pytest.raises(KeyError, match="no item 'aspirin' in the leaflet list"):
        lists.item("interacting_medicines", "aspirin")
    with pytest.raises(KeyError, match="no leaflet list 'medicines'"):
        lists.items("medicines")


def test_reference_looks_up_by_id_with_a_clear_key_error() -> None:
    reference = build_reference()

    assert reference.pump_model("synchromed-ii-20").reservoir_ml == 20.0
    assert reference.drug_product("baclofen-500").concentration_mcg_per_ml == 500.0
    assert reference.screening_protocol("standard").doses[0].dose_mcg == 50.0
    with pytest.raises(KeyError, match="no pump model with id 'synchromed-ii-60'"):
        reference.pump_model("synchromed-ii-60")
    with pytest.raises(KeyError, match="no drug product with id 'baclofen-5'"):
        reference.drug_product("baclofen-5")
    with pytest.raises(KeyError, match="no screening protocol with id 'fast'; known ids: standard"):
        reference.screening_protocol("fast")


# --- The error message ------------------------------------------------------------------------


def test_error_message_names_file_entry_and_detail() -> None:
    error = ReferenceDataError(
        "pumps.json",
        "synchromed-ii-20",
        "low_reservoir_alarm_ml must be less than reservoir_ml (20)",
    )

    assert isinstance(error, ValueError)
    assert str(error) == (
        'pumps.json, entry "synchromed-ii-20": '
        "low_reservoir_alarm_ml must be less than reservoir_ml (20)"
    )
    assert str(ReferenceDataError("pumps.json", None, "schema must be 1")) == (
        "pumps.json: schema must be 1"
    )
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.file_name, copied.entry, str(copied)) == (
        "pumps.json",
        "synchromed-ii-20",
        str(error),
    )


def test_real_alarm_message() -> None:
    entry = programmable_pump() | {"low_reservoir_alarm_ml": 20}

    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(pumps_file(entry), "pumps.json")

    assert str(raised.value) == (
        'pumps.json, entry "synchromed-ii-20": '
        "low_reservoir_alarm_ml must be less than reservoir_ml (20), got 20"
    )


# --- Broken entries ---------------------------------------------------------------------------


def set_field(name: str, value: Any) -> Mutation:
    def mutate(entry: Entry) -> None:
        entry[name] = value

    return mutate


def drop_field(name: str) -> Mutation:
    def mutate(entry: Entry) -> None:
        del entry[name]

    return mutate


def rename_field(old: str, new: str) -> Mutation:
    def mutate(entry: Entry) -> None:
        entry[new] = entry.pop(old)

    return mutate


def assert_error(
    raised: pytest.ExceptionInfo[ReferenceDataError], file_name: str, entry: str | None, *parts: str
) -> None:
    message = str(raised.value)
    assert raised.value.file_name == file_name
    assert raised.value.entry == entry
    prefix = f'{file_name}, entry "{entry}": ' if entry is not None else f"{file_name}: "
    assert message.startswith(prefix), message
    for part in parts:
        assert part in message, message


PUMP_BREAKAGES = [
    pytest.param(drop_field("reservoir_ml"), ['missing field "reservoir_ml"'], id="missing"),
    pytest.param(
        rename_field("reservoir_ml", "reservoir_mL"),
        ['unknown field "reservoir_mL"', 'did you mean "reservoir_ml"'],
        id="typo-field",
    ),
    pytest.param(set_field("colour", "grey"), ['unknown field "colour"'], id="extra-field"),
    pytest.param(
        set_field("reservoir_ml", "20"), ['reservoir_ml must be a number, got "20"'], id="str"
    ),
    pytest.param(
        set_field("reservoir_ml", True), ["reservoir_ml must be a number, got true"], id="bool"
    ),
    pytest.param(
        set_field("reservoir_ml", None), ["reservoir_ml must be a number, got null"], id="null"
    ),
    pytest.param(
        set_field("reservoir_ml", 0), ["reservoir_ml must be greater than 0, got 0"], id="0"
    ),
    pytest.param(set_field("reservoir_ml", -20), ["reservoir_ml must be greater than 0"], id="neg"),
    pytest.param(
        set_field("reservoir_ml", float("nan")), ["reservoir_ml must be a finite"], id="nan"
    ),
    pytest.param(
        set_field("reservoir_ml", float("inf")), ["reservoir_ml must be a finite"], id="inf"
    ),
    pytest.param(
        set_field("low_reservoir_alarm_ml", 25),
        ["low_reservoir_alarm_ml must be less than reservoir_ml (20), got 25"],
        id="alarm-above-reservoir",
    ),
    pytest.param(
        set_field("low_reservoir_alarm_ml", 0),
        ["low_reservoir_alarm_ml must be greater than 0"],
        id="alarm-zero",
    ),
    pytest.param(
        set_field("pocket_fill_warning_ml", 20),
        ["pocket_fill_warning_ml must be less than reservoir_ml (20)"],
        id="pocket-fill-too-big",
    ),
    pytest.param(
        set_field("kind", "Programmable"),
        ['kind must be one of "programmable", "constant-flow", got "Programmable"'],
        id="kind",
    ),
    pytest.param(
        set_field("flow_accuracy_pct", 100), ["flow_accuracy_pct must be less than 100"], id="acc"
    ),
    pytest.param(
        set_field("flow_accuracy_pct", 0), ["flow_accuracy_pct must be greater than 0"], id="acc0"
    ),
    pytest.param(
        set_field("max_flex_steps", 1.5),
        ["max_flex_steps must be a whole number, got 1.5"],
        id="flex",
    ),
    pytest.param(
        set_field("max_flex_steps", True),
        ["max_flex_steps must be a whole number, got true"],
        id="fb",
    ),
    pytest.param(
        set_field("max_flex_steps", -1), ["max_flex_steps must be at least 0"], id="flex-"
    ),
    pytest.param(
        set_field("max_flex_steps", 25), ["max_flex_steps must be at most 24"], id="flex+"
    ),
    pytest.param(
        set_field("plans_refill_with_boluses", 1),
        ["plans_refill_with_boluses must be true or false, got 1"],
        id="bool-as-number",
    ),
    pytest.param(
        set_field("plans_refill_with_boluses", "false"),
        ['plans_refill_with_boluses must be true or false, got "false"'],
        id="bool-as-string",
    ),
    pytest.param(
        set_field("battery_life_years", 0), ["battery_life_years must be greater than 0"], id="batt"
    ),
    pytest.param(
        set_field("battery_life_years", None),
        ["eri_days_before_end needs battery_life_years"],
        id="eri-without-battery",
    ),
    pytest.param(
        set_field("eri_days_before_end", 3000),
        ["eri_days_before_end must be less than the battery life (2555 days), got 3000"],
        id="eri-too-long",
    ),
    pytest.param(
        set_field("eri_days_before_end", 0), ["eri_days_before_end must be at least 1"], id="eri0"
    ),
    pytest.param(
        set_field("constant_flow_ml_per_day", 0.5),
        ['constant_flow_ml_per_day must be null when kind is "programmable"'],
        id="programmable-with-rate",
    ),
    pytest.param(
        set_field("min_patient_age_years", 12.5),
        ["min_patient_age_years must be a whole number, got 12.5"],
        id="age-fraction",
    ),
    pytest.param(
        set_field("min_patient_age_years", -1),
        ["min_patient_age_years must be at least 0"],
        id="age",
    ),
    pytest.param(
        set_field("allowed_concentrations_mcg_per_ml", "500"),
        ['allowed_concentrations_mcg_per_ml must be a list of numbers, got "500"'],
        id="conc-not-list",
    ),
    pytest.param(
        set_field("allowed_concentrations_mcg_per_ml", [500, 0]),
        ["allowed_concentrations_mcg_per_ml[1] must be greater than 0, got 0"],
        id="conc-zero",
    ),
    pytest.param(
        set_field("allowed_concentrations_mcg_per_ml", [500, 500.0]),
        ["allowed_concentrations_mcg_per_ml[1] repeats 500"],
        id="conc-repeat",
    ),
    pytest.param(
        set_field("allowed_concentrations_mcg_per_ml", [True]),
        ["allowed_concentrations_mcg_per_ml[0] must be a number, got true"],
        id="conc-bool",
    ),
    pytest.param(set_field("name", "  "), ["name must not be empty"], id="blank-name"),
    pytest.param(set_field("manufacturer", 3), ["manufacturer must be a string, got 3"], id="manu"),
    pytest.param(drop_field("source"), ['missing field "source"'], id="no-source"),
]


@pytest.mark.parametrize(("mutate", "parts"), PUMP_BREAKAGES)
def test_broken_pump_entry_names_file_entry_and_field(mutate: Mutation, parts: list[str]) -> None:
    entry = programmable_pump()
    mutate(entry)

    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(pumps_file(constant_flow_pump(), entry), "pumps.json")

    assert_error(raised, "pumps.json", "synchromed-ii-20", *parts)


@pytest.mark.parametrize(
    ("mutate", "parts"),
    [
        pytest.param(
            set_field("constant_flow_ml_per_day", None),
            ['constant_flow_ml_per_day is required (greater than 0) when kind is "constant-flow"'],
            id="no-rate",
        ),
        pytest.param(
            set_field("constant_flow_ml_per_day", 0),
            ["constant_flow_ml_per_day must be greater than 0, got 0"],
            id="zero-rate",
        ),
        pytest.param(
            set_field("max_flex_steps", 3),
            ['max_flex_steps must be 0 when kind is "constant-flow", got 3'],
            id="flex",
        ),
    ],
)
def test_broken_constant_flow_pump(mutate: Mutation, parts: list[str]) -> None:
    entry = constant_flow_pump()
    mutate(entry)

    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(pumps_file(entry), "pumps.json")

    assert_error(raised, "pumps.json", "codman-3000-30", *parts)


@pytest.mark.parametrize(
    ("bad_id", "part"),
    [
        pytest.param("SynchroMed-II-20", 'got "SynchroMed-II-20"', id="upper"),
        pytest.param("synchromed_ii_20", 'got "synchromed_ii_20"', id="underscore"),
        pytest.param("synchromed--20", 'got "synchromed--20"', id="double-dash"),
        pytest.param("synchromed-", 'got "synchromed-"', id="trailing-dash"),
        pytest.param("synchromed\n", 'got "synchromed\\n"', id="newline"),
        pytest.param("a" * 65, "at most 64 characters", id="too-long"),
        pytest.param(7, "id must be a string, got 7", id="number"),
        pytest.param("", "id must not be empty", id="empty"),
    ],
)
def test_bad_id_is_reported_by_position(bad_id: object, part: str) -> None:
    entry = programmable_pump() | {"id": bad_id}

    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(pumps_file(constant_flow_pump(), entry), "pumps.json")

    assert_error(raised, "pumps.json", "pump_models[1]", part)


def test_missing_id_is_reported_by_position() -> None:
    entry = programmable_pump()
    del entry["id"]

    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(pumps_file(entry), "pumps.json")

    assert_error(raised, "pumps.json", "pump_models[0]", 'missing field "id"')


def test_duplicate_id_names_both_positions() -> None:
    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(
            pumps_file(programmable_pump(), constant_flow_pump(), programmable_pump()), "pumps.json"
        )

    assert_error(
        raised, "pumps.json", "synchromed-ii-20", "used twice: by pump_models[0] and pump_models[2]"
    )


@pytest.mark.parametrize(
    ("data", "part"),
    [
        pytest.param(
            [programmable_pump()], "the file must be a JSON object, got a list", id="list"
        ),
        pytest.param({"schema": 2, "pump_models": []}, "schema must be 1", id="schema-2"),
        pytest.param({"schema": "1", "pump_models": []}, 'got "1"', id="schema-str"),
        pytest.param({"schema": True, "pump_models": []}, "got true", id="schema-bool"),
        pytest.param({"schema": 1.0, "pump_models": []}, "got 1.0", id="schema-float"),
        pytest.param({"pump_models": []}, 'missing field "schema"', id="no-schema"),
        pytest.param({"schema": 1}, 'missing field "pump_models"', id="no-list"),
        pytest.param(
            {"schema": 1, "pump_model": []},
            'unknown field "pump_model" (did you mean "pump_models"?)',
            id="typo-list",
        ),
        pytest.param(
            {"schema": 1, "pump_models": []}, "pump_models must be a non-empty list", id="0"
        ),
        pytest.param({"schema": 1, "pump_models": {}}, "got an object", id="object"),
    ],
)
def test_broken_pump_file(data: object, part: str) -> None:
    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(data, "pumps.json")

    assert_error(raised, "pumps.json", None, part)


def test_entry_that_is_not_an_object() -> None:
    with pytest.raises(ReferenceDataError) as raised:
        parse_pump_catalog(pumps_file(programmable_pump(), "codman"), "pumps.json")

    assert_error(raised, "pumps.json", "pump_models[1]", 'must be a JSON object, got "codman"')


@pytest.mark.parametrize(
    ("mutate", "parts"),
    [
        pytest.param(
            set_field("concentration_mcg_per_ml", 0),
            ["concentration_mcg_per_ml must be greater than 0"],
            id="c0",
        ),
        pytest.param(
            set_field("concentration_mcg_per_ml", "500 mcg"), ['got "500 mcg"'], id="cstr"
        ),
        pytest.param(
            set_field("screening_only", "no"),
            ['screening_only must be true or false, got "no"'],
            id="sb",
        ),
        pytest.param(
            set_field("screening_only", 0), ["screening_only must be true or false, got 0"], id="s0"
        ),
        pytest.param(
            set_field("stability_days", None),
            ["stability_days must be a whole number, got null"],
            id="st",
        ),
        pytest.param(
            set_field("stability_days", 0), ["stability_days must be at least 1, got 0"], id="st0"
        ),
        pytest.param(
            set_field("stability_days", 77.5),
            ["stability_days must be a whole number, got 77.5"],
            id="stf",
        ),
        pytest.param(
            set_field("ampoule_volume_ml", -1),
            ["ampoule_volume_ml must be greater than 0"],
            id="amp",
        ),
        pytest.param(
            rename_field("stability_days", "stabilty_days"),
            ['did you mean "stability_days"'],
            id="typo",
        ),
    ],
)
def test_broken_drug_product(mutate: Mutation, parts: list[str]) -> None:
    entry = drug()
    mutate(entry)

    with pytest.raises(ReferenceDataError) as raised:
        parse_drug_products(drugs_file(entry), "drugs.json")

    assert_error(raised, "drugs.json", "baclofen-500", *parts)


def set_dose(index: int, name: str, value: Any) -> Mutation:
    def mutate(entry: Entry) -> None:
        entry["doses"][index][name] = value

    return mutate


def set_doses(*doses: tuple[int, float, float]) -> Mutation:
    return set_field("doses", [{"number": n, "dose_mcg": d, "volume_ml": v} for n, d, v in doses])


PROTOCOL_BREAKAGES = [
    pytest.param(
        set_field("doses", []), ["doses must be a list of 1 to 3 doses, got a list of 0"], id="none"
    ),
    pytest.param(
        set_doses((1, 50, 1.0), (2, 75, 1.5), (3, 100, 2.0), (4, 125, 2.5)),
        ["doses must be a list of 1 to 3 doses, got a list of 4"],
        id="four-doses",
    ),
    pytest.param(
        set_field("doses", {"1": 50}),
        ["doses must be a list of 1 to 3 doses, got an object"],
        id="obj",
    ),
    pytest.param(
        set_dose(1, "volume_ml", 1.4),
        [
            "doses[1].volume_ml × concentration_mcg_per_ml must equal doses[1].dose_mcg (75),"
            " got 1.4 × 50 = 70"
        ],
        id="arithmetic",
    ),
    pytest.param(
        set_dose(0, "dose_mcg", 50.001),
        ["doses[0].volume_ml × concentration_mcg_per_ml must equal doses[0].dose_mcg (50.001)"],
        id="arith-small",
    ),
    pytest.param(set_dose(1, "number", 3), ["doses[1].number must be 2, got 3"], id="numbering"),
    pytest.param(
        set_dose(0, "number", 0), ["doses[0].number must be at least 1, got 0"], id="number-0"
    ),
    pytest.param(
        set_dose(0, "number", "1"),
        ['doses[0].number must be a whole number, got "1"'],
        id="number-str",
    ),
    pytest.param(
        set_doses((1, 75, 1.5), (2, 50, 1.0)),
        ["doses[1].dose_mcg must be greater than the dose before it (75), got 50"],
        id="decreasing",
    ),
    pytest.param(
        set_doses((1, 50, 1.0), (2, 50, 1.0)),
        ["doses[1].dose_mcg must be greater than the dose before it (50), got 50"],
        id="repeated",
    ),
    pytest.param(
        set_dose(2, "volume_ml", 0), ["doses[2].volume_ml must be greater than 0, got 0"], id="vol0"
    ),
    pytest.param(
        set_dose(2, "dose_mcg", -100), ["doses[2].dose_mcg must be greater than 0"], id="dose-"
    ),
    pytest.param(
        set_dose(0, "volume", 1.0),
        ['unknown field "doses[0].volume"', 'did you mean "doses[0].volume_ml"'],
        id="dose-typo",
    ),
    pytest.param(
        set_field("doses", [50, 75]), ["doses[0] must be a JSON object, got 50"], id="dose-number"
    ),
    pytest.param(
        set_field("min_interval_hours", 0),
        ["min_interval_hours must be greater than 0, got 0"],
        id="interval",
    ),
    pytest.param(
        set_field("observe_until_hours", 3),
        ["assess_from_hours must be at most observe_until_hours (3), got 4"],
        id="observe",
    ),
    pytest.param(
        set_field("vitals_watch_hours", 9),
        ["vitals_watch_hours must be at most observe_until_hours (8), got 9"],
        id="vitals",
    ),
    pytest.param(
        set_field("min_interval_hours", 6),
        ["observe_until_hours must be at most min_interval_hours (6), got 8"],
        id="interval-short",
    ),
    pytest.param(
        set_field("concentration_mcg_per_ml", "50"),
        ['concentration_mcg_per_ml must be a number, got "50"'],
        id="conc",
    ),
    pytest.param(
        drop_field("vitals_watch_hours"), ['missing field "vitals_watch_hours"'], id="missing"
    ),
]


@pytest.mark.parametrize(("mutate", "parts"), PROTOCOL_BREAKAGES)
def test_broken_screening_protocol(mutate: Mutation, parts: list[str]) -> None:
    entry = protocol()
    mutate(entry)

    with pytest.raises(ReferenceDataError) as raised:
        parse_screening_protocols(protocols_file(entry), "screening-protocols.json")

    assert_error(raised, "screening-protocols.json", "standard", *parts)


@pytest.mark.parametrize(
    ("concentration", "doses"),
    [
        pytest.param(50, [(25, 0.5), (50, 1.0), (75, 1.5)], id="small-child"),
        pytest.param(50, [(50, 1.0)], id="one-dose"),
        pytest.param(50, [(0.1 * 3 * 50, 0.1 * 3)], id="float-rounding"),
        pytest.param(25, [(25, 1.0), (50, 2.0)], id="diluted"),
    ],
)
def test_protocol_doses_that_add_up_are_accepted(
    concentration: float, doses: list[tuple[float, float]]
) -> None:
    entry = protocol() | {
        "concentration_mcg_per_ml": concentration,
        "doses": [
            {"number": n, "dose_mcg": d, "volume_ml": v} for n, (d, v) in enumerate(doses, 1)
        ],
    }

    (spec,) = parse_screening_protocols(protocols_file(entry), "screening-protocols.json")

    assert [(d.dose_mcg, d.volume_ml) for d in spec.doses] == doses


@given(
    concentration=st.sampled_from([25, 50]),
    tenths_ml=st.lists(st.integers(1, 40), min_size=1, max_size=3, unique=True).map(sorted),
)
def test_any_volume_times_concentration_is_accepted_and_kept(
    concentration: int, tenths_ml: list[int]
) -> None:
    doses = [
        {"number": n, "dose_mcg": t * concentration / 10, "volume_ml": t / 10}
        for n, t in enumerate(tenths_ml, 1)
    ]
    entry = protocol() | {"concentration_mcg_per_ml": concentration, "doses": doses}

    (spec,) = parse_screening_protocols(protocols_file(entry), "screening-protocols.json")

    for dose in spec.doses:
        assert abs(dose.volume_ml * spec.concentration_mcg_per_ml - dose.dose_mcg) <= 1e-9


@pytest.mark.parametrize(
    ("mutate", "entry", "parts"),
    [
        pytest.param(
            lambda d: d["side_effects"][1].pop("severity"),
            "side_effects/headache",
            ['missing field "severity"'],
            id="no-severity",
        ),
        pytest.param(
            lambda d: d["side_effects"][1].update(severity="urgent"),
            "side_effects/headache",
            ['severity must be one of "seek-care", "common", "less-common", got "urgent"'],
            id="bad-severity",
        ),
        pytest.param(
            lambda d: d["interacting_medicines"][0].update(severity="common"),
            "interacting_medicines/morphine",
            ['unknown field "severity"'],
            id="severity-outside-side-effects",
        ),
        pytest.param(
            lambda d: d["interacting_medicines"][1].update(label=""),
            "interacting_medicines/zolpidem",
            ["label must not be empty"],
            id="empty-label",
        ),
        pytest.param(
            lambda d: d["interacting_medicines"][1].update(id="morphine"),
            "interacting_medicines/morphine",
            ["used twice: by interacting_medicines[0] and interacting_medicines[1]"],
            id="duplicate",
        ),
        pytest.param(
            lambda d: d["withdrawal_signs"][0].update(id="Sweating"),
            "withdrawal_signs[0]",
            ["id must be lowercase kebab-case", 'got "Sweating"'],
            id="bad-id",
        ),
        pytest.param(
            lambda d: d.pop("overdose_signs"),
            None,
            ['missing field "overdose_signs"'],
            id="missing-list",
        ),
        pytest.param(
            lambda d: d.update(withdrawal_signs=[]),
            None,
            ["withdrawal_signs must be a non-empty list, got a list of 0"],
            id="empty-list",
        ),
        pytest.param(
            lambda d: d.update(source=None),
            None,
            ["source must be a string, got null"],
            id="source",
        ),
        pytest.param(lambda d: d.update(schema=0), None, ["schema must be 1"], id="schema"),
    ],
)
def test_broken_leaflet(
    mutate: Callable[[Entry], object], entry: str | None, parts: list[str]
) -> None:
    data = leaflet()
    mutate(data)

    with pytest.raises(ReferenceDataError) as raised:
        parse_leaflet(data, "leaflet.json")

    assert_error(raised, "leaflet.json", entry, *parts)


def test_same_id_in_different_leaflet_lists_is_fine() -> None:
    lists = parse_leaflet(leaflet(), "leaflet.json")

    assert lists.item("side_effects", "seizures").severity is SideEffectSeverity.SEEK_CARE
    assert lists.item("overdose_signs", "seizures").severity is None


# --- The files must agree with each other -----------------------------------------------------


def test_protocol_needs_a_screening_product_at_its_concentration() -> None:
    with pytest.raises(ReferenceDataError) as raised:
        build_reference(drugs=(drug("baclofen-50", 50), drug()))

    assert_error(
        raised,
        "screening-protocols.json",
        "standard",
        "concentration_mcg_per_ml 50 matches no screening-only product in drugs.json",
    )


def test_pump_concentrations_must_be_pump_fill_products() -> None:
    pump = programmable_pump() | {"allowed_concentrations_mcg_per_ml": [50, 500]}

    with pytest.raises(ReferenceDataError) as raised:
        build_reference(pumps=(pump,))

    assert_error(
        raised,
        "pumps.json",
        "synchromed-ii-20",
        "allowed_concentrations_mcg_per_ml lists 50, which matches no product in drugs.json",
    )


def test_reference_types_are_frozen() -> None:
    reference = build_reference()

    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.pump_models[0].reservoir_ml = 40.0  # type: ignore[misc]
    assert isinstance(reference.leaflet, LeafletLists)
    assert isinstance(reference.screening_protocols[0], ScreeningProtocolSpec)
