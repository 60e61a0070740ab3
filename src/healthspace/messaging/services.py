"""What changes a conversation: opening one, sending a message (with an attachment),
assigning, closing and reopening. Each service asks ``access.decide`` first and writes its
audit event in the same transaction as the change; a message from the care team queues
the patient's "You have a new message" email in that transaction too.

The thread row is locked (``select_for_update``) for every change, so a message cannot
slip into a thread being closed at the same moment, and the read markers and "waiting
since" stay consistent with the messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action
from healthspace.accounts.models import PatientLink
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.messaging.attachments import CheckedAttachment
from healthspace.messaging.content import body_clean, subject_clean
from healthspace.messaging.guards import NOT_FOUND, decided, side_of
from healthspace.messaging.models import Attachment, Message, Side, Thread
from healthspace.messaging.selectors import (
    TEAM_ROLES,
    attachment_data_purpose,
    attachment_meta_purpose,
    body_purpose,
    subject_purpose,
)
from healthspace.notify.notices import Notice
from healthspace.notify.services import notice_send
from healthspace.records.models import Organisation, Patient
from healthspace.vault.crypto import KeyDestroyed, PatientCipher

THREAD_CLOSED = "This conversation is closed. Reopen it to send a message."
THREAD_GONE = "This conversation can no longer be used: the patient closed their account."
NO_PRACTICE = (
    "Your record does not show a GP practice, so you cannot send a message here. "
    "Contact your GP practice another way."
)
NO_ACCOUNT = (
    "This patient does not have a HealthSpace account, so you cannot message them here. "
    "Contact them another way, for example by phone or letter."
)
NO_TEAM = "Your account is not linked to an organisation, so you cannot start a conversation."
NOT_A_COLLEAGUE = "Choose someone in your team"


class NoAccount(InvalidInput):
    """The patient has no HealthSpace account to message."""


@dataclass(frozen=True)
class Sent:
    thread_id: uuid.UUID
    message_id: uuid.UUID


def _cipher(owner_id: int) -> PatientCipher:
    try:
        return portal_cipher_for(user_id=owner_id)
    except (KeyDestroyed, NotFound):
        raise InvalidInput(THREAD_GONE) from None


def _add_message(
    *,
    thread: Thread,
    cipher: PatientCipher,
    side: Side,
    user_id: int,
    body: str,
    attachment: CheckedAttachment | None,
) -> tuple[Message, Attachment | None]:
    """Seal and store one message (and its attachment), and move the thread's queue
    fields: who replies next, how long the patient has been waiting, what is unread."""
    at = now()
    message = Message(thread=thread, patient_id=thread.patient_id, sender=side, sent_at=at)
    message.sender_user_id = user_id
    message.body = cipher.seal_json({"body": body}, purpose=body_purpose(message.id))
    message.save(force_insert=True)
    stored = None
    if attachment is not None:
        stored = Attachment(
            message=message, thread=thread, patient_id=thread.patient_id, created_at=at
        )
        stored.meta = cipher.seal_json(
            {
                "name": attachment.name,
                "content_type": attachment.content_type,
                "size": attachment.size,
            },
            purpose=attachment_meta_purpose(stored.id),
        )
        stored.data = cipher.seal(attachment.data, purpose=attachment_data_purpose(stored.id))
        stored.save(force_insert=True)
    thread.last_message_at = at
    thread.last_sender = side
    thread.message_count += 1
    if side == Side.PATIENT:
        thread.waiting_since = thread.waiting_since or at
        thread.unread_by_team = True
    else:
        thread.waiting_since = None
        thread.unread_by_patient = True
    return message, stored


def _notify_patient(thread: Thread, *, was_unread: bool) -> None:
    """ "You have a new message in HealthSpace", and nothing else (notify.notices). Once
    per unread spell: a second reply before the patient has looked sends no second email."""
    if not was_unread:
        notice_send(user_id=thread.owner_id, notice=Notice.NEW_MESSAGE)


def _detail(thread: Thread, message: Message, stored: Attachment | None) -> dict:
    return {
        "thread": str(thread.id),
        "message": str(message.id),
        "attachments": 1 if stored else 0,
    }


def thread_open_by_patient(
    *,
    actor: Actor,
    user_id: int,
    subject: str,
    body: str,
    attachment: CheckedAttachment | None = None,
) -> Sent:
    """A new conversation with the patient's registered GP practice."""
    subject, body = subject_clean(subject), body_clean(body)
    decision = access_checked(actor=actor, action=Action.THREAD_OPEN, patient_id=actor.patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    with transaction.atomic():
        patient = (
            Patient.objects.filter(pk=actor.patient_id).only("id", "registered_practice_id").first()
        )
        if patient is None:
            raise NotFound(NOT_FOUND)
        if patient.registered_practice_id is None:
            raise InvalidInput(NO_PRACTICE)
        return _open(
            actor=actor,
            reason=decision.reason,
            patient_id=patient.id,
            owner_id=user_id,
            team_id=patient.registered_practice_id,
            side=Side.PATIENT,
            user_id=user_id,
            subject=subject,
            body=body,
            attachment=attachment,
        )


def thread_open_by_staff(
    *,
    actor: Actor,
    user_id: int,
    patient_id: uuid.UUID,
    context: AccessContext,
    subject: str,
    body: str,
    attachment: CheckedAttachment | None = None,
) -> Sent:
    """A clinician who cares for the patient starts a conversation; the thread is their
    own team's. The patient must have a HealthSpace account (NoAccount otherwise)."""
    subject, body = subject_clean(subject), body_clean(body)
    decision = access_checked(
        actor=actor, action=Action.THREAD_OPEN, patient_id=patient_id, context=context
    )
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    owner_id = patient_account(patient_id=patient_id)
    if owner_id is None:
        raise NoAccount(NO_ACCOUNT)
    team_id = (
        Organisation.objects.filter(ods_code=actor.organisation)
        .values_list("pk", flat=True)
        .first()
        if actor.organisation
        else None
    )
    if team_id is None:
        raise InvalidInput(NO_TEAM)
    with transaction.atomic():
        return _open(
            actor=actor,
            reason=decision.reason,
            patient_id=patient_id,
            owner_id=owner_id,
            team_id=team_id,
            side=Side.TEAM,
            user_id=user_id,
            subject=subject,
            body=body,
            attachment=attachment,
        )


def patient_account(*, patient_id: uuid.UUID) -> int | None:
    """The user id of the patient's HealthSpace account (whose key seals the messages)."""
    return (
        PatientLink.objects.filter(patient_id=patient_id).values_list("user_id", flat=True).first()
    )


def _open(
    *,
    actor: Actor,
    reason: str,
    patient_id: uuid.UUID,
    owner_id: int,
    team_id: int,
    side: Side,
    user_id: int,
    subject: str,
    body: str,
    attachment: CheckedAttachment | None,
) -> Sent:
    cipher = _cipher(owner_id)
    at = now()
    thread = Thread(
        patient_id=patient_id,
        owner_id=owner_id,
        team_id=team_id,
        opened_by=side,
        opened_by_user_id=user_id,
        created_at=at,
        last_message_at=at,
        last_sender=side,
    )
    thread.subject = cipher.seal_json({"subject": subject}, purpose=subject_purpose(thread.id))
    thread.save(force_insert=True)
    message, stored = _add_message(
        thread=thread, cipher=cipher, side=side, user_id=user_id, body=body, attachment=attachment
    )
    thread.save()
    audit_record(
        actor=actor,
        action=Action.THREAD_OPEN,
        patient_id=patient_id,
        outcome="success",
        reason=reason,
        detail=_detail(thread, message, stored),
    )
    if side == Side.TEAM:
        _notify_patient(thread, was_unread=False)
    return Sent(thread.id, message.id)


def message_send(
    *,
    actor: Actor,
    user_id: int,
    thread_id: uuid.UUID,
    body: str,
    attachment: CheckedAttachment | None = None,
) -> Sent:
    """A reply, from the patient or from their care team (the side is who the actor is)."""
    body = body_clean(body)
    _route, decision = decided(
        actor=actor, action=Action.MESSAGE_SEND, user_id=user_id, thread_id=thread_id
    )
    side = side_of(actor)
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread_id)
        if thread.status == Thread.Status.CLOSED:
            raise InvalidInput(THREAD_CLOSED)
        cipher = _cipher(thread.owner_id)
        was_unread = thread.unread_by_patient
        message, stored = _add_message(
            thread=thread,
            cipher=cipher,
            side=side,
            user_id=user_id,
            body=body,
            attachment=attachment,
        )
        if side == Side.PATIENT:
            thread.unread_by_patient = False  # writing in it, they have read it
            thread.patient_read_at = message.sent_at
        else:
            thread.unread_by_team = False
            thread.team_read_at = message.sent_at
        thread.save()
        audit_record(
            actor=actor,
            action=Action.MESSAGE_SEND,
            patient_id=thread.patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(thread, message, stored),
        )
        if side == Side.TEAM:
            _notify_patient(thread, was_unread=was_unread)
    return Sent(thread.id, message.id)


