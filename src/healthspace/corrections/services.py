"""Corrections: "This looks wrong" on an SCR item, answered by the item's practice.

Every write asks ``access.decide`` first and writes its audit event in the same
transaction; a refusal is audited by ``access_checked`` in the patient's trail. Status
changes go through ``workflow.transition`` only. What the patient and the clinician wrote
is sealed under the patient's SCR key (the practice must read it; deleting the record
shreds it with the rest).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action
from healthspace.accounts.models import PatientLink
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.selectors import consent_state_for
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.corrections import workflow
from healthspace.corrections.models import CorrectionRequest
from healthspace.corrections.routing import practice_for
from healthspace.corrections.selectors import Review, review_of
from healthspace.corrections.workflow import By, Event, Status, TransitionRefused
from healthspace.notify.notices import Notice
from healthspace.notify.services import notice_send
from healthspace.records import fhir_map
from healthspace.records.amend import ItemChanges, amended_by_label, item_amend
from healthspace.records.importer import item_purpose
from healthspace.records.models import Origin, Patient, ScrItem
from healthspace.vault import services as vault

NOT_FOUND_MESSAGE = "There is no request here that you can see."
ITEM_NOT_FOUND = "There is no item in your record with that number."
WORDS_MAX = 1000
EXPLANATION_MIN = 10
EXPLANATION_MAX = 1000
NO_PRACTICE = (
    "We cannot send this to a GP practice: your record does not show a practice that uses "
    "HealthSpace. Contact your GP practice to ask them to check it."
)
PATIENT_ADDED = "You added this yourself. Change or remove it on the page of what you added."


class AlreadyAsked(InvalidInput):
    """There is an open request for this item already; ``request_id`` is it."""

    def __init__(self, request_id: uuid.UUID) -> None:
        super().__init__("You have already asked your GP practice to check this.")
        self.request_id = request_id


def clean_text(text: str, *, max_length: int, required: str | None = None) -> str:
    """Plain text: whitespace runs made single spaces (nothing else is interpreted: pages
    escape it), within the limit; ``required`` is the error when it is empty."""
    text = " ".join((text or "").split())
    if required and not text:
        raise InvalidInput(required)
    if len(text) > max_length:
        raise InvalidInput(f"This must be {max_length} characters or fewer")
    return text


# --- the patient ------------------------------------------------------------------------


def _own(actor: Actor, action: Action) -> tuple[uuid.UUID, str]:
    patient_id = actor.patient_id
    decision = access_checked(actor=actor, action=action, patient_id=patient_id)
    if not decision.allowed or patient_id is None:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    return patient_id, decision.reason


def item_title(resource: dict[str, Any], content: dict[str, Any]) -> str:
    view = fhir_map.describe(resource)
    if content.get("medication") and view.title.endswith("(no description recorded)"):
        return str(content["medication"])
    return view.title


def correction_request(
    *, actor: Actor, item_id: int, wrong: str, should_say: str = ""
) -> uuid.UUID:
    """The patient asks for an item of their own SCR to be checked. Raises InvalidInput
    (AlreadyAsked, patient-added item, no practice), NotFound (not theirs, not shown to
    them), Refused (audited). Returns the new request's id."""
    wrong = clean_text(wrong, max_length=WORDS_MAX, required="Tell us what is wrong")
    should_say = clean_text(should_say, max_length=WORDS_MAX)
    patient_id, reason = _own(actor, Action.CORRECTION_REQUEST)
    with transaction.atomic():
        item = (
            ScrItem.objects.select_for_update()
            .filter(pk=item_id, patient_id=patient_id)
            .only("id", "identity", "payload", "origin", "section", "version", "patient_id")
            .first()
        )
        if item is None:
            raise NotFound(ITEM_NOT_FOUND)
        if item.origin == Origin.PATIENT:
            raise InvalidInput(PATIENT_ADDED)
        cipher = vault.cipher_for(patient_id=patient_id)
        content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
        resource = content["resource"]
        if fhir_map.entered_in_error(resource):
            raise NotFound(ITEM_NOT_FOUND)  # not shown to the patient: nothing to ask about
        already = (
            CorrectionRequest.objects.filter(item_id=item.pk, status__in=workflow.OPEN_STATUSES)
            .values_list("id", flat=True)
            .first()
        )
        if already is not None:
            raise AlreadyAsked(already)
        patient = Patient.objects.select_related("registered_practice").get(pk=patient_id)
        practice = practice_for(resource=resource, patient=patient)
        if practice is None:
            raise InvalidInput(NO_PRACTICE)
        request = CorrectionRequest(
            patient_id=patient_id,
            item_id=item.pk,
            item_version=item.version,
            section=item.section,
            practice=practice,
            practice_ods=practice.ods_code,
            submitted_at=now(),
        )
        request.words = cipher.seal_json(
            {"wrong": wrong, "should_say": should_say, "item_title": item_title(resource, content)},
            purpose=request.words_purpose,
        )
        try:
            with transaction.atomic():
                request.save(force_insert=True)
        except IntegrityError:  # the one-open-request-per-item constraint: asked at once
            raise AlreadyAsked(
                CorrectionRequest.objects.filter(
                    item_id=item.pk, status__in=workflow.OPEN_STATUSES
                ).values_list("id", flat=True)[0]
            ) from None
        audit_record(
            actor=actor,
            action=Action.CORRECTION_REQUEST,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={
                "request": str(request.id),
                "item": item.pk,
                "version": item.version,
                "practice": practice.ods_code,
            },
        )
    return request.id


