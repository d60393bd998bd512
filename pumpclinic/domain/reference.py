"""Reference data: the pump catalog, drug products, screening protocols and the leaflet's lists.

The data ships as JSON files in ``resources/`` that an admin may edit, so nothing in them is
trusted: the parse functions take already-decoded JSON and reject every value PumpClinic could
misuse, with a message that names the file, the entry and the field with its limit. Reading
the files is ``pumpclinic.reference_files``'s job.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from pumpclinic.domain.enums import PumpKind

SCHEMA_VERSION = 1

PUMPS_FILE_NAME = "pumps.json"
DRUGS_FILE_NAME = "drugs.json"
SCREENING_PROTOCOLS_FILE_NAME = "screening-protocols.json"
LEAFLET_FILE_NAME = "leaflet.json"

# The labels allow at most 3 screening doses; no response to the last means no pump.
MAX_SCREENING_DOSES = 3
# The database's CHECK constraint on pump_models.max_flex_steps.
MAX_FLEX_STEPS_LIMIT = 24
# Ids are stored in 64-character columns.
MAX_ID_LENGTH = 64
# A dose volume × concentration must equal the dose this closely (mcg).
DOSE_ARITHMETIC_TOLERANCE_MCG = 1e-9

LEAFLET_LIST_NAMES: tuple[str, ...] = (
    "interacting_medicines",
    "precaution_conditions",
    "side_effects",
    "overdose_signs",
    "withdrawal_signs",
    "treated_conditions",
    "cns_depressant_classes",
)

_ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class SideEffectSeverity(StrEnum):
    SEEK_CARE = "seek-care"  # the leaflet: "may require immediate medical attention"
    COMMON = "common"
    LESS_COMMON = "less-common"


class ReferenceDataError(ValueError):
    """A reference file is missing, unreadable, or holds a value PumpClinic cannot use."""

    def __init__(self, file_name: str, entry: str | None, detail: str) -> None:
        super().__init__(file_name, entry, detail)
        self.file_name = file_name
        self.entry = entry
        self.detail = detail

    def __str__(self) -> str:
        if self.entry is None:
            return f"{self.file_name}: {self.detail}"
        return f'{self.file_name}, entry "{self.entry}": {self.detail}'


@dataclass(frozen=True, slots=True)
class PumpModelSpec:
    id: str
    manufacturer: str
    name: str
    model_number: str
    kind: PumpKind
    reservoir_ml: float
    # For pumps without an alarm: the volume at which refill planning stops (a reserve).
    low_reservoir_alarm_ml: float
    flow_accuracy_pct: float
    max_flex_steps: int
    battery_life_years: float | None
    eri_days_before_end: int | None
    constant_flow_ml_per_day: float | None
    pocket_fill_warning_ml: float
    plans_refill_with_boluses: bool
    min_patient_age_years: int | None
    # Empty: any concentration.
    allowed_concentrations_mcg_per_ml: tuple[float, ...]
    source: str


@dataclass(frozen=True, slots=True)
class DrugProductSpec:
    id: str
    name: str
    concentration_mcg_per_ml: float
    screening_only: bool
    stability_days: int
    ampoule_volume_ml: float | None
    source: str


@dataclass(frozen=True, slots=True)
class ScreeningDoseSpec:
    number: int
    dose_mcg: float
    volume_ml: float


@dataclass(frozen=True, slots=True)
class ScreeningProtocolSpec:
    id: str
    name: str
    concentration_mcg_per_ml: float
    min_interval_hours: float
    assess_from_hours: float
    observe_until_hours: float
    vitals_watch_hours: float
    doses: tuple[ScreeningDoseSpec, ...]
    source: str


@dataclass(frozen=True, slots=True)
class LeafletItem:
    id: str
    label: str
    severity: SideEffectSeverity | None = None


@dataclass(frozen=True, slots=True)
class LeafletLists:
    interacting_medicines: tuple[LeafletItem, ...]
    precaution_conditions: tuple[LeafletItem, ...]
    side_effects: tuple[LeafletItem, ...]
    overdose_signs: tuple[LeafletItem, ...]
    withdrawal_signs: tuple[LeafletItem, ...]
    treated_conditions: tuple[LeafletItem, ...]
    cns_depressant_classes: tuple[LeafletItem, ...]
    source: str

    def items(self, list_name: str) -> tuple[LeafletItem, ...]:
        lists = {
            "interacting_medicines": self.interacting_medicines,
            "precaution_conditions": self.precaution_conditions,
            "side_effects": self.side_effects,
            "overdose_signs": self.overdose_signs,
            "withdrawal_signs": self.withdrawal_signs,
            "treated_conditions": self.treated_conditions,
            "cns_depressant_classes": self.cns_depressant_classes,
        }
        try:
            return lists[list_name]
        except KeyError:
            raise KeyError(
                f"no leaflet list {list_name!r}; the lists are: {', '.join(LEAFLET_LIST_NAMES)}"
            ) from None

    def item(self, list_name: str, item_id: str) -> LeafletItem:
        for item in self.items(list_name):
            if item.id == item_id:
                return item
        raise KeyError(f"no item {item_id!r} in the leaflet list {list_name!r}")

    def labels(self, list_name: str) -> dict[str, str]:
        """Id → label, in the leaflet's order."""
        return {item.id: item.label for item in self.items(list_name)}

    @property
    def interacting_medicine_ids(self) -> frozenset[str]:
        return frozenset(item.id for item in self.interacting_medicines)


