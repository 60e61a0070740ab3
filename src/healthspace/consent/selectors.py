"""Reads of the patient's SCR consent."""

from __future__ import annotations

import uuid

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import ConsentRecord
from healthspace.core import sql
from healthspace.core.errors import NotFound


def consent_state_for(*, patient_id: uuid.UUID) -> ConsentState:
    """The latest version's state; no version at all means implied consent. One query on
    the (patient_id, version) unique index, in plain SQL: every access decision asks it
    (the ORM's compile of it cost half a millisecond of CPU, docs/performance.md)."""
    table, col = sql.names(ConsentRecord)
    found = sql.rows(
        f"SELECT {col['state']} FROM {table} "  # noqa: S608 - quoted names from model metadata, the id is a parameter
        f"WHERE {col['patient_id']} = %s ORDER BY {col['version']} DESC LIMIT 1",
        [sql.param(ConsentRecord, "patient_id", patient_id)],
        prepared=True,
    )
    row = found[0] if found else None
    return ConsentState(row[0]) if row and row[0] else ConsentState.IMPLIED


def consent_history_for(*, patient_id: uuid.UUID) -> list[ConsentRecord]:
    """Every version, newest first."""
    return list(ConsentRecord.objects.filter(patient_id=patient_id).order_by("-version"))


def consent_overview(
    *, actor: Actor, patient_id: uuid.UUID
) -> tuple[ConsentState, list[ConsentRecord]]:
    """What a person is shown of a record's consent: decided, and audited with the read.
    (consent_state_for above is the internal read that access guards use.)"""
    decision = access_checked(actor=actor, action=Action.CONSENT_VIEW, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound("Record not found.")
    with transaction.atomic():
        history = consent_history_for(patient_id=patient_id)
        audit_record(
            actor=actor,
            action=Action.CONSENT_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"versions": len(history)},
        )
    state = ConsentState(history[0].state) if history else ConsentState.IMPLIED
    return state, history
