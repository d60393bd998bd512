"""The audit log: who changed what, when, before and after."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from pumpclinic.db.models import AuditEntry
from pumpclinic.domain.enums import AuditAction
from pumpclinic.services.context import Actor

_SECRET_COLUMNS = frozenset({"password_hash"})


def snapshot(obj: object) -> dict[str, Any]:
    """The row's column values as JSON-ready data (secrets left out)."""
    values: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        if attr.key in _SECRET_COLUMNS:
            continue
        value = getattr(obj, attr.key)
        if isinstance(value, dt.datetime | dt.date | dt.time):
            value = value.isoformat()
        values[attr.key] = value
    return values


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
    session.add(
        AuditEntry(
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
    )
