"""Row seals: a refill, a dose program or an appointment records its own create.

These three tables hold nearly all of a clinic's rows (a 10,000-patient clinic writes about
350,000 refills and as many appointments in five years). A create entry in the audit log
for each, repeating the row's values, made the log five times the size of the clinic's data.
Instead, the row written through PumpClinic carries a *seal*: a keyed hash (HMAC-SHA256,
first 16 bytes, with the audit key kept apart from the database) over the table, the row's
id and every audited value. Who created it and when are columns of the row itself
(:data:`SEALED`), so the seal covers them too.

- A row changed behind PumpClinic's back no longer matches its seal; one inserted behind
  its back has no seal that matches (forging one needs the key).
- A row deleted behind its back is caught by the table's *head* (``row_seal_heads``): the
  number of sealed rows and the sum of their seals (mod 2**128), itself sealed with the key.
  Restoring an older version of a row changes the sum too.
- Changes and deletes made through PumpClinic are still audit log entries with the values
  before and after, chained like every entry; the row is sealed again after a change.

Sealing happens when the session flushes (:func:`_after_flush`), for every row of these
tables the ORM inserts, changes or deletes in a session opened with the audit key, so no
service can forget it. Bulk writers that bypass the ORM (the demo generator) seal with
:func:`seal_values` and :func:`apply_to_head`.

A head whose own seal does not match is left as it is (never sealed again over what was
changed): ``audit-verify`` reports it. Heads are made only when the clinic is created or
upgraded to row seals (:func:`make_heads`); one missing later is reported, not remade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Connection, Date, Float, Integer, Table, bindparam, event, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pumpclinic.db.models import (
    Appointment,
    AuditChainHead,
    Base,
    DoseProgram,
    Refill,
    RowSealHead,
)
from pumpclinic.db.types import UTCDateTime

log = logging.getLogger(__name__)

SEAL_COLUMN = "seal"
SEAL_BYTES = 16
_MODULUS = 1 << (8 * SEAL_BYTES)
# Where the unit of work puts the audit key in a session's info (every sealed and audited
# write reads it from there).
SESSION_KEY = "audit_key"
_DELETED_SEALS = "row_seals_deleted"
_TRUSTED = "row_seals_trusted"
# The revision that added the seal columns and heads.
ROW_SEALS_FROM_REVISION = "0010"


@dataclass(frozen=True, slots=True)
class SealedTable:
    model: type[Base]
    entity: str  # the audit entity of the row's change and delete entries
    created_by: str  # the column naming who created the row
    created_at: str  # the column saying when

    @property
    def table(self) -> Table:
        table = self.model.__table__
        assert isinstance(table, Table)
        return table


SEALED: tuple[SealedTable, ...] = (
    SealedTable(Refill, "refill", "performed_by_id", "created_at"),
    SealedTable(DoseProgram, "dose_program", "entered_by_id", "created_at"),
    SealedTable(Appointment, "appointment", "booked_by_id", "booked_at"),
)
SEALED_BY_MODEL: dict[type[Base], SealedTable] = {s.model: s for s in SEALED}
SEALED_BY_TABLE: dict[str, SealedTable] = {s.table.name: s for s in SEALED}


def _canonical_value(kind: Any) -> Callable[[Any], Any]:
    """A column's value in the one form the seal hashes, whether it comes from a Python
    object about to be written or from the row read back (either engine)."""
    if isinstance(kind, UTCDateTime):
        return lambda v: v.astimezone(dt.UTC).isoformat()
    if isinstance(kind, Date):
        return lambda v: v.isoformat()
    if isinstance(kind, Boolean):
        return bool
    if isinstance(kind, Float):
        return lambda v: float(v) + 0.0  # -0.0 as 0.0: SQLite keeps no negative zero
    if isinstance(kind, Integer):
        return _whole
    return str


def _whole(value: Any) -> int | float:
    """An integer column's value; one that is not whole (stored behind PumpClinic's back)
    stays a float, so that it does not match the integer it was sealed with."""
    number = float(value)
    return int(number) if number.is_integer() else number


class _Columns:
    """The sealed columns of one table, in table order, with their canonical forms."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.names = tuple(c.key for c in table.columns if c.key != SEAL_COLUMN)
        self.forms = tuple(_canonical_value(table.c[name].type) for name in self.names)


_COLUMNS: dict[str, _Columns] = {s.table.name: _Columns(s.table) for s in SEALED}


def sealed_column_names(table_name: str) -> tuple[str, ...]:
    return _COLUMNS[table_name].names


