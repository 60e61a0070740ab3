"""Reads for corrections: the patient's own requests, the item they are about to report,
and the practice's queue. Each asks ``access.decide`` and audits in the same transaction
as the read; the practice's request page is ``services.correction_review`` (its first
look opens the request), built with ``review_of`` below.

The practice's queue shows no patient identifiers and is audited once in the clinician's
own trail; everything that shows who the patient is or what they wrote is decided and
audited in that patient's trail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import ConsentRecord
from healthspace.core.clock import now
from healthspace.core.errors import NotFound, Refused
from healthspace.core.nhs_numbers import format_spaced
from healthspace.corrections import workflow
from healthspace.corrections.models import CorrectionRequest
from healthspace.corrections.routing import practice_for
from healthspace.corrections.workflow import Status
from healthspace.records import fhir_map
from healthspace.records.amend import AmendOptions, amend_options
from healthspace.records.importer import PATIENT_PURPOSE, item_purpose
from healthspace.records.models import Origin, Patient, ScrItem, Section
from healthspace.vault import services as vault

NOT_FOUND_MESSAGE = "There is no request here that you can see."
ITEM_NOT_FOUND = "There is no item in your record with that number."
OWN_MAX = 200
QUEUE_MAX = 200
QUEUE_FILTERS = ("open", *Status.values)


def reference(request_id: uuid.UUID) -> str:
    """The short reference people quote on the phone ("3F2A 9C1B")."""
    text = request_id.hex[:8].upper()
    return f"{text[:4]} {text[4:]}"


def section_label(key: str) -> str:
    try:
        return str(Section(key).label)
    except ValueError:
        return key


@dataclass(frozen=True)
class Words:
    wrong: str
    should_say: str
    item_title: str  # what the item said when the patient asked


@dataclass(frozen=True)
class Answer:
    outcome: str  # amended | kept
    explanation: str
    by: str
    changes: tuple[str, ...]


def _words(cipher: Any, request: CorrectionRequest) -> Words:
    data = cipher.open_json(request.words, purpose=request.words_purpose)
    return Words(data["wrong"], data.get("should_say", ""), data.get("item_title", ""))


def _answer(cipher: Any, request: CorrectionRequest) -> Answer | None:
    if not request.answer:
        return None
    data = cipher.open_json(request.answer, purpose=request.answer_purpose)
    return Answer(
        data["outcome"], data["explanation"], data.get("by", ""), tuple(data.get("changes", ()))
    )


# --- the patient ------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnRequest:
    id: uuid.UUID
    reference: str
    status: str
    status_label: str
    section_label: str
    practice: str
    submitted_at: datetime
    decided_at: datetime | None
    withdrawn_at: datetime | None
    words: Words
    answer: Answer | None = None

    @property
    def open(self) -> bool:
        return self.status in workflow.OPEN_STATUSES


def _own(actor: Actor, action: Action) -> tuple[uuid.UUID, str]:
    patient_id = actor.patient_id
    decision = access_checked(actor=actor, action=action, patient_id=patient_id)
    if not decision.allowed or patient_id is None:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    return patient_id, decision.reason


def _own_request(cipher: Any, request: CorrectionRequest, *, answer: bool) -> OwnRequest:
    return OwnRequest(
        id=request.id,
        reference=reference(request.id),
        status=request.status,
        status_label=Status(request.status).label,
        section_label=section_label(request.section),
        practice=request.practice.name,
        submitted_at=request.submitted_at,
        decided_at=request.decided_at,
        withdrawn_at=request.withdrawn_at,
        words=_words(cipher, request),
        answer=_answer(cipher, request) if answer else None,
    )


def own_corrections(*, actor: Actor) -> list[OwnRequest]:
    """The signed-in patient's requests, newest first, in a constant number of queries."""
    patient_id, reason = _own(actor, Action.CORRECTION_VIEW)
    with transaction.atomic():
        found = list(
            CorrectionRequest.objects.filter(patient_id=patient_id)
            .select_related("practice")
            .defer("answer")
            .order_by("-submitted_at", "-pk")[:OWN_MAX]
        )
        cipher = vault.cipher_for(patient_id=patient_id) if found else None
        audit_record(
            actor=actor,
            action=Action.CORRECTION_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"list": "own", "shown": len(found)},
        )
    return [_own_request(cipher, r, answer=False) for r in found]


