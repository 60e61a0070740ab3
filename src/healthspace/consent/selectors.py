"""Reads of the patient's SCR consent."""

from __future__ import annotations

import uuid

from healthspace.access.context import ConsentState
from healthspace.consent.models import ConsentRecord


def consent_state_for(*, patient_id: uuid.UUID) -> ConsentState:
    """The latest version's state; no version at all means implied consent. One query on
    the (patient_id, version) unique index."""
    state = (
        ConsentRecord.objects.filter(patient_id=patient_id)
        .order_by("-version")
        .values_list("state", flat=True)
        .first()
    )
    return ConsentState(state) if state else ConsentState.IMPLIED


def consent_history_for(*, patient_id: uuid.UUID) -> list[ConsentRecord]:
    """Every version, newest first."""
    return list(ConsentRecord.objects.filter(patient_id=patient_id).order_by("-version"))
