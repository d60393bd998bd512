"""Clinical rows checked against the audit trail: changed, inserted or deleted behind
PumpClinic's back.

The audit chain is keyed and tamper-evident (:mod:`pumpclinic.services.audit`), so a row
that matches the latest values its audit entries give it is the row PumpClinic wrote. Every
write of a tracked row records the row's full values ("after") in an entry: its own
(``entity`` = the table's entity name, ``entity_id`` = the row's id), or nested in the entry
of the record it was written with (a pump's first fill and program, a refill's program, a
trial's doses). Folding a table's entries in log order gives each row's expected values;
then the table is read once, in id order, and compared:

- a row whose values differ from its latest audited values was changed outside PumpClinic;
- a row no entry creates (or whose entries say it was deleted) was inserted outside it;
- a row the entries create that is no longer in the table was deleted outside it.

Fields an entry leaves out keep the values of the entries before it. Each table is folded
and checked on its own, reading the log and the table as streams, so memory follows the
largest table's row count, not the whole database.

Databases written by versions before rows were checked hold rows no entry describes in
full; :func:`adopt_unchecked_rows` records them once, at the upgrade (migration 0006).

Kept forecasts (``pump_forecasts``, migration 0009) are derived, not audited: the alert list
reuses one while its inputs digest, its pump's input revision and its span hold, so
:func:`check_kept_forecasts` computes each forecast it would reuse again from the pump's
rows and names every field that differs, and names the triggers that are missing (without
them no kept forecast can be trusted).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Date, Float, Integer, Table, func, select
from sqlalchemy.orm import Session

from pumpclinic.db import triggers
from pumpclinic.db.models import (
    Appointment,
    AuditEntry,
    Base,
    ContactAttempt,
    DoseProgram,
    ImplantedPump,
    Observation,
    Patient,
    PumpForecast,
    Refill,
    RowSealHead,
    ScreeningTrial,
    TestDose,
)
from pumpclinic.db.types import UTCDateTime
from pumpclinic.domain.enums import AuditAction
from pumpclinic.domain.reference import Reference
from pumpclinic.services import audit, row_seals
from pumpclinic.services.alerts import ComputedForecast, paused_gc, recheck_kept_forecasts

# The revision from which every tracked row's writes are audited in full.
ROWS_CHECKED_FROM_REVISION = "0006"
# The revision from which forecasts are kept, guarded by the triggers.
FORECASTS_KEPT_FROM_REVISION = "0009"
ADOPTING_USER = "pumpclinic-upgrade"
ADOPTION_NOTE = (
    "Recorded at the upgrade that began checking clinical rows against the audit trail:"
    " an earlier version wrote this row without a complete audit entry."
)
_STREAM_BATCH = 2000


@dataclass(frozen=True, slots=True)
class Tracked:
    model: type[Base]
    entity: str  # the audit entity of the row's own entries
    # Entries of other entities that carry this table's rows: (entity, key in "after").
    nested_in: tuple[tuple[str, str], ...] = ()

    @property
    def table(self) -> Table:
        table = self.model.__table__
        assert isinstance(table, Table)
        return table


TRACKED: tuple[Tracked, ...] = (
    Tracked(Patient, "patient"),
    Tracked(ImplantedPump, "pump"),
    Tracked(Refill, "refill", nested_in=(("pump", "fill"),)),
    Tracked(DoseProgram, "dose_program", nested_in=(("pump", "program"), ("refill", "program"))),
    Tracked(Appointment, "appointment"),
    Tracked(ScreeningTrial, "screening_trial"),
    Tracked(TestDose, "test_dose", nested_in=(("screening_trial", "doses"),)),
    Tracked(Observation, "observation"),
    Tracked(ContactAttempt, "contact_attempt"),
)


class Finding(StrEnum):
    CHANGED = "changed"
    INSERTED = "inserted"
    DELETED = "deleted"
    SEAL_HEAD = "seal head"  # a sealed table's head: rows deleted, or the head tampered with


@dataclass(frozen=True, slots=True)
class FieldDifference:
    name: str
    audited: str
    now: str


@dataclass(frozen=True, slots=True)
class RowProblem:
    table: str
    record_id: int
    finding: Finding
    fields: tuple[FieldDifference, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        where = f"{self.table} #{self.record_id}"
        if self.finding is Finding.SEAL_HEAD:
            return f"{self.table}: {self.detail}"
        if self.finding is Finding.CHANGED:
            if not self.fields:
                return (
                    f"{where} CHANGED outside PumpClinic: its values no longer match the seal"
                    " it was saved with"
                )
            fields = "; ".join(f"{f.name} (audited {f.audited}, now {f.now})" for f in self.fields)
            return f"{where} CHANGED outside PumpClinic: {fields}"
        if self.finding is Finding.INSERTED:
            if self.table in row_seals.SEALED_BY_TABLE:
                return (
                    f"{where} INSERTED outside PumpClinic: neither a seal nor an audit entry"
                    " records it"
                )
            return f"{where} INSERTED outside PumpClinic: no audit entry records it"
        return f"{where} DELETED outside PumpClinic: the audit trail records it, the table does not"


@dataclass(frozen=True, slots=True)
class RowCheck:
    rows_checked: int
    tables_checked: int
    problems: tuple[RowProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_DELETED = object()  # the fold's value for a row its entries delete
_MISSING = object()  # a field no entry gives a value


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _records(
    tracked: Tracked, entity: str, entity_id: str, action: str, after_json: str | None
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """The rows of ``tracked``'s table that one entry describes: (id, values or None when
    the entry deletes the row)."""
    if entity == tracked.entity:
        record_id = _int(entity_id)
        if record_id is None:
            return
        if action == AuditAction.DELETE.value:
            yield record_id, None
            return
        after = json.loads(after_json) if after_json else None
        if isinstance(after, dict):
            yield record_id, after
        return
    if not after_json or action == AuditAction.DELETE.value:
        return
    after = json.loads(after_json)
    if not isinstance(after, dict):
        return
    for nested_entity, key in tracked.nested_in:
        if nested_entity != entity:
            continue
        value = after.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and _int(item.get("id")) is not None:
                yield int(item["id"]), item


def _normalizer(column: Any) -> Callable[[Any], Any]:
    """Bring an audited JSON value and a column value to one comparable form."""
    kind = column.type
    if isinstance(kind, UTCDateTime):

        def when(value: Any) -> Any:
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            if isinstance(value, dt.datetime):
                if value.tzinfo is None:
                    value = value.replace(tzinfo=dt.UTC)
                return value.astimezone(dt.UTC)
            return value

        return when
    if isinstance(kind, Date):
        return lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else v
    if isinstance(kind, Boolean):
        return lambda v: bool(v) if isinstance(v, bool | int) else v
    if isinstance(kind, Float):
        return lambda v: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    if isinstance(kind, Integer):
        return lambda v: int(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    return lambda v: v


def _show(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


class _Table:
    """One tracked table's columns and how each compares."""

    def __init__(self, tracked: Tracked) -> None:
        self.tracked = tracked
        self.table = tracked.table
        self.names = tuple(c.key for c in self.table.columns if c.key not in audit.NOT_AUDITED)
        self.normalize = tuple(_normalizer(self.table.c[name]) for name in self.names)
        self.index = {name: i for i, name in enumerate(self.names)}

    def overlay(self, known: list[Any], values: dict[str, Any]) -> None:
        """Lay one entry's values over what the entries before it gave."""
        for name, value in values.items():
            index = self.index.get(name)
            if index is not None:
                try:
                    known[index] = self.normalize[index](value)
                except (TypeError, ValueError):  # not of the column's kind: differs
                    known[index] = value

    def differences(self, expected: list[Any], row: Any) -> tuple[FieldDifference, ...]:
        found: list[FieldDifference] = []
        for index, name in enumerate(self.names):
            audited = expected[index]
            if audited is _MISSING:
                continue
            now = self.normalize[index](getattr(row, name))
            if audited != now:
                found.append(FieldDifference(name, _show(audited), _show(now)))
        return tuple(found)


