"""What a member of staff does before and while looking at a record. Each write asks
``access.decide`` and is audited in its own transaction; alerts for the privacy officer
are raised in the same transaction as the event they are about."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import Permission
from healthspace.access.policy import Action
from healthspace.accounts.models import Account, PatientLink
from healthspace.audit.services import access_checked, audit_record
from healthspace.cases.models import PrivacyCase
from healthspace.cases.services import alert_raise
from healthspace.core import sql
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.notify.notices import Notice
from healthspace.notify.services import notice_send
from healthspace.records.models import Patient
from healthspace.records.selectors import ScrView, scr_for
from healthspace.staff.models import PermissionAnswer, RelationshipClaim
from healthspace.staff.selectors import NOT_FOUND_MESSAGE, StaffContext

EXPLANATION_MIN = 10
EXPLANATION_MAX = 500
REFUSED_MESSAGE = "You cannot do this for this patient."


def patient_find(*, actor: Actor, nhs_number: str, birth_date: date) -> uuid.UUID:
    """The patient whose NHS number *and* date of birth match (a check of the person in
    front of you, not a search). A wrong date of birth for a real NHS number is a failed
    access attempt, recorded in that patient's trail; an unknown NHS number is recorded in
    the searcher's own trail. Both answer the same "no match"."""
    decision = access_checked(actor=actor, action=Action.FIND_PATIENT, patient_id=None)
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    with transaction.atomic():
        found = (
            Patient.objects.filter(nhs_number=nhs_number).values_list("id", "birth_date").first()
        )
        if found is None:
            audit_record(
                actor=actor,
                action=Action.FIND_PATIENT,
                patient_id=None,
                outcome="not-found",
                reason="no-such-nhs-number",
            )
        elif found[1] != birth_date:
            audit_record(
                actor=actor,
                action=Action.FIND_PATIENT,
                patient_id=found[0],
                outcome="denied",
                reason="birth-date-did-not-match",
            )
        else:
            audit_record(
                actor=actor,
                action=Action.FIND_PATIENT,
                patient_id=found[0],
                outcome="success",
                reason=decision.reason,
                detail={"step": "find"},
            )
            return found[0]
    raise NotFound(NOT_FOUND_MESSAGE)


def refusal_record(
    *, actor: Actor, action: Action, patient_id: uuid.UUID | None, reason: str
) -> None:
    """A signed-in person turned away at the door of a staff page, recorded in the
    patient's trail (only for records that exist, so made-up ids cannot fill the audit
    table) or, for pages about no one record, in their own."""
    if patient_id is not None and not Patient.objects.filter(pk=patient_id).exists():
        patient_id = None
    with transaction.atomic():
        audit_record(
            actor=actor, action=action, patient_id=patient_id, outcome="denied", reason=reason
        )


def may(*, actor: Actor, action: Action, patient_id: uuid.UUID, context: StaffContext) -> bool:
    """Before showing a form for ``action``: would it be allowed? A refusal is audited."""
    return access_checked(
        actor=actor, action=action, patient_id=patient_id, context=context.access
    ).allowed


def _explanation(text: str, *, required: bool, what: str) -> str:
    text = " ".join((text or "").split())
    if required and len(text) < EXPLANATION_MIN:
        raise InvalidInput(f"Explain {what} in at least {EXPLANATION_MIN} characters")
    if len(text) > EXPLANATION_MAX:
        raise InvalidInput(f"The explanation must be {EXPLANATION_MAX} characters or fewer")
    return text


def _decided(*, actor: Actor, action: Action, patient_id: uuid.UUID, context: StaffContext) -> str:
    decision = access_checked(
        actor=actor, action=action, patient_id=patient_id, context=context.access
    )
    if not decision.allowed:
        raise Refused(REFUSED_MESSAGE, reason=decision.reason)
    return decision.reason


def permission_record(
    *,
    actor: Actor,
    user_id: int,
    session_key_hash: str,
    patient_id: uuid.UUID,
    context: StaffContext,
    answer: Permission | str,
    explanation: str = "",
) -> PermissionAnswer:
    """The patient's answer to "may I look at your Summary Care Record?" for this session.
    "Cannot be asked" (unconscious, for example) needs the reason it is in their interest."""
    try:
        answer = Permission(answer)
    except ValueError:
        raise InvalidInput("Choose the patient's answer") from None
    if answer not in (Permission.GIVEN, Permission.REFUSED, Permission.CANNOT_BE_ASKED):
        raise InvalidInput("Choose the patient's answer")
    explanation = _explanation(
        explanation,
        required=answer == Permission.CANNOT_BE_ASKED,
        what="why the patient cannot be asked and why looking is in their interest",
    )
    reason = _decided(
        actor=actor, action=Action.PERMISSION_RECORD, patient_id=patient_id, context=context
    )
    with transaction.atomic():
        event = audit_record(
            actor=actor,
            action=Action.PERMISSION_RECORD,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"answer": str(answer)},
        )
        return PermissionAnswer.objects.create(
            user_id=user_id,
            session_key_hash=session_key_hash,
            patient_id=patient_id,
            answer=answer,
            explanation=explanation,
            recorded_at=event.occurred_at,
            audit_event_id=event.pk,
        )