@dataclass(frozen=True, slots=True)
class Reference:
    """All reference data; checks that the files agree with each other."""

    pump_models: tuple[PumpModelSpec, ...]
    drug_products: tuple[DrugProductSpec, ...]
    screening_protocols: tuple[ScreeningProtocolSpec, ...]
    leaflet: LeafletLists

    def __post_init__(self) -> None:
        screening = [p.concentration_mcg_per_ml for p in self.drug_products if p.screening_only]
        pump_fill = [p.concentration_mcg_per_ml for p in self.drug_products if not p.screening_only]
        for protocol in self.screening_protocols:
            if not _contains(screening, protocol.concentration_mcg_per_ml):
                raise ReferenceDataError(
                    SCREENING_PROTOCOLS_FILE_NAME,
                    protocol.id,
                    f"concentration_mcg_per_ml {_fmt(protocol.concentration_mcg_per_ml)} matches"
                    f" no screening-only product in {DRUGS_FILE_NAME}",
                )
        for pump in self.pump_models:
            for concentration in pump.allowed_concentrations_mcg_per_ml:
                if not _contains(pump_fill, concentration):
                    raise ReferenceDataError(
                        PUMPS_FILE_NAME,
                        pump.id,
                        f"allowed_concentrations_mcg_per_ml lists {_fmt(concentration)}, which"
                        f" matches no product in {DRUGS_FILE_NAME} that is not screening-only",
                    )

    def pump_model(self, pump_model_id: str) -> PumpModelSpec:
        return _by_id(self.pump_models, pump_model_id, "pump model")

    def drug_product(self, drug_product_id: str) -> DrugProductSpec:
        return _by_id(self.drug_products, drug_product_id, "drug product")

    def screening_protocol(self, protocol_id: str) -> ScreeningProtocolSpec:
        return _by_id(self.screening_protocols, protocol_id, "screening protocol")


# --- Parsing ------------------------------------------------------------------------------


def parse_pump_catalog(data: object, file_name: str) -> tuple[PumpModelSpec, ...]:
    entries = _document(data, file_name, ("pump_models",))["pump_models"]
    return _parse_entries(entries, file_name, "pump_models", _PUMP_FIELDS, _pump_model)


def parse_drug_products(data: object, file_name: str) -> tuple[DrugProductSpec, ...]:
    entries = _document(data, file_name, ("drug_products",))["drug_products"]
    return _parse_entries(entries, file_name, "drug_products", _DRUG_FIELDS, _drug_product)