def _fold(session: Session, spec: _Table) -> tuple[dict[int, Any], set[int]]:
    """Each row's latest audited values (``_DELETED`` when deleted), from the log in order;
    and the rows an entry creates (their own create entry, or nested in the entry of the
    record they were written with). A row whose entries only change it was not created
    through PumpClinic."""
    tracked = spec.tracked
    entities = {tracked.entity} | {entity for entity, _key in tracked.nested_in}
    query = (
        select(
            AuditEntry.entity,
            AuditEntry.entity_id,
            AuditEntry.action,
            AuditEntry.after_json,
        )
        .where(AuditEntry.entity.in_(sorted(entities)))
        .order_by(AuditEntry.id)
        .execution_options(yield_per=_STREAM_BATCH)
    )
    # Per row, a list in column order (``_MISSING`` where no entry gave a value): compact
    # enough for a table of a large clinic.
    state: dict[int, Any] = {}
    created: set[int] = set()
    width = len(spec.names)
    for entity, entity_id, action, after_json in session.execute(query):
        creates = entity != tracked.entity or action == AuditAction.CREATE.value
        for record_id, values in _records(tracked, entity, entity_id, action, after_json):
            if values is None:
                state[record_id] = _DELETED
                created.discard(record_id)
                continue
            if creates:
                created.add(record_id)
            known = state.get(record_id)
            if known is None or known is _DELETED:
                known = state[record_id] = [_MISSING] * width
            spec.overlay(known, values)
    return state, created


