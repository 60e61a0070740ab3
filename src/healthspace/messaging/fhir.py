"""The Communicator's messages as FHIR R4 Communication resources, for the FHIR API
(``fhir_api.communication`` is the seam; registered in ``MessagingConfig.ready()``).

One Communication per message: ``topic`` is the conversation's subject, ``identifier`` the
conversation (thread) id, ``inResponseTo`` the message before it in the conversation,
``sender`` / ``recipient`` the patient (``Patient/[id]``) and the care team (the practice
by its ODS code, the member of staff by name, as the patient's pages show them),
``payload`` the text and each attachment's name, type and size (the bytes are downloaded
from the patient's pages, not served by the API). Messages never change, so every
Communication is version 1, last updated when it was sent.

Reads are decided by ``access.decide`` with ``Action.MESSAGE_VIEW`` (the caller's token
scope in the context) and audited in the read's transaction. Only the conversations of the
patient's current account are served: an earlier account's are sealed under a destroyed
key. Reading through the API does not move the read markers (an app syncing is not the
patient reading).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.errors import NotFound
from healthspace.fhir_api.communication import Found
from healthspace.fhir_api.search import Search, matches
from healthspace.messaging.models import Attachment, Message, Side
from healthspace.messaging.selectors import (
    attachment_meta_purpose,
    body_purpose,
    person_name,
    subject_purpose,
)
from healthspace.vault.crypto import KeyDestroyed, PatientCipher

THREAD_SYSTEM = "https://healthspace.example/fhir/Id/conversation"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
MESSAGE_FIELDS = (
    "id",
    "thread",
    "patient",
    "sender",
    "sent_at",
    "body",
    "sender_user__first_name",
    "sender_user__last_name",
    "thread__subject",
    "thread__owner",
    "thread__team__name",
    "thread__team__ods_code",
)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Sealed:
    """What a message says, opened (pure data for the mapping)."""

    subject: str
    body: str
    attachments: tuple[dict[str, Any], ...] = ()  # {"name", "content_type", "size"}


def communication_resource(
    *,
    message_id: uuid.UUID,
    thread_id: uuid.UUID,
    patient_id: uuid.UUID,
    sender: str,
    sender_name: str,
    team_name: str,
    team_ods: str | None,
    sent_at: datetime,
    previous_id: uuid.UUID | None,
    content: Sealed,
) -> dict[str, Any]:
    """One message as a FHIR R4 Communication (pure)."""
    patient = {"reference": f"Patient/{patient_id}"}
    team: dict[str, Any] = {"display": team_name}
    if team_ods:
        team["identifier"] = {"system": ODS_SYSTEM, "value": team_ods}
    if sender == Side.PATIENT:
        sent_by, sent_to = patient, [team]
    else:
        sent_by, sent_to = {"display": f"{sender_name}, {team_name}"}, [patient]
    payload: list[dict[str, Any]] = [{"contentString": content.body}]
    for attachment in content.attachments:
        payload.append(
            {
                "contentAttachment": {
                    "contentType": attachment["content_type"],
                    "title": attachment["name"],
                    "size": int(attachment["size"]),
                }
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": str(message_id),
        "meta": {"versionId": "1", "lastUpdated": _instant(sent_at)},
        "identifier": [{"system": THREAD_SYSTEM, "value": str(thread_id)}],
        "status": "completed",
        "subject": patient,
        "topic": {"text": content.subject},
        "sent": _instant(sent_at),
        "sender": sent_by,
        "recipient": sent_to,
        "payload": payload,
    }
    if previous_id is not None:
        resource["inResponseTo"] = [{"reference": f"Communication/{previous_id}"}]
    return resource


def _owner(actor: Actor) -> int | None:
    """The account whose conversations a patient's token reaches (its own)."""
    if actor.kind != "patient" or not actor.id.startswith("user:"):
        return None
    pk = actor.id.removeprefix("user:")
    return int(pk) if pk.isdigit() else None