def correction_withdraw(*, actor: Actor, request_id: uuid.UUID) -> None:
    """The patient withdraws their own request before the practice answers it."""
    patient_id, reason = _own(actor, Action.CORRECTION_REQUEST)
    with transaction.atomic():
        request = (
            CorrectionRequest.objects.select_for_update()
            .filter(pk=request_id, patient_id=patient_id)
            .first()
        )
        if request is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        try:
            request.status = workflow.transition(request.status, Event.WITHDRAW, by=By.PATIENT)
        except TransitionRefused as exc:
            raise InvalidInput(str(exc)) from None
        request.withdrawn_at = now()
        request.save(update_fields=["status", "withdrawn_at", "updated_at"])
        audit_record(
            actor=actor,
            action=Action.CORRECTION_REQUEST,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"request": str(request.id), "change": "withdrawn"},
        )


# --- the practice -----------------------------------------------------------------------


def staff_context(*, actor: Actor, patient_id: uuid.UUID, practice_ods: str) -> AccessContext:
    """The facts decide() needs: does the member of staff work at the practice the request
    went to, and the record's consent state (a deleted record has nothing to correct)."""
    return AccessContext(
        consent=consent_state_for(patient_id=patient_id),
        team_member=bool(actor.organisation) and actor.organisation == practice_ods,
    )


def correction_refusal_record(*, actor: Actor, action: Action, request_id: uuid.UUID) -> None:
    """Someone turned away at the door of a request's staff page, recorded in the trail of
    the request's patient (only for requests that exist, so made-up ids cannot fill the
    audit table; else in their own)."""
    patient_id = (
        CorrectionRequest.objects.filter(pk=request_id).values_list("patient_id", flat=True).first()
    )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            patient_id=patient_id,
            outcome="denied",
            reason="not-a-member-of-staff",
        )


def _staff_decided(
    actor: Actor, request_id: uuid.UUID, *actions: Action
) -> tuple[uuid.UUID, AccessContext, str]:
    """(patient id, context, reason of the first action) for a request that exists and
    that ``actor`` may handle; every refusal is audited in the patient's trail."""
    row = (
        CorrectionRequest.objects.filter(pk=request_id)
        .values_list("patient_id", "practice_ods")
        .first()
    )
    if row is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    patient_id, practice_ods = row
    context = staff_context(actor=actor, patient_id=patient_id, practice_ods=practice_ods)
    reasons = []
    for action in actions:
        decision = access_checked(
            actor=actor, action=action, patient_id=patient_id, context=context
        )
        if not decision.allowed:
            raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
        reasons.append(decision.reason)
    return patient_id, context, reasons[0]


