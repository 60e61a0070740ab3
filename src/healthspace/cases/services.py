"""Writes for privacy cases. Each runs in one transaction with its audit event."""

from __future__ import annotations

import uuid
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState
from healthspace.access.policy import Action
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import access_checked, audit_record
from healthspace.cases.models import CaseDecision, ConsentRequest, PrivacyCase
from healthspace.consent import rules
from healthspace.consent.models import ConsentRecord, Source
from healthspace.consent.selectors import consent_state_for
from healthspace.consent.services import consent_change
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.records.models import Patient

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


def alert_raise(*, patient_id: uuid.UUID, kind: str, audit_event_id: int) -> PrivacyCase:
    """An alert for the privacy officer about one audited event (emergency access, a
    self-claimed relationship, reported misuse). Call inside the transaction that wrote
    the event: the alert and the access stand or fall together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("alert_raise must run inside the audited action's transaction")
    return PrivacyCase.objects.create(
        opened_at=now(),
        patient_id=patient_id,
        kind=PrivacyCase.Kind(kind),
        audit_event_id=audit_event_id,
    )


# --- The privacy officer's decisions --------------------------------------------------
# Each asks access.decide first, then writes its rows and its audit event in one
# transaction. Notes typed by the officer stay in the case or request row: the audit
# detail holds ids and outcomes only (the chain must never hold free text).

DECISION_NOTE_MAX = 2000
REFERENCE_MAX = 64
CASE_NOT_FOUND = "There is no such case."
REQUEST_NOT_FOUND = "There is no such request."
DELETION_NOT_FOUND = "There is no deletion request for this record."
NO_MATCH = "No patient matches that NHS number and date of birth."
CASE_ALREADY_CLOSED = "This case is already closed. The decision recorded then stands."
REQUEST_ALREADY_DECIDED = "This request has already been decided. The decision cannot be changed."
NOT_HIDDEN = "This patient's record is not hidden, so there is nothing to unhide."
DELETION_PENDING = (
    "This patient has asked for their record to be deleted. Decide that request first: "
    "refusing it makes the record visible again or keeps it hidden."
)
UNHIDE_ALREADY_OPEN = (
    "There is already an unhide request waiting for a decision for this patient. "
    "Decide that request first."
)
NO_LONGER_HIDDEN = (
    "This record is no longer hidden, so the request cannot be granted. Refuse it with a "
    "note saying why."
)
NO_LONGER_PENDING = "This record is no longer waiting for a decision on deletion."
UNHIDE_STATES = (
    ConsentState.CORE_AND_ADDITIONAL,
    ConsentState.CORE_ONLY,
    ConsentState.IMPLIED,
)


def _decision_note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise InvalidInput("Enter a note explaining the decision")
    if len(note) > DECISION_NOTE_MAX:
        raise InvalidInput(f"The note must be {DECISION_NOTE_MAX} characters or fewer")
    return note


def case_decide(
    *, actor: Actor, case_id: int, outcome: CaseDecision.Outcome | str, note: str
) -> PrivacyCase:
    """Close an open case with an outcome and the officer's note. A case is decided once:
    a second decision (another tab, another officer) is refused, the first one stands."""
    patient_id = PrivacyCase.objects.filter(pk=case_id).values_list("patient_id", flat=True).first()
    if patient_id is None:
        raise NotFound(CASE_NOT_FOUND)
    decision = access_checked(actor=actor, action=Action.CASE_DECIDE, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(CASE_NOT_FOUND)
    try:
        outcome = CaseDecision.Outcome(outcome)
    except ValueError:
        raise InvalidInput("Choose the outcome of your review") from None
    note = _decision_note(note)
    with transaction.atomic():
        case = PrivacyCase.objects.select_for_update().get(pk=case_id)
        if case.status != PrivacyCase.Status.OPEN:
            raise InvalidInput(CASE_ALREADY_CLOSED)
        at = now()
        case.status = PrivacyCase.Status.CLOSED
        case.closed_at = at
        case.decision = note
        case.save(update_fields=["status", "closed_at", "decision"])
        CaseDecision.objects.create(
            case=case, outcome=outcome, decided_at=at, decided_by=actor.audit_label()
        )
        audit_record(
            actor=actor,
            action=Action.CASE_DECIDE,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"case_id": case.pk, "outcome": str(outcome)},
        )
    return case


def unhide_request_record(
    *,
    actor: Actor,
    nhs_number: str,
    birth_date: date,
    received_on: date,
    reference: str,
    requested_state: ConsentState | str,
) -> ConsentRequest:
    """Record a patient's written request to unhide their record. The NHS number and date
    of birth on the letter must both match a patient whose record is hidden. Every
    attempt is audited: a wrong date of birth in that patient's trail, an unknown NHS
    number in the officer's own."""
    decision = access_checked(actor=actor, action=Action.CONSENT_REQUEST_RECORD, patient_id=None)
    if not decision.allowed:
        # Refused, not "no match": the page is not there for them at all
        raise Refused(REQUEST_NOT_FOUND, reason=decision.reason)
    try:
        requested = ConsentState(requested_state)
    except ValueError:
        requested = None
    if requested not in UNHIDE_STATES:
        raise InvalidInput("Choose what the patient asked for")
    reference = " ".join((reference or "").split())
    if not reference:
        raise InvalidInput("Enter the reference of the letter")
    if len(reference) > REFERENCE_MAX:
        raise InvalidInput(f"The reference must be {REFERENCE_MAX} characters or fewer")
    if received_on > timezone.localdate(now()):
        raise InvalidInput("The date the letter was received must be today or in the past")

    def refused(patient_id: uuid.UUID | None, outcome: str, reason: str) -> None:
        audit_record(
            actor=actor,
            action=Action.CONSENT_REQUEST_RECORD,
            patient_id=patient_id,
            outcome=outcome,
            reason=reason,
            detail={"kind": ConsentRequest.Kind.UNHIDE.value},
        )

    with transaction.atomic():
        found = (
            Patient.objects.filter(nhs_number=nhs_number).values_list("id", "birth_date").first()
        )
        if found is None:
            refused(None, "not-found", "no-such-nhs-number")
            error: Exception = NotFound(NO_MATCH)
        elif found[1] != birth_date:
            refused(found[0], "denied", "birth-date-did-not-match")
            error = NotFound(NO_MATCH)
        else:
            patient_id = found[0]
            state = consent_state_for(patient_id=patient_id)
            if state == ConsentState.DELETION_REQUESTED:
                refused(patient_id, "refused", "deletion-requested")
                error = InvalidInput(DELETION_PENDING)
            elif state != ConsentState.HIDDEN:
                refused(patient_id, "refused", "record-not-hidden")
                error = InvalidInput(NOT_HIDDEN)
            else:
                request = _unhide_request_create(
                    actor=actor,
                    patient_id=patient_id,
                    received_on=received_on,
                    reference=reference,
                    requested=requested,
                )
                if request is None:
                    refused(patient_id, "refused", "request-already-open")
                    error = InvalidInput(UNHIDE_ALREADY_OPEN)
                else:
                    audit_record(
                        actor=actor,
                        action=Action.CONSENT_REQUEST_RECORD,
                        patient_id=patient_id,
                        outcome="success",
                        reason=decision.reason,
                        detail={
                            "request_id": request.pk,
                            "kind": request.kind,
                            "requested": str(requested),
                        },
                    )
                    return request
    # Raised after the commit: the refusal is in the trail whatever the page does next.
    raise error