def _detail(actor: Actor, interaction: str, **more: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {"via": "fhir", "interaction": interaction, "type": "Communication"}
    if actor.client_id:
        detail["client"] = actor.client_id
    detail.update(more)
    return detail


def _messages():
    previous = (
        Message.objects.filter(thread_id=OuterRef("thread_id"), sent_at__lt=OuterRef("sent_at"))
        .order_by("-sent_at", "-id")
        .values("id")[:1]
    )
    return (
        Message.objects.select_related("thread__team", "sender_user")
        .only(*MESSAGE_FIELDS)
        .annotate(previous_id=Subquery(previous))
    )


def _cipher(owner_id: int) -> PatientCipher | None:
    try:
        return portal_cipher_for(user_id=owner_id)
    except (KeyDestroyed, NotFound):
        return None


def _served(cipher: PatientCipher, messages: list[Message]) -> list[dict[str, Any]]:
    files: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if messages:
        rows = (
            Attachment.objects.filter(message_id__in=[m.id for m in messages])
            .only("id", "message_id", "meta")
            .order_by("created_at", "id")
        )
        for row in rows:
            meta = cipher.open_json(row.meta, purpose=attachment_meta_purpose(row.id))
            files.setdefault(row.message_id, []).append(meta)
    subjects: dict[uuid.UUID, str] = {}
    out = []
    for m in messages:
        thread = m.thread
        if thread.id not in subjects:
            subjects[thread.id] = cipher.open_json(
                thread.subject, purpose=subject_purpose(thread.id)
            )["subject"]
        body = cipher.open_json(m.body, purpose=body_purpose(m.id))["body"]
        out.append(
            communication_resource(
                message_id=m.id,
                thread_id=thread.id,
                patient_id=m.patient_id,
                sender=m.sender,
                sender_name=person_name(m.sender_user),
                team_name=thread.team.name,
                team_ods=thread.team.ods_code,
                sent_at=m.sent_at,
                previous_id=m.previous_id,
                content=Sealed(subjects[thread.id], body, tuple(files.get(m.id, ()))),
            )
        )
    return out


def _last_updated(search: Search):
    from healthspace.fhir_api.selectors import _last_updated_q

    return _last_updated_q(search, "sent_at")


def _ids(search: Search) -> list[uuid.UUID] | None:
    if search.ids is None:
        return None
    out = []
    for text in search.ids:
        try:
            out.append(uuid.UUID(text))
        except ValueError:
            continue
    return out


class MessagingCommunications:
    """The ``fhir_api.communication.CommunicationSource`` of the Communicator."""

    def search(
        self, *, actor: Actor, patient_id: uuid.UUID, context: AccessContext, search: Search
    ) -> Found:
        decision = access_checked(
            actor=actor, action=Action.MESSAGE_VIEW, patient_id=patient_id, context=context
        )
        owner = _owner(actor)
        if not decision.allowed or owner is None:
            return Found()
        query = _messages().filter(patient_id=patient_id, thread__owner_id=owner)
        query = query.filter(_last_updated(search))
        wanted = _ids(search)
        if wanted is not None:
            query = query.filter(pk__in=wanted)
        descending = search.sort[1]
        query = query.order_by(*(("-sent_at", "-id") if descending else ("sent_at", "id")))
        cipher = _cipher(owner)
        if cipher is None:
            return Found()
        with transaction.atomic():
            if search.content_filters:  # status, sent: on the served resources
                resources = [r for r in _served(cipher, list(query)) if matches(search, r)]
                total = len(resources)
                shown = (
                    []
                    if search.summary_count
                    else resources[search.offset : search.offset + search.count]
                )
            else:
                rows = (
                    []
                    if search.summary_count or search.count == 0
                    else list(query[search.offset : search.offset + search.count])
                )
                # a page that is not full (and not past the end) tells the total itself
                partial = (
                    not search.summary_count
                    and len(rows) < search.count
                    and (rows or search.offset == 0)
                )
                total = search.offset + len(rows) if partial else query.count()
                shown = _served(cipher, rows)
            audit_record(
                actor=actor,
                action=Action.MESSAGE_VIEW,
                patient_id=patient_id,
                outcome="success",
                reason=decision.reason,
                detail=_detail(
                    actor,
                    "search-type",
                    messages=len(shown),
                    threads=sorted({r["identifier"][0]["value"] for r in shown}),
                ),
            )
        return Found(resources=shown, total=total)

    def read(self, *, actor: Actor, fhir_id: str, context: AccessContext) -> dict[str, Any] | None:
        try:
            message_id = uuid.UUID(fhir_id) if len(fhir_id) in (32, 36) else None
        except ValueError:
            message_id = None
        if message_id is None:
            return None
        row = (
            Message.objects.filter(pk=message_id)
            .values("patient_id", "thread_id", "thread__owner_id")
            .first()
        )
        if row is None:
            return None
        decision = access_checked(
            actor=actor, action=Action.MESSAGE_VIEW, patient_id=row["patient_id"], context=context
        )
        owner = _owner(actor)
        if not decision.allowed or owner is None or row["thread__owner_id"] != owner:
            return None  # another patient's, or an earlier account's (a destroyed key)
        cipher = _cipher(owner)
        if cipher is None:
            return None
        with transaction.atomic():
            message = _messages().filter(pk=message_id).first()
            if message is None:
                return None
            resource = _served(cipher, [message])[0]
            audit_record(
                actor=actor,
                action=Action.MESSAGE_VIEW,
                patient_id=row["patient_id"],
                outcome="success",
                reason=decision.reason,
                detail=_detail(actor, "read", messages=1, threads=[str(row["thread_id"])]),
            )
        return resource
