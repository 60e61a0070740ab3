"""Reads for the patient's "Who has looked at your record" pages, and for the privacy
officer's console (cases, unhide requests, deletion requests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Count, OuterRef, Subquery

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.access.policy import Action
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import (
    ACTION_WORDS,
    OTHER_ACTION_WORDS,
    OTHER_SYSTEM_WORDS,
    ROLE_WORDS,
    SOME_STAFF,
    SOMEONE,
    SYSTEM_WORDS,
    AccessEntry,
    Person,
    _sections,
    _user_id,
    _users_by_id,
    access_entry_for_patient,
    access_history_for_patient,
    organisation_names,
    reason_in_words,
    third_person,
)
from healthspace.audit.services import access_checked, audit_record
from healthspace.cases.models import ConsentRequest, PrivacyCase
from healthspace.cases.services import (
    CASE_NOT_FOUND,
    DELETION_NOT_FOUND,
    NOT_FOUND_MESSAGE,
    REQUEST_NOT_FOUND,
    deletion_refusal_state,
)
from healthspace.consent.models import ConsentRecord
from healthspace.consent.selectors import consent_state_for
from healthspace.core import sql
from healthspace.core.errors import NotFound
from healthspace.core.nhs_numbers import format_spaced
from healthspace.core.replicas import replica_reads
from healthspace.records.models import Patient
from healthspace.staff.models import PermissionAnswer, RelationshipClaim

PAGE_SIZE = 50
AUDIT_VIEW = Action.ACCESS_LOG_VIEW


@dataclass(frozen=True)
class HistoryPage:
    entries: list[AccessEntry]
    older_before: int | None  # cursor for the "Older" link; None on the last page
    reported: frozenset[int]  # event ids the patient told us about (an open case)
    # event ids with an open case a rule raised (emergency access, a self-claimed
    # relationship): under review, but the patient did not report them
    under_review: frozenset[int] = frozenset()


def own_access_history(
    *, actor: Actor, patient_id: uuid.UUID, before: int | None = None, limit: int = PAGE_SIZE
) -> HistoryPage:
    """One page of the patient's own trail, newest first. Reading it is an access too:
    the audit event is written in the same transaction as the read. With a read replica
    (docs/scaling.md) the list, which may be a moment stale, is read there first, and is
    returned only if the audit event then commits on the primary."""
    decision = access_checked(actor=actor, action=Action.ACCESS_LOG_VIEW, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    entries: list[AccessEntry] | None = None
    with replica_reads() as alias:
        if alias != DEFAULT_DB_ALIAS:
            entries = access_history_for_patient(
                patient_id=patient_id, limit=limit + 1, before=before
            )
    with transaction.atomic():
        if entries is None:  # no replica: the read shares the audit event's transaction
            entries = access_history_for_patient(
                patient_id=patient_id, limit=limit + 1, before=before
            )
        open_cases = {  # plain SQL (core.sql): every page of the trail asks it
            case.audit_event_id: case.kind
            for case in sql.objects(
                PrivacyCase,
                ("id", "audit_event_id", "kind"),
                where={
                    "patient_id": patient_id,
                    "status": PrivacyCase.Status.OPEN,
                    "audit_event_id__in": [e.id for e in entries],
                },
            )
        }
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
        reported=frozenset(
            event for event, kind in open_cases.items() if kind == PrivacyCase.Kind.NOT_RECOGNISED
        ),
        under_review=frozenset(
            event for event, kind in open_cases.items() if kind != PrivacyCase.Kind.NOT_RECOGNISED
        ),
    )


def own_entry(*, patient_id: uuid.UUID, audit_event_id: int) -> AccessEntry:
    """The one entry a patient is asking about, only when it is theirs (else NotFound)."""
    entry = access_entry_for_patient(patient_id=patient_id, event_id=audit_event_id)
    if entry is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return entry


# --- The privacy officer's console ----------------------------------------------------
# Lists show no patient identifiers and are audited once in the officer's own trail; a
# page that shows a patient's NHS number is decided and audited in that patient's trail.

QUEUE_MAX = 200
AROUND = timedelta(hours=12)  # either side: the 24 hours around the event under review
AROUND_MAX = 100
OUTCOME_WORDS: dict[str, str] = {
    "success": "Done",
    "allowed": "Done",
    "case-opened": "Done",
    "denied": "Refused",
    "not-found": "No match",
    "refused": "Refused",
}
THE_PATIENT = "The patient (their own account)"


@dataclass(frozen=True)
class QueueRow:
    id: int
    kind: str
    kind_label: str
    opened_at: datetime
    closed_at: datetime | None
    outcome_label: str


@dataclass(frozen=True)
class Queue:
    rows: list[QueueRow]
    counts: dict[str, int]  # kind -> cases with this status
    total: int
    status: str
    kind: str


def privacy_queue(*, actor: Actor, status: str = "open", kind: str = "") -> Queue:
    """Open cases oldest first (the longest waiting at the top), or closed ones most
    recently decided first; with the number of cases of each kind."""
    decision = access_checked(actor=actor, action=Action.CASE_VIEW, patient_id=None)
    if not decision.allowed:
        raise NotFound(CASE_NOT_FOUND)
    status = status if status in PrivacyCase.Status.values else PrivacyCase.Status.OPEN
    kind = kind if kind in PrivacyCase.Kind.values else ""
    with transaction.atomic():
        counts = {
            row["kind"]: row["n"]
            for row in PrivacyCase.objects.filter(status=status)
            .values("kind")
            .annotate(n=Count("pk"))
            .order_by()
        }
        cases = PrivacyCase.objects.filter(status=status)
        if kind:
            cases = cases.filter(kind=kind)
        order = ("opened_at", "pk") if status == PrivacyCase.Status.OPEN else ("-closed_at", "-pk")
        found = list(
            cases.select_related("decision_record")
            .order_by(*order)
            .only("id", "kind", "opened_at", "closed_at", "status", "decision_record__outcome")[
                :QUEUE_MAX
            ]
        )
        audit_record(
            actor=actor,
            action=Action.CASE_VIEW,
            patient_id=None,
            outcome="success",
            reason=decision.reason,
            detail={"list": "cases", "status": status, "kind": kind or "all", "shown": len(found)},
        )
    return Queue(
        rows=[
            QueueRow(
                id=c.pk,
                kind=c.kind,
                kind_label=c.get_kind_display(),
                opened_at=c.opened_at,
                closed_at=c.closed_at,
                outcome_label=_outcome_label(c),
            )
            for c in found
        ],
        counts={k: counts.get(k, 0) for k in PrivacyCase.Kind.values},
        total=sum(counts.values()),
        status=status,
        kind=kind,
    )


def _outcome_label(case: PrivacyCase) -> str:
    record = getattr(case, "decision_record", None)
    return record.get_outcome_display() if record is not None else ""


@dataclass(frozen=True)
class EventForOfficer:
    """One audited event as the privacy officer reads it: who at the time (roles and
    organisation as recorded in the event), what, why, which parts, when, and what the
    member of staff wrote when they recorded it (a claim's or emergency's explanation)."""

    id: int
    when: datetime
    who: str
    roles: tuple[str, ...]
    organisation: str
    what: str
    result: str
    why: str
    reason_code: str
    sections: tuple[str, ...]
    claim_reason: str = ""
    explanation: str = ""


@dataclass(frozen=True)
class CaseDetail:
    id: int
    kind: str
    kind_label: str
    status: str
    opened_at: datetime
    nhs_number: str  # spaced; "" when the record itself has gone
    patient_note: str
    event: EventForOfficer | None
    around: list[EventForOfficer]
    around_hours: int
    closed_at: datetime | None = None
    outcome_label: str = ""
    decision_note: str = ""
    decided_by: str = ""


def privacy_case(*, actor: Actor, case_id: int) -> CaseDetail:
    """One case with the event it is about, in words, and the same person's other events
    on this record in the 24 hours around it, so misuse can be judged. Shows the patient's
    NHS number (no name, nothing clinical): audited in the patient's trail."""
    patient_id = PrivacyCase.objects.filter(pk=case_id).values_list("patient_id", flat=True).first()
    if patient_id is None:
        raise NotFound(CASE_NOT_FOUND)
    decision = access_checked(actor=actor, action=Action.CASE_VIEW, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(CASE_NOT_FOUND)
    with transaction.atomic():
        case = PrivacyCase.objects.select_related("decision_record").get(pk=case_id)
        event = (
            AuditEvent.objects.filter(pk=case.audit_event_id, patient_id=patient_id).first()
            if case.audit_event_id is not None
            else None
        )
        around: list[AuditEvent] = []
        if event is not None:
            around = list(
                AuditEvent.objects.filter(
                    patient_id=patient_id,
                    actor=event.actor,
                    occurred_at__gte=event.occurred_at - AROUND,
                    occurred_at__lte=event.occurred_at + AROUND,
                )
                .exclude(pk=event.pk)
                .order_by("occurred_at", "pk")[:AROUND_MAX]
            )
        described = _for_officer([e for e in (event, *around) if e is not None], patient_id)
        record = getattr(case, "decision_record", None)
        audit_record(
            actor=actor,
            action=Action.CASE_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"case_id": case.pk},
        )
    return CaseDetail(
        id=case.pk,
        kind=case.kind,
        kind_label=case.get_kind_display(),
        status=case.status,
        opened_at=case.opened_at,
        nhs_number=_nhs_number(patient_id),
        patient_note=case.patient_note,
        event=described[0] if event is not None else None,
        around=described[1:] if event is not None else described,
        around_hours=int(AROUND.total_seconds() // 3600),
        closed_at=case.closed_at,
        outcome_label=record.get_outcome_display() if record is not None else "",
        decision_note=case.decision,
        decided_by=_names([record.decided_by]).get(record.decided_by, "") if record else "",
    )


def _nhs_number(patient_id: uuid.UUID) -> str:
    number = Patient.objects.filter(pk=patient_id).values_list("nhs_number", flat=True).first()
    return format_spaced(number) if number else ""


def _for_officer(events: list[AuditEvent], patient_id: uuid.UUID) -> list[EventForOfficer]:
    """In words, with three more queries whatever the number of events: the people, the
    organisations recorded in the events, and what staff wrote when they recorded them."""
    users = _users_by_id({uid for e in events if (uid := _user_id(e.actor)) is not None})
    organisations = organisation_names(
        {
            d["org"]
            for e in events
            if isinstance(d := e.detail, dict) and isinstance(d.get("org"), str)
        }
    )
    ids = [e.pk for e in events]
    claims = {
        c["audit_event_id"]: c
        for c in RelationshipClaim.objects.filter(audit_event_id__in=ids).values(
            "audit_event_id", "reason", "explanation"
        )
    }
    answers = dict(
        PermissionAnswer.objects.filter(audit_event_id__in=ids).values_list(
            "audit_event_id", "explanation"
        )
    )
    reasons = dict(RelationshipClaim.Reason.choices)
    out = []
    for e in events:
        detail = e.detail if isinstance(e.detail, dict) else {}
        code = detail.get("org")
        organisation = f"{organisations[code]} ({code})" if code in organisations else code or ""
        claim = claims.get(e.pk)
        out.append(
            EventForOfficer(
                id=e.pk,
                when=e.occurred_at,
                who=_who(e.actor, users, patient_id),
                roles=tuple(ROLE_WORDS.get(r, r) for r in detail.get("roles", ()) or ()),
                organisation=organisation,
                what=third_person(ACTION_WORDS.get(e.action, OTHER_ACTION_WORDS)),
                result=OUTCOME_WORDS.get(e.outcome, e.outcome),
                why=third_person(reason_in_words(e.reason, e.outcome)),
                reason_code=e.reason,
                sections=_sections(e.detail),
                claim_reason=reasons.get(claim["reason"], "") if claim else "",
                explanation=claim["explanation"] if claim else answers.get(e.pk, ""),
            )
        )
    return out


def _who(label: str, users: dict[int, Person], patient_id: uuid.UUID | None) -> str:
    kind = label.split(":", 1)[0]
    uid = _user_id(label)
    user = users.get(uid) if uid is not None else None
    if kind == "system":
        return SYSTEM_WORDS.get(label.split(":")[-1], OTHER_SYSTEM_WORDS)
    if kind == "patient":
        if user is not None and patient_id is not None and user.patient_id == patient_id:
            return THE_PATIENT
        return (user.get_full_name().strip() if user is not None else "") or SOMEONE
    if kind == "staff":
        return (user.get_full_name().strip() if user is not None else "") or SOME_STAFF
    if kind == "share-code":
        return "A professional using the patient's share code"
    return OTHER_SYSTEM_WORDS


def _names(labels: list[str]) -> dict[str, str]:
    """Actor labels (``staff:user:7``) as the names of the people."""
    users = _users_by_id({uid for label in labels if (uid := _user_id(label)) is not None})
    return {label: _who(label, users, None) for label in labels if label}


@dataclass(frozen=True)
class RequestRow:
    id: int
    kind: str
    received_on: date
    reference: str
    requested_label: str
    recorded_at: datetime
    status: str
    status_label: str
    decided_at: datetime | None


def _request_row(r: ConsentRequest) -> RequestRow:
    return RequestRow(
        id=r.pk,
        kind=r.kind,
        received_on=r.received_on,
        reference=r.reference,
        requested_label=STATE_WORDS.get(r.requested_state, r.requested_state),
        recorded_at=r.recorded_at,
        status=r.status,
        status_label=r.get_status_display(),
        decided_at=r.decided_at,
    )


# What each consent state means, in the privacy officer's words.
STATE_WORDS: dict[str, str] = {
    ConsentState.IMPLIED: "Core information only (the standard choice)",
    ConsentState.CORE_AND_ADDITIONAL: "Core and additional information",
    ConsentState.CORE_ONLY: "Core information only (the patient's choice)",
    ConsentState.DISSENT: "Opted out",
    ConsentState.HIDDEN: "Hidden",
    ConsentState.DELETION_REQUESTED: "Hidden: deletion requested",
    ConsentState.DELETED: "Deleted",
}


def unhide_requests(*, actor: Actor, status: str = "open") -> list[RequestRow]:
    """Unhide requests waiting for a decision (the oldest letter first), or decided ones
    (the latest first). No identifiers: the reference on the letter finds it."""
    decision = access_checked(actor=actor, action=Action.CASE_VIEW, patient_id=None)
    if not decision.allowed:
        raise NotFound(REQUEST_NOT_FOUND)
    requests = ConsentRequest.objects.filter(kind=ConsentRequest.Kind.UNHIDE)
    if status == ConsentRequest.Status.OPEN:
        requests = requests.filter(status=status).order_by("received_on", "pk")
    else:
        status = "decided"
        requests = requests.exclude(status=ConsentRequest.Status.OPEN).order_by(
            "-decided_at", "-pk"
        )
    with transaction.atomic():
        found = list(requests[:QUEUE_MAX])
        audit_record(
            actor=actor,
            action=Action.CASE_VIEW,
            patient_id=None,
            outcome="success",
            reason=decision.reason,
            detail={"list": "unhide-requests", "status": status, "shown": len(found)},
        )
    return [_request_row(r) for r in found]


@dataclass(frozen=True)
class RequestDetail:
    row: RequestRow
    nhs_number: str
    consent_state: str  # the record's state now
    consent_state_label: str
    recorded_by: str
    decided_by: str
    decision_note: str
    consent_version: int | None


def unhide_request(*, actor: Actor, request_id: int) -> RequestDetail:
    """One unhide request with the patient's NHS number and the record's state now:
    audited in the patient's trail."""
    patient_id = (
        ConsentRequest.objects.filter(pk=request_id, kind=ConsentRequest.Kind.UNHIDE)
        .values_list("patient_id", flat=True)
        .first()
    )
    if patient_id is None:
        raise NotFound(REQUEST_NOT_FOUND)
    decision = access_checked(actor=actor, action=Action.CASE_VIEW, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(REQUEST_NOT_FOUND)
    with transaction.atomic():
        request = ConsentRequest.objects.get(pk=request_id)
        state = consent_state_for(patient_id=patient_id)
        audit_record(
            actor=actor,
            action=Action.CASE_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"request_id": request.pk},
        )
    names = _names([request.recorded_by, request.decided_by])
    return RequestDetail(
        row=_request_row(request),
        nhs_number=_nhs_number(patient_id),
        consent_state=str(state),
        consent_state_label=STATE_WORDS[state],
        recorded_by=names.get(request.recorded_by, ""),
        decided_by=names.get(request.decided_by, ""),
        decision_note=request.decision_note,
        consent_version=request.consent_version,
    )


@dataclass(frozen=True)
class DeletionRow:
    patient_id: uuid.UUID
    requested_at: datetime
    version: int


@dataclass(frozen=True)
class Deletions:
    waiting: list[DeletionRow]
    decided: list[RequestRow]


def deletion_requests(*, actor: Actor) -> Deletions:
    """Records whose latest consent version is "deletion requested" (the oldest request
    first), in one query; and the latest decided deletion requests."""
    decision = access_checked(actor=actor, action=Action.CASE_VIEW, patient_id=None)
    if not decision.allowed:
        raise NotFound(DELETION_NOT_FOUND)
    latest = (
        ConsentRecord.objects.filter(patient_id=OuterRef("patient_id"))
        .order_by("-version")
        .values("version")[:1]
    )
    with transaction.atomic():
        waiting = [
            DeletionRow(
                patient_id=r["patient_id"], requested_at=r["recorded_at"], version=r["version"]
            )
            for r in ConsentRecord.objects.filter(
                state=ConsentState.DELETION_REQUESTED, version=Subquery(latest)
            )
            .order_by("recorded_at", "patient_id")
            .values("patient_id", "recorded_at", "version")[:QUEUE_MAX]
        ]
        decided = list(
            ConsentRequest.objects.filter(kind=ConsentRequest.Kind.DELETION).order_by(
                "-decided_at", "-pk"
            )[:QUEUE_MAX]
        )
        audit_record(
            actor=actor,
            action=Action.CASE_VIEW,
            patient_id=None,
            outcome="success",
            reason=decision.reason,
            detail={"list": "deletion-requests", "shown": len(waiting), "decided": len(decided)},
        )
    return Deletions(waiting=waiting, decided=[_request_row(r) for r in decided])


@dataclass(frozen=True)
class DeletionDetail:
    patient_id: uuid.UUID
    nhs_number: str
    waiting: bool
    requested_at: datetime | None
    refusal_state_label: str  # where refusing returns the record
    consent_state_label: str
    decided: RequestDetail | None


def deletion_request(*, actor: Actor, patient_id: uuid.UUID) -> DeletionDetail:
    """A record waiting for a deletion decision, or the latest decision on one. Shows the
    NHS number: audited in the patient's trail."""
    # decided first, so that anyone else probing ids is refused in the trail
    decision = access_checked(actor=actor, action=Action.CASE_VIEW, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(DELETION_NOT_FOUND)
    if not ConsentRecord.objects.filter(patient_id=patient_id).exists():
        raise NotFound(DELETION_NOT_FOUND)
    with transaction.atomic():
        versions = list(
            ConsentRecord.objects.filter(patient_id=patient_id).order_by("-version")[:2]
        )
        waiting = versions[0].state == ConsentState.DELETION_REQUESTED
        latest_decision = (
            ConsentRequest.objects.filter(patient_id=patient_id, kind=ConsentRequest.Kind.DELETION)
            .order_by("-decided_at", "-pk")
            .first()
        )
        if not waiting and latest_decision is None:
            raise NotFound(DELETION_NOT_FOUND)
        audit_record(
            actor=actor,
            action=Action.CASE_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"deletion": True},
        )
    decided = None
    if latest_decision is not None and not waiting:
        names = _names([latest_decision.decided_by])
        decided = RequestDetail(
            row=_request_row(latest_decision),
            nhs_number="",
            consent_state=versions[0].state,
            consent_state_label=STATE_WORDS[versions[0].state],
            recorded_by=names.get(latest_decision.recorded_by, ""),
            decided_by=names.get(latest_decision.decided_by, ""),
            decision_note=latest_decision.decision_note,
            consent_version=latest_decision.consent_version,
        )
    return DeletionDetail(
        patient_id=patient_id,
        nhs_number=_nhs_number(patient_id),
        waiting=waiting,
        requested_at=versions[0].recorded_at if waiting else None,
        refusal_state_label=STATE_WORDS[deletion_refusal_state(versions)] if waiting else "",
        consent_state_label=STATE_WORDS[versions[0].state],
        decided=decided,
    )


def unhide_request_form(*, actor: Actor) -> None:
    """The empty form shows nothing about anyone, so an allowed look is not recorded; a
    refused one is (access_checked audits every refusal)."""
    decision = access_checked(actor=actor, action=Action.CONSENT_REQUEST_RECORD, patient_id=None)
    if not decision.allowed:
        raise NotFound(REQUEST_NOT_FOUND)