def relationship_claim(
    *,
    actor: Actor,
    user_id: int,
    patient_id: uuid.UUID,
    context: StaffContext,
    reason: RelationshipClaim.Reason | str,
    explanation: str = "",
) -> RelationshipClaim:
    """A self-claimed relationship: lasts HEALTHSPACE_SELF_CLAIM_HOURS and alerts the
    privacy officer, who sees the reason given."""
    try:
        reason = RelationshipClaim.Reason(reason)
    except ValueError:
        raise InvalidInput("Choose how you are involved in this patient's care") from None
    explanation = _explanation(
        explanation,
        required=reason == RelationshipClaim.Reason.OTHER,
        what="how you are involved in the patient's care",
    )
    policy_reason = _decided(
        actor=actor, action=Action.RELATIONSHIP_CLAIM, patient_id=patient_id, context=context
    )
    with transaction.atomic():
        event = audit_record(
            actor=actor,
            action=Action.RELATIONSHIP_CLAIM,
            patient_id=patient_id,
            outcome="success",
            reason=policy_reason,
            detail={"claim_reason": str(reason)},
        )
        claim = RelationshipClaim.objects.create(
            user_id=user_id,
            patient_id=patient_id,
            reason=reason,
            explanation=explanation,
            claimed_at=event.occurred_at,
            expires_at=event.occurred_at + timedelta(hours=settings.HEALTHSPACE_SELF_CLAIM_HOURS),
            audit_event_id=event.pk,
        )
        alert_raise(
            patient_id=patient_id,
            kind=PrivacyCase.Kind.SELF_CLAIMED_RELATIONSHIP,
            audit_event_id=event.pk,
        )
    return claim


def emergency_access_record(
    *,
    actor: Actor,
    user_id: int,
    session_key_hash: str,
    patient_id: uuid.UUID,
    context: StaffContext,
    explanation: str,
) -> PermissionAnswer:
    """Emergency access: overrides a refusal or the lack of a relationship for this
    session, with a reason, and alerts the privacy officer at once."""
    explanation = _explanation(explanation, required=True, what="the emergency")
    reason = _decided(
        actor=actor, action=Action.EMERGENCY_ACCESS, patient_id=patient_id, context=context
    )
    with transaction.atomic():
        event = audit_record(
            actor=actor,
            action=Action.EMERGENCY_ACCESS,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
        )
        answer = PermissionAnswer.objects.create(
            user_id=user_id,
            session_key_hash=session_key_hash,
            patient_id=patient_id,
            answer=Permission.EMERGENCY,
            explanation=explanation,
            recorded_at=event.occurred_at,
            audit_event_id=event.pk,
        )
        alert_raise(
            patient_id=patient_id, kind=PrivacyCase.Kind.EMERGENCY_ACCESS, audit_event_id=event.pk
        )
    return answer


def staff_scr_view(*, actor: Actor, patient_id: uuid.UUID, context: StaffContext) -> ScrView:
    """The SCR as this member of staff may see it (withheld sections marked), audited;
    the patient is emailed if they asked to be told of every staff view."""
    scr = scr_for(actor=actor, patient_id=patient_id, context=context.access)
    _notify_patient_of_staff_view(patient_id, context)
    return scr


def _notify_patient_of_staff_view(patient_id: uuid.UUID, context: StaffContext) -> None:
    """Only that a view happened: no name, organisation or clinical content (email is not
    a safe place for them, and someone else may read the patient's inbox). Queued for the
    worker: the view never waits for a mail server. Whom to tell was read with the access
    facts, a moment before; a context made without it asks now."""
    user_id = (
        context.staff_view_emails_to
        if context.staff_view_emails_read
        else _wants_staff_view_emails(patient_id)
    )
    if user_id is None:
        return
    with transaction.atomic():
        notice_send(user_id=user_id, notice=Notice.STAFF_VIEWED_RECORD)


def _wants_staff_view_emails(patient_id: uuid.UUID) -> int | None:
    """The linked account that asked to be told of every staff view, if any: plain SQL
    (core.sql), as every SCR view asks it (docs/performance.md)."""
    links, pl = sql.names(PatientLink)
    accounts, a = sql.names(Account)
    found = sql.rows(
        f"SELECT pl.{pl['user_id']} FROM {links} pl "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"JOIN {accounts} a ON a.{a['user_id']} = pl.{pl['user_id']} "
        f"WHERE pl.{pl['patient_id']} = %s AND a.{a['notify_staff_views']} = %s "
        f"ORDER BY pl.{pl['id']} LIMIT 1",
        [sql.param(PatientLink, "patient", patient_id), True],
        prepared=True,
    )
    return found[0][0] if found else None