def _unhide_request_create(
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    received_on: date,
    reference: str,
    requested: ConsentState,
) -> ConsentRequest | None:
    """None when an unhide request for this record is already open."""
    try:
        # A savepoint: losing the one-open-request race must not poison the transaction.
        with transaction.atomic():
            return ConsentRequest.objects.create(
                kind=ConsentRequest.Kind.UNHIDE,
                patient_id=patient_id,
                received_on=received_on,
                reference=reference,
                requested_state=requested,
                recorded_at=now(),
                recorded_by=actor.audit_label(),
            )
    except IntegrityError:
        return None


def unhide_request_decide(
    *, actor: Actor, request_id: int, grant: bool, note: str
) -> ConsentRequest:
    """Grant (the record becomes visible in the state the patient asked for) or refuse an
    open unhide request. The consent change and the decision commit together."""
    patient_id = (
        ConsentRequest.objects.filter(pk=request_id, kind=ConsentRequest.Kind.UNHIDE)
        .values_list("patient_id", flat=True)
        .first()
    )
    if patient_id is None:
        raise NotFound(REQUEST_NOT_FOUND)
    decision = access_checked(
        actor=actor, action=Action.CONSENT_REQUEST_RECORD, patient_id=patient_id
    )
    if not decision.allowed:
        raise NotFound(REQUEST_NOT_FOUND)
    note = _decision_note(note)
    with transaction.atomic():
        request = ConsentRequest.objects.select_for_update().get(pk=request_id)
        if request.status != ConsentRequest.Status.OPEN:
            raise InvalidInput(REQUEST_ALREADY_DECIDED)
        if grant:
            _lock_consent(patient_id)
            current = consent_state_for(patient_id=patient_id)
            if current != ConsentState.HIDDEN:
                raise InvalidInput(NO_LONGER_HIDDEN)
            # consent_change nests its own transaction (a savepoint) inside this one
            record = consent_change(
                actor=actor,
                patient_id=patient_id,
                new_state=request.requested_state,
                source=Source.PRIVACY_OFFICER,
                note=f"unhide request {request.pk}",
                context=AccessContext(consent=current),
            )
            request.consent_version = record.version
        request.status = ConsentRequest.Status.GRANTED if grant else ConsentRequest.Status.REFUSED
        request.decided_at = now()
        request.decided_by = actor.audit_label()
        request.decision_note = note
        request.save(
            update_fields=["status", "decided_at", "decided_by", "decision_note", "consent_version"]
        )
        audit_record(
            actor=actor,
            action=Action.CONSENT_REQUEST_RECORD,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"request_id": request.pk, "kind": request.kind, "decision": request.status},
        )
    return request