@dataclass(slots=True)
class _SealTally:
    """The sealed rows a table holds, as its head should count them."""

    count: int = 0
    total: int = 0


def check_table(
    session: Session, tracked: Tracked, key: bytes | None = None
) -> tuple[int, list[RowProblem]]:
    """(rows read, problems) for one table. With ``key``, a row of a sealed table that
    carries a seal is checked against it (and against the entries of its changes, if any),
    and the table's head against the sealed rows it holds."""
    spec = _Table(tracked)
    state, created = _fold(session, spec)
    table = spec.table
    sealed = row_seals.SEALED_BY_TABLE.get(table.name) if key is not None else None
    tally = _SealTally()
    problems: list[RowProblem] = []
    rows = 0
    present: list[int] = []
    # Without the key (a database from before row seals has no seal column) the seals are
    # not read.
    columns = [c for c in table.columns if sealed is not None or c.key != row_seals.SEAL_COLUMN]
    query = select(*columns).order_by(table.c.id).execution_options(yield_per=_STREAM_BATCH)
    for row in session.execute(query):
        rows += 1
        expected = state.pop(row.id, None)
        seal = row._mapping[row_seals.SEAL_COLUMN] if sealed is not None else None
        if key is not None and seal is not None:
            present.append(row.id)
            tally.count += 1
            tally.total += row_seals.seal_number(seal)
            if expected is _DELETED:
                # Written again under an id the log says was deleted: the valid seal says
                # PumpClinic wrote it; a deleted row put back is caught by the head's sum.
                expected = None
            differences = spec.differences(expected, row) if expected is not None else ()
            if differences or not row_seals.seal_matches(key, table.name, row._mapping, seal):
                problems.append(RowProblem(table.name, row.id, Finding.CHANGED, differences))
            continue
        if sealed is not None:
            present.append(row.id)
        if expected is None or expected is _DELETED or row.id not in created:
            problems.append(RowProblem(table.name, row.id, Finding.INSERTED))
            continue
        differences = spec.differences(expected, row)
        if differences:
            problems.append(RowProblem(table.name, row.id, Finding.CHANGED, differences))
    audited_deletes = {record_id for record_id, value in state.items() if value is _DELETED}
    for record_id, expected in sorted(state.items()):
        if expected is not _DELETED:
            problems.append(RowProblem(table.name, record_id, Finding.DELETED))
    if sealed is not None and key is not None:
        problems.extend(_check_head(session, key, table.name, tally, present, audited_deletes))
    return rows, problems