def correction_review(*, actor: Actor, request_id: uuid.UUID) -> Review:
    """A clinician of the practice reads the request: the item as it is now, what the
    patient said and any answer. The first look opens it (submitted -> in review, they
    are its reviewer), in the same transaction as the read and its audit event."""
    patient_id, _, reason = _staff_decided(actor, request_id, Action.CORRECTION_VIEW)
    with transaction.atomic():
        request = (
            CorrectionRequest.objects.select_for_update(of=("self",))
            .select_related("practice")
            .get(pk=request_id)
        )
        opened = workflow.allowed(request.status, Event.OPEN, by=By.CLINICIAN)
        if opened:
            request.status = workflow.transition(request.status, Event.OPEN, by=By.CLINICIAN)
            request.reviewed_at = now()
            request.reviewed_by = actor.audit_label()
            request.save(update_fields=["status", "reviewed_at", "reviewed_by", "updated_at"])
        review = review_of(request)
        audit_record(
            actor=actor,
            action=Action.CORRECTION_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"request": str(request_id), "opened": opened},
        )
    return review


@dataclass(frozen=True)
class Decision:
    outcome: Status  # amended or kept
    item_version: int | None


def correction_decide(
    *,
    actor: Actor,
    request_id: uuid.UUID,
    amend: bool,
    explanation: str,
    changes: ItemChanges | None = None,
) -> Decision:
    """A clinician of the practice answers: amend the item (a new version, with
    ``explanation`` as the reason everyone reading the item sees) or keep it (explaining
    why). The patient is told by email that there is an answer, never what it is; the
    notice is queued in the decision's transaction. Raises InvalidInput (nothing changed),
    NotFound, Refused (audited)."""
    explanation = clean_text(
        explanation, max_length=EXPLANATION_MAX, required="Explain your answer to the patient"
    )
    if len(explanation) < EXPLANATION_MIN:
        raise InvalidInput(f"Explain your answer in at least {EXPLANATION_MIN} characters")
    if amend and changes is None:
        raise InvalidInput("Choose what to change")
    actions = [Action.CORRECTION_DECIDE] + ([Action.RECORD_AMEND] if amend else [])
    # decided before the transaction: a refusal's audit must survive the NotFound
    patient_id, context, reason = _staff_decided(actor, request_id, *actions)
    event = Event.AMEND if amend else Event.KEEP
    with transaction.atomic():
        request = CorrectionRequest.objects.select_for_update().get(pk=request_id)
        try:
            status = workflow.transition(request.status, event, by=By.CLINICIAN)
        except TransitionRefused as exc:
            raise InvalidInput(str(exc)) from None
        version = None
        if amend:
            assert changes is not None
            if request.item_id is None:
                raise InvalidInput(
                    "The item is no longer in the record. Answer that it stays as it is, "
                    "and explain."
                )
            version = item_amend(
                actor=actor,
                patient_id=patient_id,
                item_id=request.item_id,
                changes=changes,
                reason=explanation,
                context=context,
            ).version
        cipher = vault.cipher_for(patient_id=patient_id)
        request.answer = cipher.seal_json(
            {
                "outcome": str(status),
                "explanation": explanation,
                "by": amended_by_label(actor),
                "changes": changes.names() if amend and changes else [],
            },
            purpose=request.answer_purpose,
        )
        request.status = status
        request.decided_at = now()
        request.decided_by = actor.audit_label()
        request.amended_version = version
        request.save(
            update_fields=[
                "answer",
                "status",
                "decided_at",
                "decided_by",
                "amended_version",
                "updated_at",
            ]
        )
        user_id = (
            PatientLink.objects.filter(patient_id=patient_id)
            .values_list("user_id", flat=True)
            .first()
        )
        if user_id is not None:  # an account closed since: the answer waits on the record
            notice_send(user_id=user_id, notice=Notice.CORRECTION_ANSWERED)
        audit_record(
            actor=actor,
            action=Action.CORRECTION_DECIDE,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={
                "request": str(request_id),
                "outcome": str(status),
                "notified": user_id is not None,
            },
        )
    return Decision(status, version)