def parse_screening_protocols(data: object, file_name: str) -> tuple[ScreeningProtocolSpec, ...]:
    entries = _document(data, file_name, ("protocols",))["protocols"]
    return _parse_entries(entries, file_name, "protocols", _PROTOCOL_FIELDS, _protocol)


def parse_leaflet(data: object, file_name: str) -> LeafletLists:
    document = _document(data, file_name, ("source", *LEAFLET_LIST_NAMES))
    lists = {
        name: _parse_entries(
            document[name],
            file_name,
            name,
            _SIDE_EFFECT_FIELDS if name == "side_effects" else _LEAFLET_ITEM_FIELDS,
            _leaflet_item,
            qualify_ids=True,
        )
        for name in LEAFLET_LIST_NAMES
    }
    return LeafletLists(
        interacting_medicines=lists["interacting_medicines"],
        precaution_conditions=lists["precaution_conditions"],
        side_effects=lists["side_effects"],
        overdose_signs=lists["overdose_signs"],
        withdrawal_signs=lists["withdrawal_signs"],
        treated_conditions=lists["treated_conditions"],
        cns_depressant_classes=lists["cns_depressant_classes"],
        source=_Fields(file_name, None, document).text("source"),
    )


_PUMP_FIELDS = (
    "id",
    "manufacturer",
    "name",
    "model_number",
    "kind",
    "reservoir_ml",
    "low_reservoir_alarm_ml",
    "flow_accuracy_pct",
    "max_flex_steps",
    "battery_life_years",
    "eri_days_before_end",
    "constant_flow_ml_per_day",
    "pocket_fill_warning_ml",
    "plans_refill_with_boluses",
    "min_patient_age_years",
    "allowed_concentrations_mcg_per_ml",
    "source",
)
_DRUG_FIELDS = (
    "id",
    "name",
    "concentration_mcg_per_ml",
    "screening_only",
    "stability_days",
    "ampoule_volume_ml",
    "source",
)
_PROTOCOL_FIELDS = (
    "id",
    "name",
    "concentration_mcg_per_ml",
    "min_interval_hours",
    "assess_from_hours",
    "observe_until_hours",
    "vitals_watch_hours",
    "doses",
    "source",
)
_DOSE_FIELDS = ("number", "dose_mcg", "volume_ml")
_LEAFLET_ITEM_FIELDS = ("id", "label")
_SIDE_EFFECT_FIELDS = ("id", "label", "severity")


def _pump_model(f: _Fields) -> PumpModelSpec:
    kind = PumpKind(f.choice("kind", [k.value for k in PumpKind]))
    reservoir_ml = f.number("reservoir_ml", above=0)
    low_reservoir_alarm_ml = f.number("low_reservoir_alarm_ml", above=0)
    pocket_fill_warning_ml = f.number("pocket_fill_warning_ml", above=0)
    for name, volume_ml in (
        ("low_reservoir_alarm_ml", low_reservoir_alarm_ml),
        ("pocket_fill_warning_ml", pocket_fill_warning_ml),
    ):
        f.require(
            volume_ml < reservoir_ml,
            f"{name} must be less than reservoir_ml ({_fmt(reservoir_ml)}), got {_fmt(volume_ml)}",
        )
    max_flex_steps = f.integer("max_flex_steps", at_least=0, at_most=MAX_FLEX_STEPS_LIMIT)
    constant_flow_ml_per_day = f.optional_number("constant_flow_ml_per_day", above=0)
    if kind is PumpKind.CONSTANT_FLOW:
        f.require(
            constant_flow_ml_per_day is not None,
            'constant_flow_ml_per_day is required (greater than 0) when kind is "constant-flow"',
        )
        f.require(
            max_flex_steps == 0,
            f'max_flex_steps must be 0 when kind is "constant-flow", got {max_flex_steps}',
        )
    else:
        f.require(
            constant_flow_ml_per_day is None,
            'constant_flow_ml_per_day must be null when kind is "programmable"',
        )
    battery_life_years = f.optional_number("battery_life_years", above=0)
    eri_days_before_end = f.optional_integer("eri_days_before_end", at_least=1)
    if eri_days_before_end is not None:
        if battery_life_years is None:
            raise f.error("eri_days_before_end needs battery_life_years; set both or neither")
        battery_life_days = battery_life_years * 365
        f.require(
            eri_days_before_end < battery_life_days,
            f"eri_days_before_end must be less than the battery life"
            f" ({_fmt(battery_life_days)} days), got {eri_days_before_end}",
        )
    return PumpModelSpec(
        id=f.identifier(),
        manufacturer=f.text("manufacturer"),
        name=f.text("name"),
        model_number=f.text("model_number", allow_empty=True),
        kind=kind,
        reservoir_ml=reservoir_ml,
        low_reservoir_alarm_ml=low_reservoir_alarm_ml,
        flow_accuracy_pct=f.number("flow_accuracy_pct", above=0, below=100),
        max_flex_steps=max_flex_steps,
        battery_life_years=battery_life_years,
        eri_days_before_end=eri_days_before_end,
        constant_flow_ml_per_day=constant_flow_ml_per_day,
        pocket_fill_warning_ml=pocket_fill_warning_ml,
        plans_refill_with_boluses=f.boolean("plans_refill_with_boluses"),
        min_patient_age_years=f.optional_integer("min_patient_age_years", at_least=0),
        allowed_concentrations_mcg_per_ml=f.concentrations("allowed_concentrations_mcg_per_ml"),
        source=f.text("source"),
    )


