"""Writes for privacy cases. Each runs in one transaction with its audit event."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction

from healthspace.access.actors import Actor
from healthspace.access.policy import Action
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import access_checked, audit_record
from healthspace.cases.models import PrivacyCase
from healthspace.core.clock import now
from healthspace.core.errors import NotFound

CASE_OPEN = Action.CASE_OPEN
NOTE_MAX = 2000
NOT_FOUND_MESSAGE = "We could not find that entry in your record's history."


def case_open_not_recognised(
    *, actor: Actor, patient_id: uuid.UUID, audit_event_id: int, note: str
) -> PrivacyCase:
    """Open (or return the already open) case about one event of this patient's trail.

    Raises NotFound when the event is not about ``patient_id``: the same answer as for an
    event that does not exist, so nobody learns about other patients' trails.
    """
    note = (note or "").strip()[:NOTE_MAX]
    decision = access_checked(actor=actor, action=Action.CASE_OPEN, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    with transaction.atomic():
        if not AuditEvent.objects.filter(pk=audit_event_id, patient_id=patient_id).exists():
            raise NotFound(NOT_FOUND_MESSAGE)
        existing = _open_case_for(audit_event_id)
        if existing is not None:
            return existing
        try:
            # A savepoint: a concurrent submit losing the unique race must not poison
            # the outer transaction.
            with transaction.atomic():
                case = PrivacyCase.objects.create(
                    opened_at=now(),
                    patient_id=patient_id,
                    kind=PrivacyCase.Kind.NOT_RECOGNISED,
                    audit_event_id=audit_event_id,
                    patient_note=note,
                )
        except IntegrityError:
            return _open_case_for(audit_event_id)
        audit_record(
            actor=actor,
            action=CASE_OPEN,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            # ids and sizes only: the note may hold anything the patient typed
            detail={
                "case_id": case.pk,
                "audit_event_id": audit_event_id,
                "kind": case.kind,
                "note_chars": len(note),
            },
        )
    return case


def _open_case_for(audit_event_id: int) -> PrivacyCase | None:
    return PrivacyCase.objects.filter(
        audit_event_id=audit_event_id, status=PrivacyCase.Status.OPEN
    ).first()
