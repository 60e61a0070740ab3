"""Export a patient's data: the whole of it as a FHIR R4 Bundle (type collection), the
International Patient Summary (a document Bundle), a printable PDF of the Summary Care
Record, and the health organiser's readings as CSV.

One read gathers everything (``gather``): ``access.decide`` is asked for the record
(``record.export``, per section) and for the account's own data (``organiser.export``,
the organiser and the Communicator's messages, sealed under the account's portal key),
and both are audited in the read's transaction. Resources are in the FHIR API's served
form (``fhir_api.resources``: the same ids and references as apps see).

What the account keeps for itself (organiser readings, messages) carries the tag
``PORTAL_TAG``: the importer leaves such resources out (they are not part of the SCR),
so an export imported elsewhere gives the same Summary Care Record.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action, decide
from healthspace.accounts.models import Account, PatientLink
from healthspace.audit.fhir import HS_FHIR
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import access_checked, audit_record
from healthspace.core import nhs_numbers
from healthspace.core.clock import now
from healthspace.core.errors import NotFound, Refused
from healthspace.fhir_api import resources as served
from healthspace.fhir_api import selectors as api_reads
from healthspace.records.importer import ACCOUNT_OWN_TAG
from healthspace.records.ips import ips_document
from healthspace.records.models import (
    ADDITIONAL_SECTIONS,
    CORE_SECTIONS,
    Patient,
    PatientIdentifier,
    ScrItem,
)
from healthspace.records.selectors import NOT_FOUND_MESSAGE
from healthspace.vault import services as vault
from healthspace.vault.crypto import KeyDestroyed, VaultError

# the account's own data in an export: not part of the Summary Care Record
PORTAL_TAG = {
    "system": f"{HS_FHIR}/CodeSystem/healthspace-tags",
    "code": ACCOUNT_OWN_TAG,
    "display": "Kept by the patient's HealthSpace account, not part of the SCR",
}
FORMATS = ("fhir", "ips", "pdf", "csv")
CONTENT_TYPES = {
    "fhir": "application/fhir+json",
    "ips": "application/fhir+json",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}
EXTENSIONS = {"fhir": "json", "ips": "json", "pdf": "pdf", "csv": "csv"}


def patient_id_for(ident: str) -> uuid.UUID:
    """Resolve an NHS number, or an identifier written ``system|value``, to a patient id."""
    ident = ident.strip()
    if "|" in ident:
        row = PatientIdentifier.objects.filter(lookup=vault.index("identifier", ident)).first()
        if row is None:
            # also accept a source system's logical id: "<source>|Patient|<id>" style lookups
            row = PatientIdentifier.objects.filter(lookup=vault.index("source-id", ident)).first()
        if row is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        return row.patient_id
    digits = nhs_numbers.normalise(ident)
    found = Patient.objects.filter(nhs_number=digits).values_list("id", flat=True).first()
    if found is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return found


def account_of(patient_id: uuid.UUID) -> int | None:
    """The login linked to a record (None: nobody has linked it)."""
    return (
        PatientLink.objects.filter(patient_id=patient_id).values_list("user_id", flat=True).first()
    )


@dataclass
class Gathered:
    """What one export holds, decrypted, in served form."""

    patient_id: uuid.UUID | None
    nhs_number: str = ""
    patient: dict[str, Any] | None = None
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (section, served)
    withheld: dict[str, str] = field(default_factory=dict)
    consent: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    readings: list[Any] = field(default_factory=list)  # organiser.selectors.ReadingView
    messages: list[dict[str, Any]] = field(default_factory=list)  # Communication


def _record(actor: Actor, patient_id: uuid.UUID, out: Gathered, *, full: bool) -> None:
    decision = access_checked(actor=actor, action=Action.EXPORT_RECORD, patient_id=patient_id)
    if not decision.allowed:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    per_section = {
        s: decide(actor, Action.EXPORT_RECORD, patient_id, s)
        for s in (*CORE_SECTIONS, *ADDITIONAL_SECTIONS)
    }
    shown = [s for s, d in per_section.items() if d.allowed]
    out.withheld = {s: d.reason for s, d in per_section.items() if not d.allowed}
    with transaction.atomic():
        patient = (
            Patient.objects.select_related("registered_practice").filter(pk=patient_id).first()
        )
        if patient is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        items = list(
            ScrItem.objects.filter(patient_id=patient_id, section__in=shown)
            .only(*api_reads.ITEM_FIELDS)
            .order_by("section", "-recorded_at", "id")
        )
        events = (
            list(AuditEvent.objects.filter(patient_id=patient_id).order_by("occurred_at", "pk"))
            if full
            else []
        )
        consent = api_reads.consent_versions(patient_id) if full else []
        audit_record(
            actor=actor,
            action=Action.EXPORT_RECORD,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={
                "items": len(items),
                "sections": shown,
                "what": "fhir" if full else "summary",
                **({"withheld": sorted(out.withheld)} if out.withheld else {}),
            },
        )
    try:
        cipher = vault.cipher_for(patient_id=patient_id)
    except VaultError as exc:  # crypto-shredded: nothing of it can leave
        raise NotFound(NOT_FOUND_MESSAGE) from exc
    rows = [(item, api_reads.open_item(cipher, item)["resource"]) for item in items]
    out.nhs_number = patient.nhs_number
    out.patient = api_reads.patient_resource(patient)
    out.items = [
        (item.section, r) for (item, _), r in zip(rows, api_reads.serve_rows(rows), strict=True)
    ]
    out.consent = consent
    out.audit = api_reads.audit_resources(events)


def _own_data(actor: Actor, user_id: int, out: Gathered, *, messages: bool) -> None:
    """The account's organiser readings and (for a record) its messages."""
    from healthspace.messaging.models import Attachment, Message, Thread
    from healthspace.messaging.selectors import (
        attachment_data_purpose,
        attachment_meta_purpose,
        body_purpose,
        subject_purpose,
    )
    from healthspace.organiser.models import Reading
    from healthspace.organiser.selectors import latest_height, open_reading, with_bmi

    owner = f"user:{user_id}"
    decision = access_checked(
        actor=actor,
        action=Action.ORGANISER_EXPORT,
        patient_id=out.patient_id,
        context=AccessContext(portal_owner=owner),
    )
    if not decision.allowed:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    try:
        cipher = vault.portal_cipher_for(
            subject_id=Account.objects.values_list("portal_subject", flat=True).get(user_id=user_id)
        )
    except (Account.DoesNotExist, KeyDestroyed):
        return  # no account, or closed: nothing of its own left
    with transaction.atomic():
        readings = list(Reading.objects.filter(owner_id=user_id).order_by("taken_at", "created_at"))
        height = latest_height(cipher, user_id)
        threads = (
            list(Thread.objects.select_related("team").filter(owner_id=user_id)) if messages else []
        )
        sent = (
            list(Message.objects.filter(thread__in=threads).order_by("sent_at", "pk"))
            if threads
            else []
        )
        files = list(Attachment.objects.filter(thread__in=threads)) if threads else []
        audit_record(
            actor=actor,
            action=Action.ORGANISER_EXPORT,
            patient_id=out.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"what": "export", "readings": len(readings), "messages": len(sent)},
        )
    out.readings = [with_bmi(open_reading(cipher, r), height) for r in readings]
    if not sent or out.patient_id is None:
        return
    subjects = {
        t.id: cipher.open_json(t.subject, purpose=subject_purpose(t.id))["subject"] for t in threads
    }
    by_message: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for f in files:
        meta = cipher.open_json(f.meta, purpose=attachment_meta_purpose(f.id))
        data = cipher.open(bytes(f.data), purpose=attachment_data_purpose(f.id))
        by_message.setdefault(f.message_id, []).append(
            {
                "contentType": meta["content_type"],
                "title": meta["name"],
                "size": meta["size"],
                "data": base64.b64encode(data).decode(),
            }
        )
    team_names = {t.id: t.team.name for t in threads}
    for m in sent:
        body = cipher.open_json(m.body, purpose=body_purpose(m.id))["body"]
        out.messages.append(
            communication(
                message_id=m.id,
                thread_id=m.thread_id,
                patient_id=out.patient_id,
                from_patient=m.sender == "patient",
                team=team_names.get(m.thread_id) or "Care team",
                subject=subjects.get(m.thread_id, ""),
                body=body,
                sent_at=m.sent_at,
                attachments=by_message.get(m.id, []),
            )
        )


