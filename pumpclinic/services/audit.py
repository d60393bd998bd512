"""The audit log: who changed what, when, before and after — tamper-evident.

Each entry is chained to the one before it with a keyed hash (HMAC-SHA256 over the entry
and the previous entry's hash). The key lives outside the database, so an entry changed,
deleted or inserted behind the application's back breaks the chain where it happened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, inspect, select, text
from sqlalchemy.orm import Session

from pumpclinic.db.engine import advance_id_sequences
from pumpclinic.db.models import AuditChainHead, AuditEntry, ImplantedPump, User
from pumpclinic.domain.enums import AuditAction
from pumpclinic.services import row_seals
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.permissions import Permission, require

SECRET_COLUMNS = frozenset({"password_hash"})
# Columns an entry leaves out: secrets, and a row's seal (pumpclinic.services.row_seals).
NOT_AUDITED = SECRET_COLUMNS | {"seal"}
GENESIS_HASH = "0" * 64
# The unit of work puts the key here (ServiceContext.unit_of_work).
SESSION_KEY = row_seals.SESSION_KEY


def json_ready(value: object) -> Any:
    """A column value as the audit log stores it: times and dates as ISO 8601 text."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def snapshot(obj: object) -> dict[str, Any]:
    """The row's column values as JSON-ready data (secrets left out)."""
    values: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        if attr.key in NOT_AUDITED:
            continue
        values[attr.key] = json_ready(getattr(obj, attr.key))
    return values


