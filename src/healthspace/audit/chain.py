"""The hash-chain format: which bytes each audit event's hash covers. Pure, no database.

Version ``hs-audit-v1``. An event's hash is SHA-256 (lower-case hex) over the UTF-8 bytes
of the canonical JSON array::

    ["hs-audit-v1", chain_key, seq, prev_hash, occurred_at, patient_id, actor, action,
     outcome, reason, detail]

- canonical JSON: keys sorted, no whitespace, ASCII only (``\\uXXXX`` escapes), no NaN;
  floats with an integral value are written as integers (PostgreSQL ``jsonb`` may hand
  ``1e20`` back as an integer, and the hash must survive the round trip);
- ``occurred_at``: UTC, ISO 8601 with microseconds, e.g. ``2026-01-02T03:04:05.000006+00:00``;
- ``patient_id``: the UUID in its hyphenated lower-case form, or ``null``;
- ``prev_hash`` of link 1 is :data:`GENESIS` (64 zeros).

Changing any of this changes every hash: add a new version, never edit this one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

VERSION = "hs-audit-v1"
GENESIS = "0" * 64
CHAIN_KEY_MAX = 64
_ACTOR_PREFIX = "actor:"
# Actor labels longer than fit in a chain key are named by a digest (prefix differs, so a
# hashed key cannot collide with a spelled-out one).
_HASHED_ACTOR_PREFIX = "actor#"


def chain_key_for(*, patient_id: uuid.UUID | str | None, actor: str) -> str:
    """The chain an event belongs to: its patient, or (for no patient) its actor."""
    if patient_id is not None:
        return str(uuid.UUID(str(patient_id)))
    key = _ACTOR_PREFIX + actor
    if len(key) <= CHAIN_KEY_MAX:
        return key
    digest = hashlib.sha256(actor.encode()).hexdigest()
    return (_HASHED_ACTOR_PREFIX + digest)[:CHAIN_KEY_MAX]


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("audit detail may not hold NaN or infinity")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    raise TypeError(f"audit detail may hold only JSON values, not {type(value).__name__}")


def canonical_json(value: Any) -> str:
    return json.dumps(
        _normalise(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def event_bytes(
    *,
    chain_key: str,
    seq: int,
    prev_hash: str,
    occurred_at: datetime,
    patient_id: uuid.UUID | str | None,
    actor: str,
    action: str,
    outcome: str,
    reason: str,
    detail: Any,
) -> bytes:
    fields = [
        VERSION,
        chain_key,
        int(seq),
        prev_hash,
        timestamp(occurred_at),
        None if patient_id is None else str(uuid.UUID(str(patient_id))),
        actor,
        action,
        outcome,
        reason,
        detail,
    ]
    return canonical_json(fields).encode("ascii")


def event_hash(**fields: Any) -> str:
    """SHA-256 hex of :func:`event_bytes` (same keyword arguments)."""
    return hashlib.sha256(event_bytes(**fields)).hexdigest()


def stored_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """The detail as the database will hand it back, so the hash written is the hash read."""
    return json.loads(canonical_json(detail or {}))