def communication(
    *,
    message_id: uuid.UUID,
    thread_id: uuid.UUID,
    patient_id: uuid.UUID,
    from_patient: bool,
    team: str,
    subject: str,
    body: str,
    sent_at,
    attachments: list[dict[str, Any]],
) -> dict[str, Any]:
    """One Communicator message as a FHIR R4 Communication (the thread is its topic)."""
    patient = {"reference": f"Patient/{patient_id}"}
    care_team = {"display": team}
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": str(message_id),
        "meta": {"tag": [PORTAL_TAG]},
        "identifier": [{"system": f"{HS_FHIR}/Id/message-thread", "value": str(thread_id)}],
        "status": "completed",
        "subject": patient,
        "topic": {"text": subject or "Message"},
        "sent": served.instant(sent_at),
        "sender": patient if from_patient else care_team,
        "recipient": [care_team if from_patient else patient],
        "payload": [{"contentString": body}],
    }
    resource["payload"].extend({"contentAttachment": a} for a in attachments)
    return resource


def gather(
    *, actor: Actor, patient_id: uuid.UUID | None, user_id: int | None, what: str
) -> Gathered:
    """Everything one export of ``what`` (a FORMATS name) needs, each part decided and
    audited. ``patient_id``: the record (None for a basic account); ``user_id``: the
    account whose own data comes too (None: nobody has linked the record)."""
    out = Gathered(patient_id=patient_id)
    if what in ("fhir", "ips", "pdf"):
        if patient_id is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        _record(actor, patient_id, out, full=what == "fhir")
    if what in ("fhir", "csv") and user_id is not None:
        _own_data(actor, user_id, out, messages=what == "fhir")
    return out


