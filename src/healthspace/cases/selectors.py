"""Reads for the patient's "Who has looked at your record" pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.policy import Action
from healthspace.audit.selectors import (
    AccessEntry,
    access_entry_for_patient,
    access_history_for_patient,
)
from healthspace.audit.services import access_checked, audit_record
from healthspace.cases.models import PrivacyCase
from healthspace.cases.services import NOT_FOUND_MESSAGE
from healthspace.core.errors import NotFound

PAGE_SIZE = 50
AUDIT_VIEW = Action.ACCESS_LOG_VIEW


@dataclass(frozen=True)
class HistoryPage:
    entries: list[AccessEntry]
    older_before: int | None  # cursor for the "Older" link; None on the last page
    reported: frozenset[int]  # event ids with an open case already


def own_access_history(
    *, actor: Actor, patient_id: uuid.UUID, before: int | None = None, limit: int = PAGE_SIZE
) -> HistoryPage:
    """One page of the patient's own trail, newest first. Reading it is an access too:
    the audit event is written in the same transaction as the read."""
    decision = access_checked(actor=actor, action=Action.ACCESS_LOG_VIEW, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    with transaction.atomic():
        entries = access_history_for_patient(patient_id=patient_id, limit=limit + 1, before=before)
        reported = frozenset(
            PrivacyCase.objects.filter(
                patient_id=patient_id,
                status=PrivacyCase.Status.OPEN,
                audit_event_id__in=[e.id for e in entries],
            ).values_list("audit_event_id", flat=True)
        )
        audit_record(
            actor=actor,
            action=AUDIT_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"entries": min(len(entries), limit), "older": before is not None},
        )
    more = len(entries) > limit
    entries = entries[:limit]
    return HistoryPage(
        entries=entries,
        older_before=entries[-1].id if more and entries else None,
        reported=reported,
    )


def own_entry(*, patient_id: uuid.UUID, audit_event_id: int) -> AccessEntry:
    """The one entry a patient is asking about, only when it is theirs (else NotFound)."""
    entry = access_entry_for_patient(patient_id=patient_id, event_id=audit_event_id)
    if entry is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return entry