def _check_head(
    session: Session,
    key: bytes,
    table_name: str,
    tally: _SealTally,
    present: list[int],
    audited_deletes: set[int],
) -> list[RowProblem]:
    head = session.get(RowSealHead, table_name)
    if head is None:
        detail = (
            "its sealed head is MISSING (deleted outside PumpClinic): sealed rows deleted"
            " behind PumpClinic's back cannot be ruled out"
        )
        return [RowProblem(table_name, 0, Finding.SEAL_HEAD, detail=detail)]
    if not row_seals.head_is_sealed(key, head):
        detail = (
            "its sealed head was CHANGED outside PumpClinic: sealed rows deleted behind"
            " PumpClinic's back cannot be ruled out"
        )
        return [RowProblem(table_name, 0, Finding.SEAL_HEAD, detail=detail)]
    if head.row_count == tally.count and head.digest == row_seals.digest_hex(tally.total):
        return []
    if head.row_count > tally.count:
        missing = head.row_count - tally.count
        gaps = _gaps(present, audited_deletes)
        where = f"; ids absent from the table: {', '.join(f'#{i}' for i in gaps[:20])}" + (
            f" and {len(gaps) - 20} more" if len(gaps) > 20 else ""
        )
        detail = (
            f"{missing} sealed row{'s' if missing != 1 else ''} DELETED outside PumpClinic:"
            f" the table holds {tally.count} sealed rows, its sealed head counts"
            f" {head.row_count}" + (where if gaps else "")
        )
    else:
        detail = (
            "sealed rows REPLACED or added outside PumpClinic: the table holds"
            f" {tally.count} sealed rows, its sealed head counts {head.row_count}, and their"
            " seals do not add up to the head's"
        )
    return [RowProblem(table_name, 0, Finding.SEAL_HEAD, detail=detail)]


def _gaps(present: list[int], audited_deletes: set[int]) -> list[int]:
    """Ids below the table's highest that no row has and no audited delete explains."""
    if not present:
        return []
    have = set(present)
    return [i for i in range(1, max(have)) if i not in have and i not in audited_deletes]


def check_rows(
    session: Session, key: bytes | None, tables: Iterable[Tracked] = TRACKED
) -> RowCheck:
    """Every tracked table against the audit trail (and, with the key, the sealed rows
    against their seals and heads)."""
    rows = 0
    count = 0
    problems: list[RowProblem] = []
    for tracked in tables:
        read, found = check_table(session, tracked, key)
        rows += read
        count += 1
        problems.extend(found)
    return RowCheck(rows, count, tuple(problems))


def adopt_unchecked_rows(session: Session, at: dt.datetime) -> int:
    """Once, at the upgrade to row checking: record every tracked row that the audit trail
    does not describe as it stands (written by an earlier version without a complete
    entry), so that from then on any difference means a change behind PumpClinic's back.
    Returns the number of entries written."""
    entries: list[audit.BulkEntry] = []
    for tracked in TRACKED:
        _rows, problems = check_table(session, tracked)
        table = tracked.table
        for problem in problems:
            if problem.finding is Finding.DELETED:
                entries.append(
                    audit.BulkEntry(
                        AuditAction.DELETE,
                        tracked.entity,
                        problem.record_id,
                        after={"note": ADOPTION_NOTE},
                    )
                )
                continue
            row = session.execute(select(table).where(table.c.id == problem.record_id)).one()
            values = {
                name: audit.json_ready(getattr(row, name))
                for name in (c.key for c in table.columns)
                if name not in audit.NOT_AUDITED
            }
            entries.append(
                audit.BulkEntry(
                    AuditAction.CREATE
                    if problem.finding is Finding.INSERTED
                    else AuditAction.UPDATE,
                    tracked.entity,
                    problem.record_id,
                    patient_id=_patient_of(values, tracked),
                    after={**values, "note": ADOPTION_NOTE},
                )
            )
    return audit.record_bulk(session, at=at, username=ADOPTING_USER, entries=entries)


