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

from django.contrib.auth import get_user_model
from django.db import router, transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.errors import NotFound
from healthspace.core.sql import as_datetime, as_uuid, names, param
from healthspace.core.sql import rows as sql_rows
from healthspace.fhir_api.communication import Found
from healthspace.fhir_api.search import LAST_UPDATED_BOUNDS, Search, matches
from healthspace.messaging.models import Attachment, Message, Side, Thread
from healthspace.messaging.selectors import (
    attachment_meta_purpose,
    body_purpose,
    person_name,
    subject_purpose,
)
from healthspace.records.models import Organisation
from healthspace.vault.crypto import KeyDestroyed, PatientCipher

THREAD_SYSTEM = "https://healthspace.example/fhir/Id/conversation"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"


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


@dataclass(frozen=True)
class _Row:
    """One message as the mapping needs it, with its conversation, team and sender."""

    id: uuid.UUID
    thread_id: uuid.UUID
    patient_id: uuid.UUID
    sender: str
    sent_at: datetime
    body: bytes
    sender_first: str | None
    sender_last: str | None
    subject: bytes
    team_name: str
    team_ods: str | None
    previous_id: uuid.UUID | None


def _where(
    *,
    patient_id: uuid.UUID | None = None,
    owner_id: int | None = None,
    search: Search | None = None,
    ids: list[uuid.UUID] | None = None,
) -> tuple[str, list[Any]]:
    _, mc = names(Message)
    _, tc = names(Thread)
    parts, params = [], []
    if patient_id is not None:
        parts.append(f"m.{mc['patient']} = %s")
        params.append(param(Message, "patient", patient_id))
    if owner_id is not None:
        parts.append(f"t.{tc['owner']} = %s")
        params.append(owner_id)
    for prefix, rng in search.last_updated if search is not None else ():
        negate, bounds = LAST_UPDATED_BOUNDS[prefix]
        both = " AND ".join(f"m.{mc['sent_at']} {op} %s" for op, _end in bounds)
        parts.append(f"NOT ({both})" if negate else f"({both})")
        params += [param(Message, "sent_at", getattr(rng, end)) for _op, end in bounds]
    if ids is not None:
        if not ids:
            parts.append("1 = 0")  # as the ORM's empty IN
        else:
            parts.append(f"m.{mc['id']} IN ({', '.join(['%s'] * len(ids))})")
            params += [param(Message, "id", i) for i in ids]
    return " AND ".join(parts) or "1 = 1", params


def _from() -> str:
    message, mc = names(Message)
    thread, tc = names(Thread)
    team, oc = names(Organisation)
    user, uc = names(get_user_model())
    return (
        f"{message} m JOIN {thread} t ON t.{tc['id']} = m.{mc['thread']} "
        f"JOIN {team} o ON o.{oc['id']} = t.{tc['team']} "
        f"LEFT JOIN {user} u ON u.{uc['id']} = m.{mc['sender_user']}"
    )