# --- the formats ------------------------------------------------------------------------


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"{served.base()}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
    }


def readings_as_observations(data: Gathered) -> list[dict[str, Any]]:
    from healthspace.organiser.fhir import bmi_observation, observation

    out = []
    for r in data.readings:
        resource = observation(
            patient_id=data.patient_id,
            measure=r.measure,
            values=r.values,
            taken_at=r.taken_at,
            note=r.note,
        )
        resource["id"] = str(r.id)
        resource["meta"] = {"tag": [PORTAL_TAG], "lastUpdated": served.instant(r.updated_at)}
        out.append(resource)
        if r.bmi is not None:
            bmi = bmi_observation(patient_id=data.patient_id, bmi=r.bmi, taken_at=r.taken_at)
            bmi["id"] = str(uuid.uuid5(r.id, "bmi"))
            bmi["meta"] = {"tag": [PORTAL_TAG]}
            out.append(bmi)
    return out


def fhir_bundle(data: Gathered) -> dict[str, Any]:
    """Everything: the SCR, consent history, who looked, organiser readings, messages."""
    if data.patient is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    entries = [_entry(data.patient)]
    entries.extend(_entry(r) for _, r in data.items)
    entries.extend(_entry(r) for r in data.consent)
    entries.extend(_entry(r) for r in data.audit)
    entries.extend(_entry(r) for r in readings_as_observations(data))
    entries.extend(_entry(r) for r in data.messages)
    at = served.instant(now())
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": at},
        "type": "collection",
        "timestamp": at,
        "entry": entries,
    }
    Bundle.model_validate(bundle)
    return bundle


def ips_bundle(data: Gathered) -> dict[str, Any]:
    if data.patient is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return ips_document(
        patient=data.patient,
        items=data.items,
        withheld=set(data.withheld),
        base_url=served.base(),
        timestamp=now(),
    )


def readings_csv(readings: list[Any]) -> bytes:
    """The organiser's readings, oldest first (the organiser page's CSV: same columns)."""
    from healthspace.organiser.views import CSV_COLUMNS as columns
    from healthspace.organiser.views import csv_row, csv_safe

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for r in readings:
        writer.writerow([csv_safe(cell) for cell in csv_row(r)])
    # UTF-8 with a byte order mark, so that spreadsheet programs read accents right
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def render(data: Gathered, what: str) -> bytes:
    if what == "fhir":
        return json.dumps(fhir_bundle(data), indent=2, ensure_ascii=False).encode() + b"\n"
    if what == "ips":
        return json.dumps(ips_bundle(data), indent=2, ensure_ascii=False).encode() + b"\n"
    if what == "pdf":
        from healthspace.portability.pdf import scr_pdf

        return scr_pdf(data)
    if what == "csv":
        return readings_csv(data.readings)
    raise ValueError(f"unknown format {what!r}")


def filename(what: str) -> str:
    day = timezone.localdate(now()).isoformat()
    kind = {"fhir": "record", "ips": "summary", "pdf": "scr", "csv": "readings"}[what]
    return f"healthspace-{kind}-{day}.{EXTENSIONS[what]}"


def export(*, actor: Actor, patient_id: uuid.UUID | None, user_id: int | None, what: str) -> bytes:
    if what not in FORMATS:
        raise ValueError(f"unknown format {what!r}")
    return render(gather(actor=actor, patient_id=patient_id, user_id=user_id, what=what), what)


def export_fhir_bundle(*, actor: Actor, patient_id: uuid.UUID) -> dict[str, Any]:
    """The whole record and the linked account's own data as a FHIR collection Bundle."""
    user_id = account_of(patient_id)
    return fhir_bundle(gather(actor=actor, patient_id=patient_id, user_id=user_id, what="fhir"))