def _drug_product(f: _Fields) -> DrugProductSpec:
    return DrugProductSpec(
        id=f.identifier(),
        name=f.text("name"),
        concentration_mcg_per_ml=f.number("concentration_mcg_per_ml", above=0),
        screening_only=f.boolean("screening_only"),
        stability_days=f.integer("stability_days", at_least=1),
        ampoule_volume_ml=f.optional_number("ampoule_volume_ml", above=0),
        source=f.text("source"),
    )


def _protocol(f: _Fields) -> ScreeningProtocolSpec:
    concentration = f.number("concentration_mcg_per_ml", above=0)
    hours = {
        name: f.number(name, above=0)
        for name in (
            "min_interval_hours",
            "assess_from_hours",
            "observe_until_hours",
            "vitals_watch_hours",
        )
    }
    for earlier, later in (
        ("assess_from_hours", "observe_until_hours"),
        ("vitals_watch_hours", "observe_until_hours"),
        ("observe_until_hours", "min_interval_hours"),
    ):
        f.require(
            hours[earlier] <= hours[later],
            f"{earlier} must be at most {later} ({_fmt(hours[later])}), got {_fmt(hours[earlier])}",
        )
    raw_doses = f.value("doses")
    if not isinstance(raw_doses, list) or not 1 <= len(raw_doses) <= MAX_SCREENING_DOSES:
        raise f.error(
            f"doses must be a list of 1 to {MAX_SCREENING_DOSES} doses, got {_describe(raw_doses)}"
        )
    doses: list[ScreeningDoseSpec] = []
    for index, raw_dose in enumerate(raw_doses):
        where = f"doses[{index}]"
        dose_data = _object(raw_dose, f.file_name, f.entry, _DOSE_FIELDS, what=where, where=where)
        dose_fields = _Fields(f.file_name, f.entry, dose_data, where)
        number = dose_fields.integer("number", at_least=1)
        f.require(number == index + 1, f"{where}.number must be {index + 1}, got {number}")
        dose_mcg = dose_fields.number("dose_mcg", above=0)
        volume_ml = dose_fields.number("volume_ml", above=0)
        f.require(
            abs(volume_ml * concentration - dose_mcg) <= DOSE_ARITHMETIC_TOLERANCE_MCG,
            f"{where}.volume_ml × concentration_mcg_per_ml must equal {where}.dose_mcg"
            f" ({_fmt(dose_mcg)}), got {_fmt(volume_ml)} × {_fmt(concentration)}"
            f" = {_fmt(volume_ml * concentration)}",
        )
        if doses:
            f.require(
                dose_mcg > doses[-1].dose_mcg,
                f"{where}.dose_mcg must be greater than the dose before it"
                f" ({_fmt(doses[-1].dose_mcg)}), got {_fmt(dose_mcg)}",
            )
        doses.append(ScreeningDoseSpec(number=number, dose_mcg=dose_mcg, volume_ml=volume_ml))
    return ScreeningProtocolSpec(
        id=f.identifier(),
        name=f.text("name"),
        concentration_mcg_per_ml=concentration,
        min_interval_hours=hours["min_interval_hours"],
        assess_from_hours=hours["assess_from_hours"],
        observe_until_hours=hours["observe_until_hours"],
        vitals_watch_hours=hours["vitals_watch_hours"],
        doses=tuple(doses),
        source=f.text("source"),
    )


