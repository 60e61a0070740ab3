"""Changes to the patient's SCR consent: append a version, audited in the same transaction."""

from __future__ import annotations

import uuid

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState
from healthspace.access.policy import Action
from healthspace.access.roles import Role
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent import rules
from healthspace.consent.models import ConsentRecord, Source
from healthspace.core import clock
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.records.models import Patient

ACTION = Action.CONSENT_CHANGE
NOTE_MAX = 200


def _check_source(actor: Actor, patient_id: uuid.UUID, source: Source) -> None:
    """The source recorded must be who the actor is (a clerk cannot record a change as the
    patient's own). Whether they may change this record at all is access.decide's."""
    if source == Source.PATIENT_ONLINE:
        ok = actor.kind == "patient" and actor.patient_id == patient_id
    elif source == Source.PRIVACY_OFFICER:
        ok = actor.kind == "staff" and Role.PRIVACY_OFFICER in actor.roles
    else:
        ok = actor.kind == "staff" and bool(actor.roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK})
    if not ok:
        raise NotFound("Record not found.")


def consent_change(
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    new_state: ConsentState | str,
    source: Source | str,
    note: str = "",
    context: AccessContext | None = None,
) -> ConsentRecord:
    """``context`` carries what the caller established about a staff actor (their
    relationship to the patient); access.decide makes the decision."""
    try:
        new_state, source = ConsentState(new_state), Source(source)
    except ValueError:
        raise InvalidInput("Choose one of the options.") from None
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"The note must be {NOTE_MAX} characters or fewer.")
    _check_source(actor, patient_id, source)
    decision = access_checked(
        actor=actor, action=Action.CONSENT_CHANGE, patient_id=patient_id, context=context
    )
    if not decision.allowed:
        raise NotFound("Record not found.")
    with transaction.atomic():
        # Serialise changes to this patient's consent: lock the patient row (there is one
        # before the first change), then the latest version. The unique (patient, version)
        # constraint is the backstop if the record itself has gone. FOR NO KEY UPDATE,
        # not FOR UPDATE: every insert of a row that references the patient (a message,
        # a reading shared into the SCR) takes FOR KEY SHARE on it, and FOR UPDATE
        # against those deadlocked a consent change with a message sent at the same
        # moment (tests/reliability). No key changes here, so the weaker lock suffices.
        patient_exists = (
            Patient.objects.select_for_update(no_key=True)
            .filter(id=patient_id)
            .values("id")
            .first()
        )
        latest = (
            ConsentRecord.objects.select_for_update()
            .filter(patient_id=patient_id)
            .order_by("-version")
            .first()
        )
        if patient_exists is None and latest is None:
            raise NotFound("Record not found.")
        current = ConsentState(latest.state) if latest else ConsentState.IMPLIED
        if not rules.is_allowed(current, new_state, source):
            raise InvalidInput(rules.refusal(current, new_state, source))
        version = latest.version + 1 if latest else 1
        record = ConsentRecord.objects.create(
            patient_id=patient_id,
            version=version,
            state=new_state,
            recorded_at=clock.now(),
            recorded_by=actor.audit_label(),
            source=source,
            note=note,
            supersedes=latest.version if latest else None,
        )
        audit_record(
            actor=actor,
            action=ACTION,
            patient_id=patient_id,
            outcome="allowed",
            reason=f"{decision.reason}:{source}",
            detail={"from": str(current), "to": str(new_state), "version": version},
        )
    return record
