"""Export a patient's whole record as a FHIR R4 Bundle (type collection)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from fhir.resources.R4B.bundle import Bundle

from healthspace.access.actors import Actor
from healthspace.access.policy import Action
from healthspace.core import nhs_numbers
from healthspace.core.clock import now
from healthspace.core.errors import NotFound
from healthspace.records.models import Patient, PatientIdentifier
from healthspace.records.selectors import NOT_FOUND_MESSAGE, scr_for
from healthspace.vault import services as vault


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


def _entry(resource: dict[str, Any], version: int) -> dict[str, Any]:
    meta = {**(resource.get("meta") or {}), "versionId": str(version)}
    resource = {**resource, "meta": meta}
    base = settings.HEALTHSPACE_FHIR_BASE.rstrip("/")
    return {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource}


def export_fhir_bundle(*, actor: Actor, patient_id: uuid.UUID) -> dict[str, Any]:
    """Everything in the patient's SCR, validated against the R4B Bundle model."""
    scr = scr_for(actor=actor, patient_id=patient_id, action=Action.EXPORT_RECORD)
    entries = [_entry(scr.patient_resource, scr.patient_version)]
    for section in scr.sections:
        entries.extend(_entry(row.resource, row.version) for row in section.items)
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now().isoformat()},
        "type": "collection",
        "timestamp": now().isoformat(),
        "entry": entries,
    }
    Bundle.model_validate(bundle)
    return bundle
