"""Write audit events. Call inside the transaction of the action being recorded."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection

from healthspace.access.actors import Actor
from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now


class AuditOutsideTransaction(RuntimeError):
    pass


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
    return AuditEvent.objects.create(
        occurred_at=now(),
        patient_id=patient_id,
        actor=actor.audit_label(),
        action=str(action),
        outcome=outcome,
        reason=reason,
        detail=detail or {},
    )