def seal_values(key: bytes, table_name: str, values: Mapping[Any, Any]) -> bytes:
    """The seal of a row of ``table_name`` with these column values (every sealed column
    must be given; ``id`` included)."""
    columns = _COLUMNS[table_name]
    canonical = [
        None if values[name] is None else form(values[name])
        for name, form in zip(columns.names, columns.forms, strict=True)
    ]
    message = json.dumps(
        [table_name, list(columns.names), canonical],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return hmac.new(key, b"row-seal:v1:" + message, hashlib.sha256).digest()[:SEAL_BYTES]


def seal_matches(key: bytes, table_name: str, values: Mapping[Any, Any], seal: object) -> bool:
    if not isinstance(seal, bytes | bytearray | memoryview) or len(bytes(seal)) != SEAL_BYTES:
        return False
    try:
        expected = seal_values(key, table_name, values)
    except (TypeError, ValueError):  # a value not of its column's kind: not what was sealed
        return False
    return hmac.compare_digest(bytes(seal), expected)


def seal_number(seal: bytes) -> int:
    return int.from_bytes(bytes(seal), "big")


def digest_hex(total: int) -> str:
    return f"{total % _MODULUS:0{2 * SEAL_BYTES}x}"


def head_seal(key: bytes, table_name: str, row_count: int, digest: str) -> str:
    message = f"row-seal-head:{table_name}:{row_count}:{digest}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_is_sealed(key: bytes, head: RowSealHead) -> bool:
    return hmac.compare_digest(
        head.seal, head_seal(key, head.table_name, head.row_count, head.digest)
    )


# --- the audit chain's head covers the sealed heads ---------------------------------------


def heads_state(connection: Connection) -> str:
    """Every sealed head's count and digest, in one text the audit chain's head seals."""
    heads = RowSealHead.__table__
    assert isinstance(heads, Table)
    rows = connection.execute(
        select(heads.c.table_name, heads.c.row_count, heads.c.digest).order_by(heads.c.table_name)
    )
    return ";".join(f"{name}={count}:{digest}" for name, count, digest in rows)


def chain_head_seal(key: bytes, last_entry_id: int, last_entry_hash: str, tables: str) -> str:
    """The seal of the audit chain's head: its newest entry and, from row seals on, every
    sealed head, so that an older copy of a sealed head put back (hiding the newest rows
    deleted) breaks the chain head's seal too."""
    message = f"head:{last_entry_id}:{last_entry_hash}"
    if tables:
        message += f":tables:{tables}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _reseal_chain_head(connection: Connection, key: bytes, tables_before: str) -> None:
    """After a sealed head changed: seal the chain's head again over the new heads — only
    if it was sealed over the heads as they were (never over a change made behind
    PumpClinic's back)."""
    chain = AuditChainHead.__table__
    assert isinstance(chain, Table)
    head = connection.execute(select(chain).where(chain.c.id == 1)).first()
    if head is None:
        return
    if not hmac.compare_digest(
        head.seal, chain_head_seal(key, head.last_entry_id, head.last_entry_hash, tables_before)
    ):
        log.warning("the audit chain's head does not match its seal: left as found")
        return
    seal = chain_head_seal(key, head.last_entry_id, head.last_entry_hash, heads_state(connection))
    connection.execute(chain.update().where(chain.c.id == 1).values(seal=seal))


def make_heads(session: Session, key: bytes) -> None:
    """A head per sealed table, when the clinic is new or was last written before row
    seals: its chain head (if any) is sealed without heads. A head missing later is left
    missing, for ``audit-verify`` to report: making it again would hide the rows deleted
    with it."""
    connection = session.connection()
    tables_before = heads_state(connection)
    chain = session.get(AuditChainHead, 1)
    if chain is not None:
        before_row_seals = hmac.compare_digest(
            chain.seal, chain_head_seal(key, chain.last_entry_id, chain.last_entry_hash, "")
        )
        if not before_row_seals:
            return
    made = False
    for sealed in SEALED:
        name = sealed.table.name
        if session.get(RowSealHead, name) is not None:
            continue
        seal_col = sealed.table.c[SEAL_COLUMN]
        count = 0
        total = 0
        for (seal,) in session.execute(select(seal_col).where(seal_col.is_not(None))):
            count += 1
            total += seal_number(seal)
        digest = digest_hex(total)
        session.add(
            RowSealHead(
                table_name=name,
                row_count=count,
                digest=digest,
                seal=head_seal(key, name, count, digest),
            )
        )
        made = True
    session.flush()
    if made:
        _reseal_chain_head(connection, key, tables_before)
        session.expire_all()


def apply_to_head(
    connection: Connection,
    key: bytes,
    table_name: str,
    added: Sequence[bytes],
    removed: Sequence[bytes],
) -> bool:
    """Count seals in and out of a table's head and seal it again. Returns False (and
    changes nothing) when the head is missing or its seal does not match: that is left
    for ``audit-verify`` to report, never sealed over."""
    if not added and not removed:
        return True
    heads = RowSealHead.__table__
    assert isinstance(heads, Table)
    query = select(heads).where(heads.c.table_name == table_name)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    head = connection.execute(query).first()
    if head is None:
        log.warning("row seal head for %s is missing: not made again", table_name)
        return False
    if not hmac.compare_digest(head.seal, head_seal(key, table_name, head.row_count, head.digest)):
        log.warning("row seal head for %s does not match its seal: left as found", table_name)
        return False
    tables_before = heads_state(connection)
    count = head.row_count + len(added) - len(removed)
    total = int(head.digest, 16) + sum(map(seal_number, added)) - sum(map(seal_number, removed))
    digest = digest_hex(total)
    connection.execute(
        heads.update()
        .where(heads.c.table_name == table_name)
        .values(row_count=count, digest=digest, seal=head_seal(key, table_name, count, digest))
    )
    _reseal_chain_head(connection, key, tables_before)
    return True


# --- sealing at flush -------------------------------------------------------------------


def _key_of(session: Session) -> bytes | None:
    key = session.info.get(SESSION_KEY)
    return key if isinstance(key, bytes) and key else None


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: object, _instances: object) -> None:
    """Before this flush writes: take the audit lock (PostgreSQL), read the seals of the
    sealed rows it deletes, and check the seals of those it changes."""
    key = _key_of(session)
    if key is None:
        return
    changing: dict[str, list[int]] = {}
    doomed: dict[str, list[int]] = {}
    any_new = False
    for obj in session.new:
        any_new = any_new or type(obj) in SEALED_BY_MODEL
    for obj in session.dirty:
        sealed = SEALED_BY_MODEL.get(type(obj))
        if sealed is not None and session.is_modified(obj, include_collections=False):
            changing.setdefault(sealed.table.name, []).append(obj.id)
    for obj in session.deleted:
        sealed = SEALED_BY_MODEL.get(type(obj))
        if sealed is not None and getattr(obj, "id", None) is not None:
            doomed.setdefault(sealed.table.name, []).append(obj.id)
    if not (any_new or changing or doomed):
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Before any row of this flush is written, in the order every audit write takes:
        # the log first, then rows and heads. Two workstations, one changing a booking and
        # one recording the refill that completes it, then wait for each other in turn
        # (the second told the record changed) instead of deadlocking.
        connection.exec_driver_sql("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
    trusted: dict[str, set[int]] = {}
    for name, ids in changing.items():
        table = SEALED_BY_TABLE[name].table
        good = trusted[name] = set()
        for row in connection.execute(select(table).where(table.c.id.in_(ids))):
            seal = row._mapping[SEAL_COLUMN]
            if seal is not None and seal_matches(key, name, row._mapping, seal):
                good.add(row.id)
            else:
                # Not sealed again: a row changed behind PumpClinic's back stays reported
                # (its old seal no longer matches), and one without a seal (written before
                # row seals, or inserted behind its back) stays checked against the log.
                log.warning("%s #%s: seal missing or not matching, not sealed again", name, row.id)
    found: dict[str, list[bytes]] = {}
    for name, ids in doomed.items():
        table = SEALED_BY_TABLE[name].table
        seals = connection.execute(
            select(table.c[SEAL_COLUMN]).where(
                table.c.id.in_(ids), table.c[SEAL_COLUMN].is_not(None)
            )
        ).scalars()
        found[name] = [bytes(s) for s in seals]
    session.info[_TRUSTED] = trusted
    session.info[_DELETED_SEALS] = found


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: object) -> None:
    """Seal the rows of the sealed tables this flush inserted, seal again those it changed
    whose seal held before, and count them (and the rows it deleted) in their heads."""
    key = _key_of(session)
    if key is None:
        return
    deleted: dict[str, list[bytes]] = session.info.pop(_DELETED_SEALS, {})
    trusted: dict[str, set[int]] = session.info.pop(_TRUSTED, {})
    written: dict[str, dict[int, object]] = {}
    for obj in session.new:
        sealed = SEALED_BY_MODEL.get(type(obj))
        if sealed is not None:
            written.setdefault(sealed.table.name, {})[obj.id] = obj
    for obj in session.dirty:
        sealed = SEALED_BY_MODEL.get(type(obj))
        if sealed is not None and obj.id in trusted.get(sealed.table.name, ()):
            written.setdefault(sealed.table.name, {})[obj.id] = obj
    if not written and not any(deleted.values()):
        return
    connection = session.connection()
    for name in sorted(set(written) | set(deleted)):
        objects = written.get(name, {})
        added, removed = seal_rows(connection, key, name, objects)
        for obj_id, seal in added.items():
            set_committed_value(objects[obj_id], SEAL_COLUMN, seal)
        apply_to_head(connection, key, name, list(added.values()), removed + deleted.get(name, []))


def seal_rows(
    connection: Connection, key: bytes, table_name: str, ids: Iterable[int]
) -> tuple[dict[int, bytes], list[bytes]]:
    """Seal these rows as they stand in the database. Returns (id → new seal, the seals
    they had before)."""
    table = SEALED_BY_TABLE[table_name].table
    wanted = sorted(ids)
    if not wanted:
        return {}, []
    added: dict[int, bytes] = {}
    removed: list[bytes] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in connection.execute(select(table).where(table.c.id.in_(chunk))):
            values = row._mapping
            if values[SEAL_COLUMN] is not None:
                removed.append(bytes(values[SEAL_COLUMN]))
            added[values["id"]] = seal_values(key, table_name, values)
    if added:
        connection.execute(
            table.update()
            .where(table.c.id == bindparam("row_id"))
            .values({SEAL_COLUMN: bindparam("new_seal")}),
            [{"row_id": row_id, "new_seal": seal} for row_id, seal in added.items()],
        )
    return added, removed