def own_correction(*, actor: Actor, request_id: uuid.UUID) -> OwnRequest:
    """One of the patient's own requests with the practice's answer; another patient's
    id is "not found", as a missing one is."""
    patient_id, reason = _own(actor, Action.CORRECTION_VIEW)
    with transaction.atomic():
        request = (
            CorrectionRequest.objects.filter(pk=request_id, patient_id=patient_id)
            .select_related("practice")
            .first()
        )
        if request is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        cipher = vault.cipher_for(patient_id=patient_id)
        audit_record(
            actor=actor,
            action=Action.CORRECTION_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"request": str(request.id)},
        )
    return _own_request(cipher, request, answer=True)


@dataclass(frozen=True)
class ItemNow:
    """An item as it is now, as a person reads it."""

    id: int
    resource_type: str
    section: str
    section_label: str
    view: fhir_map.ItemView
    title: str
    recorded_at: datetime | None
    author: str | None
    organisation: str | None
    source: str
    version: int
    patient_recorded: bool
    entered_in_error: bool
    amendment: dict[str, Any] | None


def _item_now(cipher: Any, item: ScrItem) -> tuple[ItemNow, dict[str, Any]]:
    """The item in words, and its FHIR resource."""
    content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
    resource = content["resource"]
    view = fhir_map.describe(resource)
    title = view.title
    if content.get("medication") and title.endswith("(no description recorded)"):
        title = view.title = str(content["medication"])
    shown = ItemNow(
        id=item.pk,
        resource_type=item.resource_type,
        section=item.section,
        section_label=section_label(item.section),
        view=view,
        title=title,
        recorded_at=item.recorded_at,
        author=content.get("author"),
        organisation=content.get("organisation"),
        source=fhir_map.source_label(item.source_system),
        version=item.version,
        patient_recorded=item.origin == Origin.PATIENT,
        entered_in_error=fhir_map.entered_in_error(resource),
        amendment=content.get("amendment"),
    )
    return shown, resource


@dataclass(frozen=True)
class ReportTarget:
    """What the patient is about to report, and where it would go."""

    item: ItemNow
    practice: str | None  # None: nowhere to send it
    open_request: uuid.UUID | None


def report_target(*, actor: Actor, item_id: int) -> ReportTarget:
    """One item of the patient's own SCR (a read of their record, audited), with the
    practice a request would go to. Items entered in error are not shown to anyone, so
    they are "not found" here too."""
    patient_id, reason = _own(actor, Action.VIEW_SCR)
    with transaction.atomic():
        item = ScrItem.objects.filter(pk=item_id, patient_id=patient_id).first()
        if item is None:
            raise NotFound(ITEM_NOT_FOUND)
        cipher = vault.cipher_for(patient_id=patient_id)
        now_item, resource = _item_now(cipher, item)
        if now_item.entered_in_error:
            raise NotFound(ITEM_NOT_FOUND)
        open_request = (
            CorrectionRequest.objects.filter(item_id=item.pk, status__in=workflow.OPEN_STATUSES)
            .values_list("id", flat=True)
            .first()
        )
        practice = None
        if not now_item.patient_recorded:
            patient = Patient.objects.select_related("registered_practice").get(pk=patient_id)
            found = practice_for(resource=resource, patient=patient)
            practice = found.name if found is not None else None
        audit_record(
            actor=actor,
            action=Action.VIEW_SCR,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"page": "correction", "item": item.pk, "sections": [item.section]},
        )
    return ReportTarget(now_item, practice, open_request)


# --- the practice -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    id: uuid.UUID
    reference: str
    section_label: str
    status: str
    status_label: str
    submitted_at: datetime
    decided_at: datetime | None

    @property
    def waiting_days(self) -> int:
        return (now() - self.submitted_at).days


@dataclass(frozen=True)
class PracticeQueue:
    rows: list[QueueRow]
    counts: dict[str, int]  # status -> requests
    status: str  # the filter: "open" or a status
    more: bool  # more than QUEUE_MAX matched

    @property
    def open_count(self) -> int:
        return sum(self.counts.get(s, 0) for s in workflow.OPEN_STATUSES)