@dataclass(frozen=True, slots=True)
class BulkEntry:
    """One entry for :func:`record_bulk`."""

    action: AuditAction
    entity: str
    entity_id: object
    patient_id: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def record_bulk(
    session: Session,
    *,
    at: dt.datetime,
    username: str,
    entries: Iterable[BulkEntry],
    batch_size: int = 5000,
) -> int:
    """Append many entries written by the application itself (no signed-in user), chained
    and sealed as :func:`record` does, with one insert per batch instead of one per entry.
    Returns how many were written."""
    key = session.info.get(SESSION_KEY)
    if not isinstance(key, bytes) or not key:
        raise RuntimeError("no audit key on this session: open it through a ServiceContext")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
    session.flush()
    last = session.execute(
        select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    next_id = (last.id if last is not None else 0) + 1
    previous = (last.entry_hash if last is not None else None) or GENESIS_HASH
    table = AuditEntry.__table__
    assert isinstance(table, Table)
    batch: list[dict[str, Any]] = []
    written = 0
    for item in entries:
        entry = AuditEntry(
            id=next_id,
            at=at,
            user_id=None,
            username=username,
            action=item.action.value,
            entity=item.entity,
            entity_id=str(item.entity_id),
            patient_id=item.patient_id,
            before_json=json.dumps(item.before, sort_keys=True)
            if item.before is not None
            else None,
            after_json=json.dumps(item.after, sort_keys=True) if item.after is not None else None,
            previous_hash=previous,
        )
        entry.entry_hash = entry_hash(key, entry)
        batch.append({c.key: getattr(entry, c.key) for c in table.columns})
        previous = entry.entry_hash
        next_id += 1
        written += 1
        if len(batch) >= batch_size:
            session.execute(table.insert(), batch)
            batch = []
    if batch:
        session.execute(table.insert(), batch)
    if written:
        advance_id_sequences(session, [table])
        _seal_head(session, key, next_id - 1, previous)
        session.flush()
    return written


def record(
    session: Session,
    *,
    actor: Actor | None,
    at: dt.datetime,
    action: AuditAction,
    entity: str,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    patient_id: int | None = None,
    username: str | None = None,
) -> None:
    key = session.info.get(SESSION_KEY)
    if not isinstance(key, bytes) or not key:
        raise RuntimeError("no audit key on this session: open it through a ServiceContext")
    if session.get_bind().dialect.name == "postgresql":
        # Several workstations: one writer at a time extends the chain.
        session.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
    entry = AuditEntry(
        at=at,
        user_id=actor.user_id if actor else None,
        username=actor.username if actor else (username or ""),
        action=action.value,
        entity=entity,
        entity_id=str(entity_id),
        patient_id=patient_id,
        before_json=json.dumps(before, sort_keys=True) if before is not None else None,
        after_json=json.dumps(after, sort_keys=True) if after is not None else None,
    )
    session.add(entry)
    # The insert takes SQLite's write lock, so the previous entry cannot change under us.
    session.flush()
    previous = session.scalar(
        select(AuditEntry.entry_hash)
        .where(AuditEntry.id < entry.id)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    entry.previous_hash = previous or GENESIS_HASH
    entry.entry_hash = entry_hash(key, entry)
    _seal_head(session, key, entry.id, entry.entry_hash)


def stale_message(
    session: Session, what: str, entity: str, entity_id: object, zone: dt.tzinfo
) -> str:
    """Why a save over an old version is refused: who saved the record last, and when
    (from the audit log), e.g. "Patient RIV-1 was changed by carl at 2026-11-26 10:07 GMT
    after you opened it. Reload to see their changes; your edits were not saved." """
    last = session.scalar(
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if last is None:
        who = "another user"
    else:
        who = f"{last.username} at {last.at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
    return (
        f"{what} was changed by {who} after you opened it. "
        "Reload to see their changes; your edits were not saved."
    )


def head_seal(key: bytes, last_entry_id: int, last_entry_hash: str, tables: str = "") -> str:
    """The chain head's seal: its newest entry, and every sealed table's head
    (:func:`pumpclinic.services.row_seals.chain_head_seal`)."""
    return row_seals.chain_head_seal(key, last_entry_id, last_entry_hash, tables)


def _seal_head(session: Session, key: bytes, last_entry_id: int, last_entry_hash: str) -> None:
    head = session.get(AuditChainHead, 1)
    if head is None:
        head = AuditChainHead(id=1)
        session.add(head)
    head.last_entry_id = last_entry_id
    head.last_entry_hash = last_entry_hash
    tables = row_seals.heads_state(session.connection())
    head.seal = head_seal(key, last_entry_id, last_entry_hash, tables)


def seal_existing_chain(session: Session, key: bytes) -> None:
    """After the upgrade that introduced the sealed head: seal the chain as it stands."""
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    if last is not None and last.entry_hash:
        _seal_head(session, key, last.id, last.entry_hash)


def _payload(entry: AuditEntry) -> bytes:
    fields = {
        "id": entry.id,
        "at": entry.at.astimezone(dt.UTC).isoformat(),
        "user_id": entry.user_id,
        "username": entry.username,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "patient_id": entry.patient_id,
        "before": entry.before_json,
        "after": entry.after_json,
        "previous_hash": entry.previous_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(key: bytes, entry: AuditEntry) -> str:
    return hmac.new(key, _payload(entry), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    checked: int
    broken_entry_id: int | None = None
    reason: str = ""


def verify_chain(
    key: bytes, entries: Iterable[AuditEntry], head: AuditChainHead | None, tables: str = ""
) -> ChainCheck:
    """Walk the entries in id order; name the first that does not follow from the last,
    then check the sealed head, which catches the newest entries being deleted (and, with
    ``tables`` — :func:`pumpclinic.services.row_seals.heads_state` — an older copy of a
    sealed table's head put back)."""
    expected_previous = GENESIS_HASH
    checked = 0
    last_id: int | None = None
    for entry in entries:
        last_id = entry.id
        if entry.previous_hash != expected_previous:
            reason = (
                "an entry before it was deleted or changed, or this one was inserted"
                if entry.previous_hash
                else "it was inserted outside PumpClinic (no chain link)"
            )
            return ChainCheck(False, checked, entry.id, reason)
        if not entry.entry_hash or not hmac.compare_digest(
            entry.entry_hash, entry_hash(key, entry)
        ):
            return ChainCheck(
                False, checked, entry.id, "its contents were changed after it was written"
            )
        expected_previous = entry.entry_hash
        checked += 1
    if head is None:
        if last_id is None:
            return ChainCheck(True, 0)
        return ChainCheck(
            False, checked, last_id, "the chain's sealed head is missing (it was deleted)"
        )
    if not hmac.compare_digest(
        head.seal, head_seal(key, head.last_entry_id, head.last_entry_hash, tables)
    ):
        reason = "the chain's sealed head was changed"
        if tables:
            reason += " (or a sealed table's head: refills, programs or appointments)"
        return ChainCheck(False, checked, head.last_entry_id, reason)
    if last_id is None or head.last_entry_id > last_id:
        return ChainCheck(
            False,
            checked,
            head.last_entry_id,
            f"it was deleted, with every entry after #{last_id or 0}",
        )
    if head.last_entry_id != last_id or head.last_entry_hash != expected_previous:
        return ChainCheck(
            False, checked, last_id, "it was added after the sealed head, outside PumpClinic"
        )
    return ChainCheck(True, checked)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: dt.datetime
    username: str
    action: str
    entity: str
    entity_id: str
    changes: tuple[tuple[str, str, str], ...]  # (field, before, after)


def _changes(
    before_json: str | None, after_json: str | None, after: dict[str, Any] | None = None
) -> tuple[tuple[str, str, str], ...]:
    before = json.loads(before_json) if before_json else {}
    if after is None:
        after = json.loads(after_json) if after_json else {}
    fields = sorted(set(before) | set(after))
    return tuple(
        (name, _show(before.get(name)), _show(after.get(name)))
        for name in fields
        if name != "version" and before.get(name) != after.get(name)
    )


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class AuditService:
    """Who changed what for one patient, newest first."""

    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    def for_patient(self, actor: Actor, patient_id: int) -> list[AuditRow]:
        """The patient's audit entries, and a "create" line for each of the patient's
        sealed rows (refills, programs, appointments record their create in the row:
        who and when from its own columns, the values it was created with from the row,
        or from its first change's "before" when it was changed since)."""
        # Entries carry clinical values: both rights are needed.
        require(actor, Permission.VIEW_AUDIT)
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            entries = list(
                session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.patient_id == patient_id)
                    .order_by(AuditEntry.id.desc())
                )
            )
            rows = [
                AuditRow(
                    id=e.id,
                    at=e.at,
                    username=e.username,
                    action=e.action,
                    entity=e.entity,
                    entity_id=e.entity_id,
                    changes=_changes(e.before_json, e.after_json),
                )
                for e in entries
            ]
            rows.extend(_sealed_creates(session, patient_id, entries))
            rows.sort(key=lambda r: (r.at, r.id), reverse=True)
            return rows


def _sealed_creates(session: Session, patient_id: int, entries: list[AuditEntry]) -> list[AuditRow]:
    first_before: dict[tuple[str, str], str] = {}
    for entry in reversed(entries):  # oldest first
        if entry.action == AuditAction.UPDATE.value and entry.before_json:
            first_before.setdefault((entry.entity, entry.entity_id), entry.before_json)
    names: dict[int, str] = {
        row.id: row.username for row in session.execute(select(User.id, User.username))
    }
    pumps = select(ImplantedPump.id).where(ImplantedPump.patient_id == patient_id)
    found: list[AuditRow] = []
    for sealed in row_seals.SEALED:
        table = sealed.table
        owner = (
            table.c.patient_id == patient_id
            if "patient_id" in table.c
            else table.c.pump_id.in_(pumps.scalar_subquery())
        )
        query = select(table).where(owner, table.c[row_seals.SEAL_COLUMN].is_not(None))
        for row in session.execute(query):
            values = {
                name: json_ready(row._mapping[name])
                for name in row_seals.sealed_column_names(table.name)
            }
            entity_id = str(row.id)
            before = first_before.get((sealed.entity, entity_id))
            created = json.loads(before) if before else values
            user_id = created.get(sealed.created_by)
            at = row._mapping[sealed.created_at]
            found.append(
                AuditRow(
                    id=0,
                    at=at,
                    username=names.get(user_id, "") if isinstance(user_id, int) else "",
                    action=AuditAction.CREATE.value,
                    entity=sealed.entity,
                    entity_id=entity_id,
                    changes=_changes(None, None, created),
                )
            )
    return found