def _lock_consent(patient_id: uuid.UUID) -> list[ConsentRecord]:
    """Take the locks consent_change takes (the patient row, then the latest versions) so
    the state read here is the one the change applies to. Returns the two latest versions,
    newest first."""
    Patient.objects.select_for_update(no_key=True).filter(id=patient_id).values("id").first()
    return list(
        ConsentRecord.objects.select_for_update()
        .filter(patient_id=patient_id)
        .order_by("-version")[:2]
    )


def deletion_request_decide(
    *, actor: Actor, patient_id: uuid.UUID, grant: bool, note: str
) -> ConsentRequest:
    """Decide a patient's online request to delete their record: grant (deleted, final) or
    refuse (back to the state before the request where the rules allow it, else hidden).
    The decision is kept as a ConsentRequest row of kind deletion."""
    if not ConsentRecord.objects.filter(patient_id=patient_id).exists():
        raise NotFound(DELETION_NOT_FOUND)
    decision = access_checked(
        actor=actor, action=Action.CONSENT_REQUEST_RECORD, patient_id=patient_id
    )
    if not decision.allowed:
        raise NotFound(DELETION_NOT_FOUND)
    note = _decision_note(note)
    with transaction.atomic():
        versions = _lock_consent(patient_id)
        if not versions or versions[0].state != ConsentState.DELETION_REQUESTED:
            raise InvalidInput(NO_LONGER_PENDING)
        asked = versions[0]
        new_state = ConsentState.DELETED if grant else deletion_refusal_state(versions)
        at = now()
        request = ConsentRequest.objects.create(
            kind=ConsentRequest.Kind.DELETION,
            patient_id=patient_id,
            received_on=timezone.localdate(asked.recorded_at),
            reference=f"consent version {asked.version}",
            requested_state=ConsentState.DELETED,
            recorded_at=at,
            recorded_by=actor.audit_label(),
            status=ConsentRequest.Status.GRANTED if grant else ConsentRequest.Status.REFUSED,
            decided_at=at,
            decided_by=actor.audit_label(),
            decision_note=note,
        )
        record = consent_change(
            actor=actor,
            patient_id=patient_id,
            new_state=new_state,
            source=Source.PRIVACY_OFFICER,
            note=f"deletion request {request.pk}",
            # decide() asks for gathered facts before any record change; the officer's
            # rule needs none beyond the state itself
            context=AccessContext(consent=ConsentState.DELETION_REQUESTED),
        )
        request.consent_version = record.version
        request.save(update_fields=["consent_version"])
        detail = {
            "request_id": request.pk,
            "kind": request.kind,
            "decision": request.status,
            "to": str(new_state),
        }
        if grant:
            # crypto-shred the record's content, last (it cannot be rolled back); the
            # signed receipt is kept (portability.closure.record_shred)
            from healthspace.portability.closure import record_shred

            receipt = record_shred(patient_id=patient_id)
            detail["receipt_id"] = receipt["receipt_id"]
        audit_record(
            actor=actor,
            action=Action.CONSENT_REQUEST_RECORD,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail=detail,
        )
    return request


def deletion_refusal_state(versions: list[ConsentRecord]) -> ConsentState:
    """What refusing a deletion request returns the record to: the state before the
    request (``versions``: newest first, the request itself first) when the rules let a
    privacy officer restore it, else hidden (a record that was never visible, or whose
    patient had dissented, is not made visible by a refusal)."""
    previous = ConsentState(versions[1].state) if len(versions) > 1 else ConsentState.IMPLIED
    if rules.is_allowed(ConsentState.DELETION_REQUESTED, previous, Source.PRIVACY_OFFICER):
        return previous
    return ConsentState.HIDDEN
