"""Items of the SCR that the patient contributed: readings shared with the care team
(patient-recorded Observations) and additional information they added themselves
(communication preferences, access needs, preferences for care).

They live beside the GP's items, under the patient's own data key, so every path that
reads the SCR (the patient's page, staff pages, exports, the FHIR API) shows them and
applies the same access rules; ``origin`` marks them "added by the patient". The callers
(organiser, additions) ask ``access.decide`` and audit in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from healthspace.records import fhir_map
from healthspace.records.fhir_checks import validate_resource
from healthspace.records.importer import item_purpose
from healthspace.records.models import Origin, Patient, ScrItem, ScrItemVersion
from healthspace.vault import services as vault

PATIENT_SOURCE = "urn:healthspace:patient"
# meta.tag on every resource the patient contributed (FHIR: a tag is for the system's
# own bookkeeping; clinicians see the words "added by the patient" from ``origin``).
PATIENT_RECORDED_TAG = {
    "system": "https://healthspace.example/fhir/CodeSystem/provenance",
    "code": "patient-recorded",
    "display": "Recorded by the patient",
}


def _identity(resource_type: str, key: str) -> str:
    return vault.index("scr-item", f"{PATIENT_SOURCE}|{resource_type}|{key}")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def patient_subject(patient_id: uuid.UUID) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


@dataclass(frozen=True)
class PutResult:
    item_id: int
    created: bool
    changed: bool


def patient_item_put(
    *,
    patient_id: uuid.UUID,
    key: str,
    section: str,
    resource: dict[str, Any],
    label: str | None = None,
) -> PutResult:
    """Add or replace one contributed item, validated as strictly as an import.

    ``key`` is the caller's stable id of the thing (``reading:<uuid>``); the FHIR id is
    derived from it. A changed item keeps its old version (ScrItemVersion), as GP items
    do. Runs in the caller's transaction; raises FhirInputError and writes nothing when
    the resource is invalid.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("patient_item_put must run inside the caller's transaction")
    resource_type = resource["resourceType"]
    fhir_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{patient_id}|{key}"))
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if t.get("code") != PATIENT_RECORDED_TAG["code"]]
    meta.update({"source": PATIENT_SOURCE, "tag": [*tags, PATIENT_RECORDED_TAG]})
    resource = {**resource, "id": fhir_id, "meta": meta}
    validate_resource(resource, where=f"patient item {key}")
    identity = _identity(resource_type, key)
    cipher = vault.cipher_for(patient_id=patient_id)
    content = {"resource": resource, "author": label or "The patient", "organisation": None}
    content_hash = vault.index("content", _canonical(content))
    item = (
        ScrItem.objects.select_for_update().filter(patient_id=patient_id, identity=identity).first()
    )
    payload = cipher.seal_json(content, purpose=item_purpose(identity))
    if item is None:
        if not Patient.objects.filter(pk=patient_id).exists():
            raise Patient.DoesNotExist(f"no patient {patient_id}")
        item = ScrItem.objects.create(
            patient_id=patient_id,
            section=section,
            resource_type=resource_type,
            identity=identity,
            origin=Origin.PATIENT,
            content_hash=content_hash,
            source_hash=content_hash,
            recorded_at=fhir_map.recorded_at(resource),
            source_system=PATIENT_SOURCE,
            payload=payload,
        )
        return PutResult(item.pk, created=True, changed=True)
    if item.content_hash == content_hash and item.section == section:
        return PutResult(item.pk, created=False, changed=False)
    ScrItemVersion.objects.create(
        item=item,
        patient_id=patient_id,
        version=item.version,
        content_hash=item.content_hash,
        recorded_at=item.recorded_at,
        source_system=item.source_system,
        payload=item.payload,
    )
    item.version += 1
    item.section = section
    item.content_hash = content_hash
    item.source_hash = content_hash
    item.recorded_at = fhir_map.recorded_at(resource)
    item.payload = payload
    item.save(
        update_fields=[
            "version",
            "section",
            "content_hash",
            "source_hash",
            "recorded_at",
            "payload",
            "updated_at",
        ]
    )
    return PutResult(item.pk, created=False, changed=True)


def patient_item_remove(*, patient_id: uuid.UUID, key: str, resource_type: str) -> bool:
    """Remove a contributed item (the patient stopped sharing it, or removed it) with its
    earlier versions: what the patient takes back is no longer shown to anyone. The
    caller's audit event records that it happened (never what it said)."""
    identity = _identity(resource_type, key)
    deleted, _ = ScrItem.objects.filter(
        patient_id=patient_id, identity=identity, origin=Origin.PATIENT
    ).delete()
    return deleted > 0