def thread_assign(
    *, actor: Actor, user_id: int, thread_id: uuid.UUID, assignee_id: int | None
) -> None:
    """Give the thread to someone in the team (or to nobody). Only the thread's team."""
    _route, decision = decided(
        actor=actor, action=Action.THREAD_MANAGE, user_id=user_id, thread_id=thread_id
    )
    if actor.kind != "staff":
        raise NotFound(NOT_FOUND)  # patients close and reopen; assignment is the team's
    with transaction.atomic():
        thread = Thread.objects.select_for_update().select_related("team").get(pk=thread_id)
        if assignee_id is not None and not _works_in(assignee_id, thread.team.ods_code):
            raise InvalidInput(NOT_A_COLLEAGUE)
        if thread.assigned_to_id == assignee_id:
            return
        thread.assigned_to_id = assignee_id
        thread.assigned_at = now() if assignee_id is not None else None
        thread.save(update_fields=["assigned_to", "assigned_at"])
        audit_record(
            actor=actor,
            action=Action.THREAD_MANAGE,
            patient_id=thread.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={
                "thread": str(thread.id),
                "change": "assign",
                "assignee": f"user:{assignee_id}" if assignee_id is not None else None,
            },
        )


def _works_in(user_id: int, ods: str | None) -> bool:
    if not ods:
        return False
    return (
        get_user_model()
        .objects.filter(
            pk=user_id,
            is_active=True,
            account__organisation__ods_code=ods,
            groups__name__in=[str(r) for r in TEAM_ROLES],
        )
        .exists()
    )


