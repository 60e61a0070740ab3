"""What the Communicator's pages read. Each read is decided by ``access.decide`` and
audited in the same transaction; opening a thread also moves its reader's side's read
marker (that is what reading it means).

Content is opened with the patient account's portal key, on the server, for the patient
and for their care team alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q

from healthspace.access.actors import Actor
from healthspace.access.policy import Action
from healthspace.access.roles import Role
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.clock import now
from healthspace.core.errors import NotFound
from healthspace.core.nhs_numbers import format_spaced
from healthspace.messaging import attachments as checks
from healthspace.messaging.content import paragraphs
from healthspace.messaging.guards import NOT_FOUND, decided, side_of, team_context
from healthspace.messaging.models import Attachment, Message, Side, Thread
from healthspace.records import fhir_map
from healthspace.records.importer import PATIENT_PURPOSE
from healthspace.records.models import Organisation, Patient
from healthspace.vault import services as vault
from healthspace.vault.crypto import KeyDestroyed, PatientCipher, VaultError

PAGE_SIZE = 25
TEAM_ROLES = (Role.CLINICIAN, Role.REGISTRATION_CLERK)
STAFF_SOMEONE = "A member of staff"


def subject_purpose(thread_id: uuid.UUID) -> str:
    return f"messaging:thread-subject:{thread_id}"


def body_purpose(message_id: uuid.UUID) -> str:
    return f"messaging:message-body:{message_id}"


def attachment_meta_purpose(attachment_id: uuid.UUID) -> str:
    return f"messaging:attachment-meta:{attachment_id}"


def attachment_data_purpose(attachment_id: uuid.UUID) -> str:
    return f"messaging:attachment-data:{attachment_id}"


def person_name(user: Any) -> str:
    """A member of staff as a patient reads them: their name, never their login."""
    if user is None:
        return STAFF_SOMEONE
    return " ".join(p for p in (user.first_name, user.last_name) if p) or STAFF_SOMEONE


def staff_name(user: Any) -> str:
    """A member of staff as colleagues read them: their name, or their login without one."""
    if user is None:
        return STAFF_SOMEONE
    name = " ".join(p for p in (user.first_name, user.last_name) if p)
    return name or user.get_username()


# --- what the pages get -----------------------------------------------------------------


@dataclass(frozen=True)
class PatientIdentity:
    """Who the patient is, for staff: enough to be sure, nothing clinical."""

    patient_id: uuid.UUID
    name: str
    nhs_number: str
    birth_date: date | None
    practice: str | None

    @property
    def nhs_number_spaced(self) -> str:
        return format_spaced(self.nhs_number)


@dataclass(frozen=True)
class ThreadRow:
    id: uuid.UUID
    subject: str | None  # None: the patient closed their account; the content is gone
    team_name: str
    status: str
    created_at: datetime
    last_message_at: datetime
    last_sender: str
    message_count: int
    unread: bool  # for the side reading the list
    waiting_since: datetime | None
    assigned_to_id: int | None = None
    assigned_name: str | None = None
    patient: PatientIdentity | None = None  # staff lists only

    @property
    def closed(self) -> bool:
        return self.status == Thread.Status.CLOSED


@dataclass(frozen=True)
class AttachmentInfo:
    id: uuid.UUID
    name: str
    content_type: str
    size: int

    @property
    def label(self) -> str:
        kind = checks.LABELS.get(checks.Kind(self.content_type), "File")
        return f"{kind}, {checks.size_words(self.size)}"


@dataclass(frozen=True)
class MessageRow:
    id: uuid.UUID
    sender: str  # Side
    sender_name: str
    mine: bool  # sent by the person reading (a patient: their own; staff: them personally)
    sent_at: datetime
    paragraphs: list[list[str]]
    attachments: tuple[AttachmentInfo, ...] = ()


@dataclass(frozen=True)
class ThreadView:
    thread: ThreadRow
    messages: list[MessageRow]
    readable: bool
    team_ods: str | None
    opened_by: str
    closed_at: datetime | None
    closed_by: str
    closed_by_name: str | None
    closed_by_me: bool
    other_side_read_at: datetime | None  # when the other side last opened the thread
    patient: PatientIdentity | None = None


@dataclass(frozen=True)
class AttachmentFile:
    name: str
    content_type: str
    data: bytes


class InboxView(StrEnum):
    AWAITING = "awaiting"
    UNREAD = "unread"
    MINE = "mine"
    UNASSIGNED = "unassigned"
    OPEN = "open"
    CLOSED = "closed"


INBOX_LABELS: dict[InboxView, str] = {
    InboxView.AWAITING: "Awaiting reply",
    InboxView.UNREAD: "Unread",
    InboxView.MINE: "Assigned to you",
    InboxView.UNASSIGNED: "Unassigned",
    InboxView.OPEN: "All open",
    InboxView.CLOSED: "Closed",
}


@dataclass(frozen=True)
class Inbox:
    view: InboxView
    team_name: str
    counts: dict[str, int]
    rows: list[ThreadRow]
    page: int
    pages: int


@dataclass(frozen=True)
class PatientThreads:
    rows: list[ThreadRow]
    unread: int
    page: int
    pages: int
    practice: str | None = None


@dataclass(frozen=True)
class Colleague:
    user_id: int
    name: str


# --- the patient's side -----------------------------------------------------------------


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


def _cipher_or_none(user_id: int) -> PatientCipher | None:
    try:
        return portal_cipher_for(user_id=user_id)
    except KeyDestroyed:
        return None


def _subject(cipher: PatientCipher | None, thread: Thread) -> str | None:
    if cipher is None:
        return None
    return cipher.open_json(thread.subject, purpose=subject_purpose(thread.id))["subject"]


def threads_for_patient(*, actor: Actor, user_id: int, page: int = 1) -> PatientThreads:
    """The patient's conversations, the latest first; unread ones marked."""
    decision = access_checked(actor=actor, action=Action.MESSAGE_VIEW, patient_id=actor.patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    with transaction.atomic():
        mine = Thread.objects.filter(patient_id=actor.patient_id, owner_id=user_id)
        totals = mine.aggregate(
            total=Count("id"), unread=Count("id", filter=Q(unread_by_patient=True))
        )
        page = min(max(page, 1), _pages(totals["total"], PAGE_SIZE))
        threads = list(
            mine.select_related("team")
            .defer("team__identifier_system", "team__identifier_value")
            .order_by("-last_message_at", "id")[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        )
        practice = (
            Patient.objects.filter(pk=actor.patient_id)
            .values_list("registered_practice__name", flat=True)
            .first()
        )
        cipher = _cipher_or_none(user_id) if threads else None
        audit_record(
            actor=actor,
            action=Action.MESSAGE_VIEW,
            patient_id=actor.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"threads": len(threads), "page": page},
        )
    rows = [
        ThreadRow(
            id=t.id,
            subject=_subject(cipher, t),
            team_name=t.team.name,
            status=t.status,
            created_at=t.created_at,
            last_message_at=t.last_message_at,
            last_sender=t.last_sender,
            message_count=t.message_count,
            unread=t.unread_by_patient,
            waiting_since=t.waiting_since,
        )
        for t in threads
    ]
    return PatientThreads(
        rows=rows,
        unread=totals["unread"],
        page=page,
        pages=_pages(totals["total"], PAGE_SIZE),
        practice=practice,
    )


def practice_for_new_thread(*, actor: Actor) -> str | None:
    """The name of the practice a new message goes to (the patient's registered
    practice), or None when the record shows none. Audited as a look at messaging."""
    decision = access_checked(actor=actor, action=Action.THREAD_OPEN, patient_id=actor.patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    with transaction.atomic():
        name = (
            Patient.objects.filter(pk=actor.patient_id)
            .values_list("registered_practice__name", flat=True)
            .first()
        )
        audit_record(
            actor=actor,
            action=Action.MESSAGE_VIEW,
            patient_id=actor.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"page": "new-thread"},
        )
    return name


def thread_for(*, actor: Actor, user_id: int, thread_id: uuid.UUID) -> ThreadView:
    """One conversation with its messages, for the patient or a member of their care team
    (the reader's side comes from who they are). Opening it marks it read for that side."""
    _route, decision = decided(
        actor=actor, action=Action.MESSAGE_VIEW, user_id=user_id, thread_id=thread_id
    )
    return _thread_view(actor=actor, user_id=user_id, reason=decision.reason, thread_id=thread_id)


def _identities(
    threads: Iterable[Thread], keys: dict[uuid.UUID, PatientCipher]
) -> dict[uuid.UUID, PatientIdentity]:
    """Who each thread's patient is. Names are sealed under the patient's SCR key (the
    caller loads all the keys at once); a deleted record's name is gone."""
    out: dict[uuid.UUID, PatientIdentity] = {}
    for t in threads:
        p = t.patient
        if p.id in out:
            continue
        name = None
        cipher = keys.get(p.id)
        if cipher is not None:
            try:
                name = fhir_map.human_name(cipher.open_json(p.resource, purpose=PATIENT_PURPOSE))
            except VaultError:
                name = None
        out[p.id] = PatientIdentity(
            patient_id=p.id,
            name=name or "Name not available",
            nhs_number=p.nhs_number,
            birth_date=p.birth_date,
            practice=p.registered_practice.name if p.registered_practice_id else None,
        )
    return out


def _thread_view(*, actor: Actor, user_id: int, reason: str, thread_id: uuid.UUID) -> ThreadView:
    side = side_of(actor)
    at = now()
    with transaction.atomic():
        thread = (
            Thread.objects.select_related(
                "team", "assigned_to", "closed_by_user", "patient__registered_practice"
            )
            .filter(pk=thread_id)
            .first()
        )
        if thread is None:  # removed since the route was read
            raise NotFound(NOT_FOUND)
        messages = list(
            Message.objects.filter(thread_id=thread_id)
            .select_related("sender_user")
            .only(
                "id",
                "sender",
                "sender_user_id",
                "body",
                "sent_at",
                "sender_user__first_name",
                "sender_user__last_name",
                "sender_user__username",
            )
            .order_by("sent_at", "id")
        )
        files = list(
            Attachment.objects.filter(thread_id=thread_id)
            .only("id", "message_id", "meta")
            .order_by("created_at", "id")
        )
        cipher = _cipher_or_none(thread.owner_id)
        identity = None
        if side == Side.TEAM:
            keys = vault.ciphers_for(patient_ids=[thread.patient_id])
            identity = _identities([thread], keys)[thread.patient_id]
        if side == Side.PATIENT:
            Thread.objects.filter(pk=thread_id).update(unread_by_patient=False, patient_read_at=at)
        else:
            Thread.objects.filter(pk=thread_id).update(unread_by_team=False, team_read_at=at)
        audit_record(
            actor=actor,
            action=Action.MESSAGE_VIEW,
            patient_id=thread.patient_id,
            outcome="success",
            reason=reason,
            detail={"thread": str(thread_id), "messages": len(messages), "attachments": len(files)},
        )
    by_message: dict[uuid.UUID, list[AttachmentInfo]] = {}
    if cipher is not None:
        for f in files:
            meta = cipher.open_json(f.meta, purpose=attachment_meta_purpose(f.id))
            by_message.setdefault(f.message_id, []).append(
                AttachmentInfo(f.id, meta["name"], meta["content_type"], meta["size"])
            )
    rows = []
    for m in messages:
        if m.sender == Side.PATIENT:
            name = "You" if side == Side.PATIENT else f"{identity.name} (patient)"
            mine = side == Side.PATIENT
        else:
            mine = side == Side.TEAM and m.sender_user_id == user_id
            name = "You" if mine else staff_name(m.sender_user)
            if side == Side.PATIENT:
                name = f"{person_name(m.sender_user)}, {thread.team.name}"
        body = (
            cipher.open_json(m.body, purpose=body_purpose(m.id))["body"]
            if cipher is not None
            else ""
        )
        rows.append(
            MessageRow(
                id=m.id,
                sender=m.sender,
                sender_name=name,
                mine=mine,
                sent_at=m.sent_at,
                paragraphs=paragraphs(body),
                attachments=tuple(by_message.get(m.id, ())),
            )
        )
    row = ThreadRow(
        id=thread.id,
        subject=_subject(cipher, thread),
        team_name=thread.team.name,
        status=thread.status,
        created_at=thread.created_at,
        last_message_at=thread.last_message_at,
        last_sender=thread.last_sender,
        message_count=thread.message_count,
        unread=False,
        waiting_since=thread.waiting_since,
        assigned_to_id=thread.assigned_to_id,
        assigned_name=staff_name(thread.assigned_to) if thread.assigned_to_id else None,
        patient=identity,
    )
    closed_by_name = None
    if thread.closed_by == Side.TEAM:
        named = person_name if side == Side.PATIENT else staff_name
        closed_by_name = named(thread.closed_by_user)
    return ThreadView(
        thread=row,
        messages=rows,
        readable=cipher is not None,
        team_ods=thread.team.ods_code,
        opened_by=thread.opened_by,
        closed_at=thread.closed_at,
        closed_by=thread.closed_by,
        closed_by_name=closed_by_name,
        closed_by_me=thread.closed_by == side
        and (side == Side.PATIENT or thread.closed_by_user_id == user_id),
        other_side_read_at=thread.team_read_at if side == Side.PATIENT else thread.patient_read_at,
        patient=identity,
    )


_VIEW_FILTERS: dict[InboxView, Q] = {
    InboxView.AWAITING: Q(status=Thread.Status.OPEN, waiting_since__isnull=False),
    InboxView.UNREAD: Q(status=Thread.Status.OPEN, unread_by_team=True),
    InboxView.UNASSIGNED: Q(status=Thread.Status.OPEN, assigned_to__isnull=True),
    InboxView.OPEN: Q(status=Thread.Status.OPEN),
    InboxView.CLOSED: Q(status=Thread.Status.CLOSED),
}


def _view_filter(view: InboxView, user_id: int) -> Q:
    if view == InboxView.MINE:
        return Q(status=Thread.Status.OPEN, assigned_to_id=user_id)
    return _VIEW_FILTERS[view]


def _ordering(view: InboxView) -> tuple[Any, ...]:
    from django.db.models import F

    if view == InboxView.CLOSED:
        return (F("closed_at").desc(nulls_last=True), "id")
    # the patient waiting longest first; then the conversations quiet the longest
    return (F("waiting_since").asc(nulls_last=True), "last_message_at", "id")


def inbox_counts(*, actor: Actor, user_id: int) -> dict[str, int]:
    """How many threads each triage view holds, in one query (for the inbox's tabs and
    the staff navigation). Counts only: no patient data, nothing to audit."""
    if not actor.organisation or not set(actor.roles) & set(TEAM_ROLES):
        return {str(v): 0 for v in InboxView}
    row = Thread.objects.filter(team__ods_code=actor.organisation).aggregate(
        **{str(v): Count("id", filter=_view_filter(v, user_id)) for v in InboxView}
    )
    return {k: int(v or 0) for k, v in row.items()}


def team_inbox(*, actor: Actor, user_id: int, view: InboxView, page: int = 1) -> Inbox:
    """The team's threads in one triage view, the patient waiting longest first. A
    constant number of queries whatever the number of threads: one for the counts, one
    for the page of threads (with patients, accounts and assignees joined), one for all
    their keys, and the audit event (in the member of staff's own trail, with the ids of
    the threads they were shown)."""
    decision = access_checked(
        actor=actor,
        action=Action.MESSAGE_VIEW,
        patient_id=None,
        context=team_context(actor, actor.organisation),
    )
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    with transaction.atomic():
        counts = inbox_counts(actor=actor, user_id=user_id)
        total = counts[str(view)]
        page = min(max(page, 1), _pages(total, PAGE_SIZE))
        threads = list(
            Thread.objects.filter(team__ods_code=actor.organisation)
            .filter(_view_filter(view, user_id))
            .select_related("team", "assigned_to", "patient__registered_practice", "owner__account")
            .order_by(*_ordering(view))[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        )
        team_name = (
            threads[0].team.name
            if threads
            else Organisation.objects.filter(ods_code=actor.organisation)
            .values_list("name", flat=True)
            .first()
        ) or actor.organisation
        subjects = {t.owner.account.portal_subject: t.owner_id for t in threads}
        keys = vault.ciphers_for(patient_ids=[*subjects, *{t.patient_id for t in threads}])
        audit_record(
            actor=actor,
            action=Action.MESSAGE_VIEW,
            patient_id=None,
            outcome="success",
            reason=decision.reason,
            detail={"inbox": str(view), "page": page, "threads": [str(t.id) for t in threads]},
        )
    identities = _identities(threads, keys)
    rows = [
        ThreadRow(
            id=t.id,
            subject=_subject(keys.get(t.owner.account.portal_subject), t),
            team_name=t.team.name,
            status=t.status,
            created_at=t.created_at,
            last_message_at=t.last_message_at,
            last_sender=t.last_sender,
            message_count=t.message_count,
            unread=t.unread_by_team,
            waiting_since=t.waiting_since,
            assigned_to_id=t.assigned_to_id,
            assigned_name=staff_name(t.assigned_to) if t.assigned_to_id else None,
            patient=identities[t.patient_id],
        )
        for t in threads
    ]
    return Inbox(
        view=view,
        team_name=team_name,
        counts=counts,
        rows=rows,
        page=page,
        pages=_pages(total, PAGE_SIZE),
    )


def team_colleagues(*, actor: Actor) -> list[Colleague]:
    """Who a thread can be assigned to: active clinicians and registration clerks of the
    member of staff's own organisation (staff, not patient data)."""
    if not actor.organisation:
        return []
    users = (
        get_user_model()
        .objects.filter(
            is_active=True,
            account__organisation__ods_code=actor.organisation,
            groups__name__in=[str(r) for r in TEAM_ROLES],
        )
        .distinct()
        .order_by("last_name", "first_name", "pk")
        .only("pk", "username", "first_name", "last_name")
    )
    return [Colleague(u.pk, staff_name(u)) for u in users]


# --- attachments ------------------------------------------------------------------------


def attachment_file(
    *, actor: Actor, user_id: int, thread_id: uuid.UUID, attachment_id: uuid.UUID
) -> AttachmentFile:
    """One attachment's bytes, for the patient or their care team: decided on the thread,
    audited with the download."""
    route, decision = decided(
        actor=actor, action=Action.MESSAGE_VIEW, user_id=user_id, thread_id=thread_id
    )
    with transaction.atomic():
        row = Attachment.objects.filter(pk=attachment_id, thread_id=thread_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        cipher = _cipher_or_none(route.owner_id)
        if cipher is None:
            raise NotFound(NOT_FOUND)
        audit_record(
            actor=actor,
            action=Action.MESSAGE_VIEW,
            patient_id=route.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"thread": str(thread_id), "attachment": str(attachment_id), "download": True},
        )
    meta = cipher.open_json(row.meta, purpose=attachment_meta_purpose(row.id))
    data = cipher.open(row.data, purpose=attachment_data_purpose(row.id))
    return AttachmentFile(name=meta["name"], content_type=meta["content_type"], data=data)