def practice_queue(*, actor: Actor, status: str = "open") -> PracticeQueue:
    """The requests sent to the clinician's own practice: open ones oldest first (the
    longest waiting at the top); a closed status most recently answered first. Records
    since deleted are left out (there is nothing left to correct)."""
    # Every row is of the actor's own practice (the query says so), so the policy is
    # asked whether a clinician of a practice may read its queue.
    context = AccessContext(team_member=bool(actor.organisation))
    decision = access_checked(
        actor=actor, action=Action.CORRECTION_VIEW, patient_id=None, context=context
    )
    if not decision.allowed:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    status = status if status in QUEUE_FILTERS else "open"
    latest_consent = (
        ConsentRecord.objects.filter(patient_id=OuterRef("patient_id"))
        .order_by("-version")
        .values("state")[:1]
    )
    with transaction.atomic():
        mine = (
            CorrectionRequest.objects.filter(practice_ods=actor.organisation)
            # no consent record at all is implied consent (a NULL here)
            .annotate(consent=Coalesce(Subquery(latest_consent), Value(ConsentState.IMPLIED.value)))
            .exclude(consent=ConsentState.DELETED)
        )
        counts = {
            row["status"]: row["n"]
            for row in mine.values("status").annotate(n=Count("pk")).order_by()
        }
        if status == "open":
            chosen = mine.filter(status__in=workflow.OPEN_STATUSES).order_by("submitted_at", "pk")
        elif status in workflow.OPEN_STATUSES:
            chosen = mine.filter(status=status).order_by("submitted_at", "pk")
        else:
            chosen = mine.filter(status=status).order_by("-decided_at", "-withdrawn_at", "-pk")
        found = list(
            chosen.only("id", "section", "status", "submitted_at", "decided_at")[: QUEUE_MAX + 1]
        )
        audit_record(
            actor=actor,
            action=Action.CORRECTION_VIEW,
            patient_id=None,
            outcome="success",
            reason=decision.reason,
            detail={"list": "corrections", "status": status, "shown": min(len(found), QUEUE_MAX)},
        )
    return PracticeQueue(
        rows=[
            QueueRow(
                id=r.id,
                reference=reference(r.id),
                section_label=section_label(r.section),
                status=r.status,
                status_label=STAFF_STATUS_WORDS[r.status],
                submitted_at=r.submitted_at,
                decided_at=r.decided_at,
            )
            for r in found[:QUEUE_MAX]
        ],
        counts={s: counts.get(s, 0) for s in Status.values},
        status=status,
        more=len(found) > QUEUE_MAX,
    )


# How the statuses read to staff (the patient's words are Status.label).
STAFF_STATUS_WORDS: dict[str, str] = {
    Status.SUBMITTED: "New",
    Status.IN_REVIEW: "In review",
    Status.AMENDED: "Amended",
    Status.KEPT: "Kept, with an explanation",
    Status.WITHDRAWN: "Withdrawn by the patient",
}


@dataclass(frozen=True)
class PatientBanner:
    name: str
    nhs_number: str
    birth_date: date | None
    practice: str | None

    @property
    def nhs_number_spaced(self) -> str:
        return format_spaced(self.nhs_number)


@dataclass(frozen=True)
class Review:
    """The practice's page of one request."""

    id: uuid.UUID
    reference: str
    status: str
    status_label: str
    practice: str
    submitted_at: datetime
    reviewed_at: datetime | None
    decided_at: datetime | None
    withdrawn_at: datetime | None
    item_version: int  # the version the patient read
    patient: PatientBanner
    words: Words
    answer: Answer | None
    item: ItemNow | None  # None: no longer in the record
    options: AmendOptions = field(default_factory=lambda: AmendOptions(False, (), False))

    @property
    def may_decide(self) -> bool:
        return self.status == Status.IN_REVIEW

    @property
    def item_changed(self) -> bool:
        return self.item is not None and self.item.version != self.item_version


def review_of(request: CorrectionRequest) -> Review:
    """Build the practice's view of a request the caller already decided on (inside its
    transaction): the patient banner, the item now, the words and any answer."""
    cipher = vault.cipher_for(patient_id=request.patient_id)
    patient = (
        Patient.objects.select_related("registered_practice")
        .only("id", "nhs_number", "birth_date", "resource", "registered_practice__name")
        .get(pk=request.patient_id)
    )
    resource = cipher.open_json(patient.resource, purpose=PATIENT_PURPOSE)
    item = (
        ScrItem.objects.filter(pk=request.item_id, patient_id=request.patient_id).first()
        if request.item_id
        else None
    )
    item_now = _item_now(cipher, item)[0] if item is not None else None
    practice = patient.registered_practice
    return Review(
        id=request.id,
        reference=reference(request.id),
        status=request.status,
        status_label=STAFF_STATUS_WORDS[request.status],
        practice=request.practice.name,
        submitted_at=request.submitted_at,
        reviewed_at=request.reviewed_at,
        decided_at=request.decided_at,
        withdrawn_at=request.withdrawn_at,
        item_version=request.item_version,
        patient=PatientBanner(
            name=fhir_map.human_name(resource) or "Name not recorded",
            nhs_number=patient.nhs_number,
            birth_date=patient.birth_date,
            practice=practice.name if practice else None,
        ),
        words=_words(cipher, request),
        answer=_answer(cipher, request),
        item=item_now,
        options=amend_options(item.resource_type)
        if item is not None
        else AmendOptions(False, (), False),
    )
