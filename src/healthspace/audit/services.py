"""Write audit events. Call inside the transaction of the action being recorded."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from django.db import connection, transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action, Decision, decide
from healthspace.audit import chain
from healthspace.audit.models import AuditChainHead, AuditEvent
from healthspace.core import sql
from healthspace.core.clock import now
from healthspace.core.pgcursor import prefer_prepared
from healthspace.core.requests import current_request_id


class AuditOutsideTransaction(RuntimeError):
    pass


class ChainConflict(RuntimeError):
    """Another writer appended to the chain under this one (the head lock was bypassed)."""


def audit_record(
    *,
    actor: Actor,
    action: str,
    patient_id: uuid.UUID | None,
    outcome: str,
    reason: str,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    # An audit row committed apart from its action could record what never happened, or
    # miss what did: refuse to write one outside a transaction.
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(f"audit of {action} must run inside transaction.atomic()")
    return _append(
        occurred_at=now(),
        patient_id=patient_id,
        actor=actor.audit_label(),
        action=str(action),
        outcome=outcome,
        reason=reason,
        detail=chain.stored_detail(_with_context(actor, detail)),
    )


def _with_context(actor: Actor, detail: dict[str, Any] | None) -> dict[str, Any]:
    """Who the actor was at the time (roles, organisation) and the request, inside the
    hashed detail: the trail must not change when a member of staff later moves on."""
    out = dict(detail or {})
    if actor.kind == "staff":
        out.setdefault("roles", sorted(actor.roles))
        if actor.organisation:
            out.setdefault("org", actor.organisation)
    request_id = current_request_id()
    if request_id:
        out.setdefault("request_id", request_id)
    return out


def _append(*, occurred_at, patient_id, actor, action, outcome, reason, detail) -> AuditEvent:
    """Append one event to its chain, in the caller's transaction.

    The head row is held (FOR UPDATE) until the caller commits or rolls back: the event
    and the action it records stand or fall together, and the next writer to the same
    chain waits for that outcome. Writers to other chains take other rows, never a
    global lock.
    """
    key = chain.chain_key_for(patient_id=patient_id, actor=actor)
    head = _locked_head(key, at=occurred_at)
    seq = head.seq + 1
    digest = chain.event_hash(
        chain_key=key,
        seq=seq,
        prev_hash=head.head_hash,
        occurred_at=occurred_at,
        patient_id=patient_id,
        actor=actor,
        action=action,
        outcome=outcome,
        reason=reason,
        detail=detail,
    )
    event = AuditEvent(
        occurred_at=occurred_at,
        patient_id=patient_id,
        actor=actor,
        action=action,
        outcome=outcome,
        reason=reason,
        detail=detail,
        chain_key=key,
        seq=seq,
        prev_hash=head.head_hash,
        hash=digest,
    )
    # Compare-and-set: the head moves only from the seq this writer read. The row lock
    # already serialises appends; this makes the head itself the guard that no two
    # writers append the same link, also across monthly partitions, where (chain_key,
    # seq) can be unique only within a partition (audit.partitions).
    if connection.vendor == "postgresql":
        _insert_and_advance(event, from_seq=head.seq)
        return event
    event.save(force_insert=True)
    moved = AuditChainHead.objects.filter(chain_key=key, seq=head.seq).update(
        seq=seq, head_hash=digest, updated_at=occurred_at
    )
    if moved != 1:
        raise ChainConflict(f"audit chain {key} moved past seq {head.seq} during the append")
    return event


def _insert_and_advance(event: AuditEvent, *, from_seq: int) -> None:
    """The event's INSERT and the head's UPDATE in one statement (one round trip less on
    every audited read, docs/performance.md). Same rows as ``save()`` then ``update()``:
    the columns come from the model, the head row is already locked by the caller, and
    the head moves only from ``from_seq`` (the compare-and-set of ``_append``)."""
    ops = connection.ops
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    head = AuditChainHead._meta
    col = {f.name: ops.quote_name(f.column) for f in head.concrete_fields}
    pk = ops.quote_name(AuditEvent._meta.pk.column)
    # names from the models' metadata, quoted; every value is a parameter
    sql = (
        f"WITH ev AS (INSERT INTO {ops.quote_name(AuditEvent._meta.db_table)} ({columns}) "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {pk}) "
        f"UPDATE {ops.quote_name(head.db_table)} SET {col['seq']} = %s, "
        f"{col['head_hash']} = %s, {col['updated_at']} = %s WHERE {col['chain_key']} = %s "
        f"AND {col['seq']} = %s RETURNING (SELECT {pk} FROM ev)"
    )
    updated_at = head.get_field("updated_at").get_db_prep_save(event.occurred_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            prefer_prepared(sql),  # prepared on PostgreSQL: one row, no plan to choose
            [*values, event.seq, event.hash, updated_at, event.chain_key, from_seq],
        )
        row = cursor.fetchone()
    if row is None:  # the head moved (or vanished) under its lock: the caller rolls back
        raise ChainConflict(
            f"audit chain {event.chain_key} moved past seq {from_seq} during the append"
        )
    event.pk = row[0]
    event._state.adding = False
    event._state.db = connection.alias


class _Head(NamedTuple):
    seq: int
    head_hash: str


def _head_for_update(key: str) -> _Head | None:
    """The chain head, locked (FOR UPDATE where the database has row locks; SQLite holds
    its one writer lock). Plain SQL on every audited request: the ORM's compile of this
    fixed statement cost a third of a millisecond of CPU (docs/performance.md)."""
    table, col = sql.names(AuditChainHead)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    found = sql.rows(
        f"SELECT {col['seq']}, {col['head_hash']} FROM {table} "  # noqa: S608 - quoted names from model metadata, the key is a parameter
        f"WHERE {col['chain_key']} = %s{lock}",
        [key],
        prepared=True,
    )
    row = found[0] if found else None
    return _Head(int(row[0]), row[1]) if row is not None else None


def _locked_head(key: str, *, at) -> _Head:
    head = _head_for_update(key)
    if head is not None:
        return head
    # First event of this chain. Two writers may both get here: INSERT ... ON CONFLICT DO
    # NOTHING (INSERT OR IGNORE on SQLite) lets exactly one create the row without an
    # IntegrityError poisoning the caller's transaction; the loser's insert waits for the
    # winner to commit and then does nothing, and both then queue on the row lock.
    AuditChainHead.objects.bulk_create(
        [AuditChainHead(chain_key=key, seq=0, head_hash=chain.GENESIS, updated_at=at)],
        ignore_conflicts=True,
    )
    head = _head_for_update(key)
    if head is None:  # pragma: no cover - the row was inserted just above
        raise ChainConflict(f"audit chain {key} has no head after its creation")
    return head


def access_checked(
    *,
    actor: Actor,
    action: str,
    patient_id: uuid.UUID | None,
    section: str | None = None,
    context: AccessContext | None = None,
) -> Decision:
    """Ask access.decide; a refusal is audited at once, in its own transaction so it
    survives the caller's NotFound. Call it before the action's own transaction; on
    success the caller writes its audit event together with the action."""
    decision = decide(actor, Action(action), patient_id, section, context)
    if not decision.allowed:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=action,
                patient_id=patient_id,
                outcome="denied",
                reason=decision.reason,
            )
    return decision