def thread_close(*, actor: Actor, user_id: int, thread_id: uuid.UUID) -> None:
    """Close: no new messages until someone reopens it. Who closed it is kept (the
    patient, or which member of staff)."""
    _status_change(actor=actor, user_id=user_id, thread_id=thread_id, close=True)


def thread_reopen(*, actor: Actor, user_id: int, thread_id: uuid.UUID) -> None:
    _status_change(actor=actor, user_id=user_id, thread_id=thread_id, close=False)


def _status_change(*, actor: Actor, user_id: int, thread_id: uuid.UUID, close: bool) -> None:
    _route, decision = decided(
        actor=actor, action=Action.THREAD_MANAGE, user_id=user_id, thread_id=thread_id
    )
    side = side_of(actor)
    wanted = Thread.Status.CLOSED if close else Thread.Status.OPEN
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread_id)
        if thread.status == wanted:
            return  # already so (two people at once, or the back button): nothing to do
        thread.status = wanted
        if close:
            thread.closed_at = now()
            thread.closed_by = side
            thread.closed_by_user_id = user_id
            # closing answers what was waiting: a reopened thread waits again only from
            # the patient's next message
            thread.waiting_since = None
        else:
            thread.closed_at = None
            thread.closed_by = ""
            thread.closed_by_user = None
        thread.save()
        audit_record(
            actor=actor,
            action=Action.THREAD_MANAGE,
            patient_id=thread.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"thread": str(thread.id), "change": "close" if close else "reopen"},
        )