def _leaflet_item(f: _Fields) -> LeafletItem:
    severity = None
    if "severity" in f.data:
        severity = SideEffectSeverity(f.choice("severity", [s.value for s in SideEffectSeverity]))
    return LeafletItem(id=f.identifier(), label=f.text("label"), severity=severity)


# --- Helpers ------------------------------------------------------------------------------

_T = TypeVar("_T")
_WithId = TypeVar("_WithId", PumpModelSpec, DrugProductSpec, ScreeningProtocolSpec)


@dataclass(frozen=True, slots=True)
class _Fields:
    """One JSON object's fields; every error names the file, the entry and the field."""

    file_name: str
    entry: str | None
    data: dict[str, object]
    # Names nested objects in messages, e.g. "doses[1]".
    where: str = ""

    def error(self, detail: str) -> ReferenceDataError:
        return ReferenceDataError(self.file_name, self.entry, detail)

    def require(self, condition: bool, detail: str) -> None:
        if not condition:
            raise self.error(detail)

    def value(self, name: str) -> object:
        # _object has already checked that every field is present.
        return self.data[name]

    def _name(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        value = self.value(name)
        if not isinstance(value, str):
            raise self.error(f"{self._name(name)} must be a string, got {_describe(value)}")
        if not allow_empty and not value.strip():
            raise self.error(f"{self._name(name)} must not be empty")
        return value

    def identifier(self) -> str:
        value = self.text("id")
        self.require(
            _is_id(value),
            f"id must be lowercase kebab-case (a-z, 0-9 and single '-' between them, at most"
            f" {MAX_ID_LENGTH} characters), got {_describe(value)}",
        )
        return value

    def choice(self, name: str, allowed: Sequence[str]) -> str:
        value = self.value(name)
        if not isinstance(value, str) or value not in allowed:
            choices = ", ".join(f'"{a}"' for a in allowed)
            raise self.error(f"{self._name(name)} must be one of {choices}, got {_describe(value)}")
        return value

    def boolean(self, name: str) -> bool:
        value = self.value(name)
        if not isinstance(value, bool):
            raise self.error(f"{self._name(name)} must be true or false, got {_describe(value)}")
        return value

    def number(self, name: str, *, above: float | None = None, below: float | None = None) -> float:
        return _check_number(self, self._name(name), self.value(name), above=above, below=below)

    def optional_number(self, name: str, *, above: float | None = None) -> float | None:
        return None if self.value(name) is None else self.number(name, above=above)

    def integer(self, name: str, *, at_least: int, at_most: int | None = None) -> int:
        value = self.value(name)
        name = self._name(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(f"{name} must be a whole number, got {_describe(value)}")
        if value < at_least:
            raise self.error(f"{name} must be at least {at_least}, got {value}")
        if at_most is not None and value > at_most:
            raise self.error(f"{name} must be at most {at_most}, got {value}")
        return value

    def optional_integer(self, name: str, *, at_least: int) -> int | None:
        return None if self.value(name) is None else self.integer(name, at_least=at_least)

    def concentrations(self, name: str) -> tuple[float, ...]:
        values = self.value(name)
        if not isinstance(values, list):
            raise self.error(f"{name} must be a list of numbers, got {_describe(values)}")
        result: list[float] = []
        for index, value in enumerate(values):
            concentration = _check_number(self, f"{name}[{index}]", value, above=0)
            self.require(
                concentration not in result,
                f"{name}[{index}] repeats {_fmt(concentration)}",
            )
            result.append(concentration)
        return tuple(sorted(result))


def _check_number(
    fields: _Fields, name: str, value: object, *, above: float | None, below: float | None = None
) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise fields.error(f"{name} must be a number, got {_describe(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise fields.error(f"{name} must be a finite number, got {_describe(value)}")
    if above is not None and not number > above:
        raise fields.error(f"{name} must be greater than {_fmt(above)}, got {_fmt(number)}")
    if below is not None and not number < below:
        raise fields.error(f"{name} must be less than {_fmt(below)}, got {_fmt(number)}")
    return number


def _document(data: object, file_name: str, keys: tuple[str, ...]) -> dict[str, object]:
    document = _object(data, file_name, None, ("schema", *keys), what="the file")
    schema = document["schema"]
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise ReferenceDataError(
            file_name,
            None,
            f"schema must be {SCHEMA_VERSION} (the version this PumpClinic reads),"
            f" got {_describe(schema)}",
        )
    return document


def _object(
    value: object,
    file_name: str,
    entry: str | None,
    field_names: Sequence[str],
    *,
    what: str,
    where: str = "",
) -> dict[str, object]:
    """``value`` as a JSON object with exactly ``field_names`` (null for "none", never absent)."""
    if not isinstance(value, dict):
        raise ReferenceDataError(
            file_name, entry, f"{what} must be a JSON object, got {_describe(value)}"
        )
    prefix = f"{where}." if where else ""
    for name in value:
        if name not in field_names:
            close = difflib.get_close_matches(str(name), field_names, n=1)
            hint = f' (did you mean "{prefix}{close[0]}"?)' if close else ""
            raise ReferenceDataError(file_name, entry, f'unknown field "{prefix}{name}"{hint}')
    for name in field_names:
        if name not in value:
            raise ReferenceDataError(file_name, entry, f'missing field "{prefix}{name}"')
    return value


def _parse_entries(
    entries: object,
    file_name: str,
    list_name: str,
    field_names: Sequence[str],
    build: Callable[[_Fields], _T],
    *,
    qualify_ids: bool = False,
) -> tuple[_T, ...]:
    if not isinstance(entries, list) or not entries:
        raise ReferenceDataError(
            file_name, None, f"{list_name} must be a non-empty list, got {_describe(entries)}"
        )
    first_index_by_id: dict[str, int] = {}
    result: list[_T] = []
    for index, entry_data in enumerate(entries):
        entry = f"{list_name}[{index}]"
        raw_id = entry_data.get("id") if isinstance(entry_data, dict) else None
        if isinstance(raw_id, str) and _is_id(raw_id):
            # Name the entry by its id once the id is readable: that is what an admin searches for.
            entry = f"{list_name}/{raw_id}" if qualify_ids else raw_id
            if raw_id in first_index_by_id:
                raise ReferenceDataError(
                    file_name,
                    entry,
                    f"id is used twice: by {list_name}[{first_index_by_id[raw_id]}]"
                    f" and {list_name}[{index}]",
                )
            first_index_by_id[raw_id] = index
        fields = _Fields(
            file_name, entry, _object(entry_data, file_name, entry, field_names, what="the entry")
        )
        result.append(build(fields))
    return tuple(result)


def _is_id(value: str) -> bool:
    return len(value) <= MAX_ID_LENGTH and _ID_PATTERN.fullmatch(value) is not None


def _by_id(items: Sequence[_WithId], item_id: str, what: str) -> _WithId:
    for item in items:
        if item.id == item_id:
            return item
    known = ", ".join(item.id for item in items)
    raise KeyError(f"no {what} with id {item_id!r}; known ids: {known}")


def _contains(values: Sequence[float], value: float) -> bool:
    return any(math.isclose(v, value, rel_tol=1e-9) for v in values)


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _describe(value: object) -> str:
    """How a JSON value looks to the admin who typed it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
