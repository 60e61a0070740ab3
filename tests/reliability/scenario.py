"""Steps of the reliability tests that run inside the service's own Django, in a
subprocess with the service's production environment (harness.Service.script):

    python -m tests.reliability.scenario STEP < payload.json

Each step reads a JSON payload on stdin and prints one JSON line. They seed what the
tests need (patients, logins, an API client) and check what is stored, reading sealed
fields through the vault exactly as the service does. They never go around the service
to *change* patient data, except where a test says so (the privacy officer's decision).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from healthspace.access.policy import Action  # noqa: E402
from healthspace.accounts.actors import actor_for_user  # noqa: E402
from healthspace.accounts.models import PatientLink  # noqa: E402
from healthspace.audit.models import AuditEvent  # noqa: E402

STEPS = {}


def step(fn):
    STEPS[fn.__name__.replace("_", "-")] = fn
    return fn


@step
def seed(payload: dict[str, Any]) -> dict[str, Any]:
    """Synthetic patients, each with a verified login (password + an authenticator app
    with its own secret), and optionally a GP system client of the FHIR API."""
    from healthspace.accounts.factors.services import totp_demo_device
    from healthspace.ops.demo import ensure_demo_logins
    from healthspace.records import synthetic
    from healthspace.records.importer import import_paths
    from healthspace.smart import services as smart

    wanted = int(payload["patients"])
    with tempfile.TemporaryDirectory() as tmp:
        for i, bundle in enumerate(synthetic.population(wanted + 3)):
            (Path(tmp) / f"synthetic-{i:02d}.json").write_text(json.dumps(bundle))
        report = import_paths([Path(tmp)], source=synthetic.SOURCE)
    assert report.ok, report.errors
    logins = [d for d in ensure_demo_logins(count=wanted) if d.role == "patient"]
    assert len(logins) == wanted, f"only {len(logins)} patients with a record to log in to"
    users = []
    user_model = get_user_model()
    for login in logins:
        user = user_model.objects.get(username=login.email)
        secret = secrets.token_hex(20)  # 160 bits, as an authenticator app's
        totp = base64.b32encode(bytes.fromhex(secret)).decode()
        totp_demo_device(user, totp, name="Reliability test app")
        link = PatientLink.objects.select_related("patient__registered_practice").get(user=user)
        users.append(
            {
                "email": login.email,
                "password": login.password,
                "totp": totp,
                "user_id": user.pk,
                "patient_id": str(link.patient_id),
                "nhs_number": link.patient.nhs_number,
                "ods": link.patient.registered_practice.ods_code,
            }
        )
    client_id = None
    if payload.get("jwks"):
        registered = smart.client_register_system(
            name="Reliability GP system",
            ods_code=users[0]["ods"],
            jwks=payload["jwks"],
            allowed_scopes=payload.get("scopes", "system/*.rs"),
        )
        client_id = registered.client_id
    return {"users": users, "client_id": client_id}


def _label(user_id: int) -> str:
    return actor_for_user(get_user_model().objects.get(pk=user_id)).audit_label()


@step
def check_writes(payload: dict[str, Any]) -> dict[str, Any]:
    """Are the acknowledged writes stored, whole, each with its audit event, and is
    anything stored half-written (a row without its event, or the reverse)?

    payload: {"users": [...], "readings": [[id, token]], "messages": [[thread, token]],
    "consents": {patient_id: acknowledged count}}."""
    from healthspace.accounts.portal import portal_cipher_for
    from healthspace.consent.models import ConsentRecord
    from healthspace.messaging.models import Message, Thread
    from healthspace.messaging.selectors import body_purpose
    from healthspace.organiser.models import Reading
    from healthspace.organiser.selectors import purpose

    problems: list[str] = []
    user_ids = [u["user_id"] for u in payload["users"]]
    ciphers = {uid: portal_cipher_for(user_id=uid) for uid in user_ids}

    # readings: every row opens, and each owner has exactly one "reading add" event per row
    notes: dict[str, str] = {}
    for row in Reading.objects.filter(owner_id__in=user_ids):
        try:
            opened = ciphers[row.owner_id].open_json(
                row.payload, purpose=purpose("reading", row.id)
            )
            notes[str(row.id)] = opened["note"]
        except Exception as exc:  # a half-written or corrupt seal
            problems.append(f"reading {row.id} does not open: {type(exc).__name__}")
    for uid in user_ids:
        rows = Reading.objects.filter(owner_id=uid).count()
        events = AuditEvent.objects.filter(
            actor=_label(uid),
            action=Action.ORGANISER_CHANGE,
            detail__what="reading",
            detail__change="add",
        ).count()
        if rows != events:
            problems.append(f"user {uid}: {rows} readings but {events} 'reading add' events")
    acked_readings = dict(payload.get("readings", []))
    missing_readings = [rid for rid in acked_readings if rid not in notes]
    wrong_readings = [
        rid for rid, token in acked_readings.items() if rid in notes and notes[rid] != token
    ]
    tokens = set(acked_readings.values())
    unacked_readings = sum(1 for note in notes.values() if note not in tokens)

    # messages: each thread has its first message; each message has its event, and back
    bodies: dict[str, str] = {}
    threads = Thread.objects.filter(owner_id__in=user_ids)
    messages = Message.objects.filter(thread__owner_id__in=user_ids).select_related("thread")
    per_thread = Counter()
    for message in messages:
        per_thread[message.thread_id] += 1
        try:
            opened = ciphers[message.thread.owner_id].open_json(
                message.body, purpose=body_purpose(message.id)
            )
            bodies.setdefault(str(message.thread_id), opened["body"])
        except Exception as exc:
            problems.append(f"message {message.id} does not open: {type(exc).__name__}")
    for thread in threads:
        if per_thread[thread.id] != thread.message_count or thread.message_count < 1:
            problems.append(
                f"thread {thread.id}: message_count {thread.message_count}, "
                f"{per_thread[thread.id]} messages stored"
            )
    message_ids = {str(m.id) for m in messages}
    events = {
        e["message"]
        for e in AuditEvent.objects.filter(
            action__in=[Action.THREAD_OPEN, Action.MESSAGE_SEND],
            patient_id__in=[u["patient_id"] for u in payload["users"]],
        ).values_list("detail", flat=True)
        if isinstance(e, dict) and "message" in e
    }
    if message_ids - events:
        problems.append(f"{len(message_ids - events)} messages without their audit event")
    if events - message_ids:
        problems.append(f"{len(events - message_ids)} message events without their message")
    acked_messages = dict(payload.get("messages", []))
    missing_messages = [t for t in acked_messages if t not in bodies]
    wrong_messages = [t for t, tok in acked_messages.items() if t in bodies and bodies[t] != tok]
    tokens = set(acked_messages.values())
    unacked_messages = sum(1 for body in bodies.values() if body not in tokens)

    # consent: one version per change, each with its event (the event names the version)
    consent_short: list[str] = []
    unacked_consents = 0
    for user in payload["users"]:
        pid = uuid.UUID(user["patient_id"])
        versions = set(
            ConsentRecord.objects.filter(patient_id=pid).values_list("version", flat=True)
        )
        evented = {
            d.get("version")
            for d in AuditEvent.objects.filter(
                patient_id=pid, action=Action.CONSENT_CHANGE, outcome="allowed"
            ).values_list("detail", flat=True)
        }
        if versions != evented:
            problems.append(f"patient {pid}: consent versions {versions} vs events {evented}")
        if versions != set(range(1, len(versions) + 1)):
            problems.append(f"patient {pid}: consent versions have a gap: {sorted(versions)}")
        acked = int(payload.get("consents", {}).get(user["patient_id"], 0))
        if len(versions) < acked:
            consent_short.append(f"{pid}: {acked} acknowledged, {len(versions)} stored")
        unacked_consents += max(0, len(versions) - acked)

    return {
        "problems": problems,
        "readings": {
            "stored": len(notes),
            "acknowledged": len(acked_readings),
            "missing": missing_readings,
            "wrong": wrong_readings,
            "stored_unacknowledged": unacked_readings,
        },
        "messages": {
            "stored": len(bodies),
            "acknowledged": len(acked_messages),
            "missing": missing_messages,
            "wrong": wrong_messages,
            "stored_unacknowledged": unacked_messages,
        },
        "consents": {"short": consent_short, "stored_unacknowledged": unacked_consents},
    }


@step
def scr_digest(payload: dict[str, Any]) -> dict[str, Any]:
    """Per patient (by NHS number): a digest of their whole SCR as stored (items'
    identities, sections, versions and the opened FHIR resources), and the item count."""
    from healthspace.audit.chain import canonical_json
    from healthspace.records.importer import item_purpose
    from healthspace.records.models import Patient, ScrItem, ScrItemVersion
    from healthspace.vault import services as vault

    out: dict[str, Any] = {}
    for patient in Patient.objects.order_by("nhs_number"):
        cipher = vault.cipher_for(patient_id=patient.id)
        lines = []
        for item in ScrItem.objects.filter(patient=patient).order_by("identity"):
            resource = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
            lines.append(
                f"{item.identity}|{item.section}|{item.version}|{canonical_json(resource)}"
            )
        out[patient.nhs_number] = {
            "items": len(lines),
            "digest": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        }
    return {
        "patients": out,
        "versions": ScrItemVersion.objects.count(),
        "items": ScrItem.objects.count(),
    }


@step
def grant_deletion(payload: dict[str, Any]) -> dict[str, Any]:
    """The privacy officer grants the patient's deletion request (the service the staff
    page calls): the record's SCR key is destroyed in the key store."""
    from healthspace.cases.services import deletion_request_decide

    officer = get_user_model().objects.get(username=payload["officer"])
    request = deletion_request_decide(
        actor=actor_for_user(officer),
        patient_id=uuid.UUID(payload["patient_id"]),
        grant=True,
        note="Reliability test: deletion granted",
    )
    return {"status": request.status}


