"""Reads of the patient's SCR consent."""

from __future__ import annotations

import uuid

from django.db import connection, transaction

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import ConsentRecord
from healthspace.core.errors import NotFound


def consent_state_for(*, patient_id: uuid.UUID) -> ConsentState:
    """The latest version's state; no version at all means implied consent. One query on
    the (patient_id, version) unique index, in plain SQL: every access decision asks it
    (the ORM's compile of it cost half a millisecond of CPU, docs/performance.md)."""
    meta = ConsentRecord._meta
    ops = connection.ops
    col = {f.name: ops.quote_name(f.column) for f in meta.concrete_fields}
    sql = (
        f"SELECT {col['state']} FROM {ops.quote_name(meta.db_table)} "  # noqa: S608 - quoted names from model metadata, the id is a parameter
        f"WHERE {col['patient_id']} = %s ORDER BY {col['version']} DESC LIMIT 1"
    )
    patient = meta.get_field("patient_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [patient.get_db_prep_value(patient_id, connection)])
        row = cursor.fetchone()
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