def _patient_of(values: dict[str, Any], tracked: Tracked) -> int | None:
    if tracked.model is Patient:
        return _int(values.get("id"))
    patient_id = values.get("patient_id")
    return _int(patient_id) if patient_id is not None else None


# --- kept forecasts ---------------------------------------------------------------------

KEPT_FORECAST_FIELDS = (
    "inputs_from",
    "inputs_until",
    "daily_volume_ml",
    "alarm_at",
    "empty_at",
    "stability_limit_at",
    "refill_due",
    "days_to_alarm",
)


@dataclass(frozen=True, slots=True)
class ForecastDifference:
    name: str
    kept: str
    recomputed: str


@dataclass(frozen=True, slots=True)
class ForecastProblem:
    """A kept forecast the alert list would reuse that its pump's rows do not give."""

    pump_id: int
    fields: tuple[ForecastDifference, ...]  # empty: the rows give no forecast at all

    def describe(self) -> str:
        where = f"pump_forecasts for pump #{self.pump_id}"
        if not self.fields:
            return (
                f"{where} CHANGED outside PumpClinic: kept a forecast where the pump's rows"
                " give none (no fill, or no program in force at it)"
            )
        fields = "; ".join(
            f"{f.name} (kept {f.kept}, recomputed {f.recomputed})" for f in self.fields
        )
        return f"{where} CHANGED outside PumpClinic: {fields}"


@dataclass(frozen=True, slots=True)
class ForecastCheck:
    as_of: dt.datetime
    kept: int  # every kept forecast in the database
    checked: int  # those the alert list would reuse as of ``as_of``
    missing_triggers: tuple[str, ...]
    problems: tuple[ForecastProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.missing_triggers and not self.problems


def _forecast_values(forecast: ComputedForecast) -> tuple[Any, ...]:
    f = forecast.forecast
    return (
        forecast.inputs_from,
        forecast.inputs_until,
        f.daily_volume_ml,
        f.alarm_at,
        f.empty_at,
        f.stability_limit_at,
        f.refill_due,
        f.days_to_alarm,
    )


def check_kept_forecasts(
    session: Session, reference: Reference, as_of: dt.datetime
) -> ForecastCheck:
    """Every kept forecast the alert list would reuse as of ``as_of``, against the same
    forecast computed again from its pump's rows; and the triggers that guard them."""
    missing = tuple(triggers.missing(session.connection()))
    if missing:
        # The alert list reuses nothing then; and a pump's rows may have changed since
        # without its kept forecast being deleted, so a difference would prove nothing.
        kept = session.scalar(select(func.count()).select_from(PumpForecast)) or 0
        return ForecastCheck(as_of, kept, 0, missing, ())
    with paused_gc():
        recheck = recheck_kept_forecasts(session, reference, as_of)
    problems: list[ForecastProblem] = []
    for kept_forecast, again in recheck.pairs:
        if again is None:
            problems.append(ForecastProblem(kept_forecast.pump_id, ()))
            continue
        differences = tuple(
            ForecastDifference(name, _show(kept_value), _show(again_value))
            for name, kept_value, again_value in zip(
                KEPT_FORECAST_FIELDS,
                _forecast_values(kept_forecast),
                _forecast_values(again),
                strict=True,
            )
            if kept_value != again_value
        )
        if differences:
            problems.append(ForecastProblem(kept_forecast.pump_id, differences))
    return ForecastCheck(as_of, recheck.kept_total, len(recheck.pairs), (), tuple(problems))