def _rows(
    where: tuple[str, list[Any]],
    *,
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[_Row]:
    """The messages, in the order asked for, by one statement (plain SQL: the ORM's
    building of this query, with its subquery and two joins, cost more CPU than running
    it; docs/performance.md)."""
    message, mc = names(Message)
    _, tc = names(Thread)
    _, oc = names(Organisation)
    _, uc = names(get_user_model())
    direction = " DESC" if descending else ""
    previous = (
        f"(SELECT p.{mc['id']} FROM {message} p WHERE p.{mc['thread']} = m.{mc['thread']} "  # noqa: S608 - quoted names from model metadata
        f"AND p.{mc['sent_at']} < m.{mc['sent_at']} "
        f"ORDER BY p.{mc['sent_at']} DESC, p.{mc['id']} DESC LIMIT 1)"
    )
    columns = ", ".join(
        [
            *(f"m.{mc[f]}" for f in ("id", "thread", "patient", "sender", "sent_at", "body")),
            f"u.{uc['first_name']}",
            f"u.{uc['last_name']}",
            f"t.{tc['subject']}",
            f"o.{oc['name']}",
            f"o.{oc['ods_code']}",
            previous,
        ]
    )
    conditions, params = where
    sql = (
        f"SELECT {columns} FROM {_from()} WHERE {conditions} "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"ORDER BY m.{mc['sent_at']}{direction}, m.{mc['id']}{direction}"
    )
    if limit is not None:
        sql += " LIMIT %s OFFSET %s"
        params = [*params, int(limit), int(offset)]
    elif offset:
        raise ValueError("an offset needs a limit")
    found = sql_rows(sql, params, using=router.db_for_read(Message))
    return [
        _Row(
            id=as_uuid(r[0]),
            thread_id=as_uuid(r[1]),
            patient_id=as_uuid(r[2]),
            sender=r[3],
            sent_at=as_datetime(r[4]),
            body=bytes(r[5]),
            sender_first=r[6],
            sender_last=r[7],
            subject=bytes(r[8]),
            team_name=r[9],
            team_ods=r[10],
            previous_id=as_uuid(r[11]),
        )
        for r in found
    ]


def _count(where: tuple[str, list[Any]]) -> int:
    conditions, params = where
    sql = f"SELECT COUNT(*) FROM {_from()} WHERE {conditions}"  # noqa: S608 - as in _rows
    return sql_rows(sql, params, using=router.db_for_read(Message))[0][0]


def _cipher(owner_id: int) -> PatientCipher | None:
    try:
        return portal_cipher_for(user_id=owner_id)
    except (KeyDestroyed, NotFound):
        return None


def _served(cipher: PatientCipher, messages: list[_Row]) -> list[dict[str, Any]]:
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
        if m.thread_id not in subjects:
            subjects[m.thread_id] = cipher.open_json(
                m.subject, purpose=subject_purpose(m.thread_id)
            )["subject"]
        body = cipher.open_json(m.body, purpose=body_purpose(m.id))["body"]
        sender_user = (
            None if m.sender_first is None else _Person(m.sender_first or "", m.sender_last or "")
        )
        out.append(
            communication_resource(
                message_id=m.id,
                thread_id=m.thread_id,
                patient_id=m.patient_id,
                sender=m.sender,
                sender_name=person_name(sender_user),
                team_name=m.team_name,
                team_ods=m.team_ods,
                sent_at=m.sent_at,
                previous_id=m.previous_id,
                content=Sealed(subjects[m.thread_id], body, tuple(files.get(m.id, ()))),
            )
        )
    return out


@dataclass(frozen=True)
class _Person:
    first_name: str
    last_name: str


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
        where = _where(patient_id=patient_id, owner_id=owner, search=search, ids=_ids(search))
        descending = search.sort[1]
        cipher = _cipher(owner)
        if cipher is None:
            return Found()
        with transaction.atomic():
            if search.content_filters:  # status, sent: on the served resources
                every = _rows(where, descending=descending)
                resources = [r for r in _served(cipher, every) if matches(search, r)]
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
                    else _rows(
                        where, descending=descending, limit=search.count, offset=search.offset
                    )
                )
                # a page that is not full (and not past the end) tells the total itself
                partial = (
                    not search.summary_count
                    and len(rows) < search.count
                    and (rows or search.offset == 0)
                )
                total = search.offset + len(rows) if partial else _count(where)
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
            found = _rows(_where(ids=[message_id]), limit=1)
            if not found:
                return None
            resource = _served(cipher, found)[0]
            audit_record(
                actor=actor,
                action=Action.MESSAGE_VIEW,
                patient_id=row["patient_id"],
                outcome="success",
                reason=decision.reason,
                detail=_detail(actor, "read", messages=1, threads=[str(row["thread_id"])]),
            )
        return resource