@step
def readable(payload: dict[str, Any]) -> dict[str, Any]:
    """For each patient id: how many of their SCR items open, or why none can."""
    from healthspace.records.importer import item_purpose
    from healthspace.records.models import ScrItem
    from healthspace.vault import services as vault

    out = {}
    for pid in payload["patient_ids"]:
        items = list(ScrItem.objects.filter(patient_id=uuid.UUID(pid)))
        try:
            cipher = vault.cipher_for(patient_id=uuid.UUID(pid))
            opened = sum(
                1 for i in items if cipher.open_json(i.payload, purpose=item_purpose(i.identity))
            )
            out[pid] = {"items": len(items), "opened": opened, "error": None}
        except Exception as exc:
            out[pid] = {"items": len(items), "opened": 0, "error": type(exc).__name__}
    return out


@step
def known_texts(payload: dict[str, Any]) -> dict[str, Any]:
    """Clinical strings of one patient's SCR, opened through the vault (what a restored
    copy must not show in clear)."""
    from healthspace.records.importer import item_purpose
    from healthspace.records.models import ScrItem
    from healthspace.vault import services as vault

    pid = uuid.UUID(payload["patient_id"])
    cipher = vault.cipher_for(patient_id=pid)
    texts: set[str] = set()
    for item in ScrItem.objects.filter(patient_id=pid):
        resource = cipher.open_json(item.payload, purpose=item_purpose(item.identity))["resource"]
        for key in ("code", "medicationCodeableConcept", "vaccineCode"):
            concept = resource.get(key) or {}
            texts.add(concept.get("text") or "")
            texts.update(c.get("display") or "" for c in concept.get("coding", []))
    return {"texts": sorted(t for t in texts if len(t) >= 8)}


@step
def counts(payload: dict[str, Any]) -> dict[str, Any]:
    """Rows of a few tables (what a refused request must not have added)."""
    from healthspace.messaging.models import Attachment, Message, Thread
    from healthspace.organiser.models import Reading

    return {
        "threads": Thread.objects.count(),
        "messages": Message.objects.count(),
        "attachments": Attachment.objects.count(),
        "readings": Reading.objects.count(),
        "audit_events": AuditEvent.objects.count(),
    }


def main() -> None:
    name = sys.argv[1]
    payload = json.loads(sys.stdin.read() or "{}")
    result = STEPS[name](payload)
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
