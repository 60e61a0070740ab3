"""SCR items, patients and consent as the FHIR resources the API serves (read-only
mapping; pure apart from the settings' base URL).

Items are served as their source sent them, with HealthSpace's own id and meta
(``versionId``, ``lastUpdated``; ``meta.source`` and the patient-recorded tag kept), and
with references pointed at what this server holds: the patient at ``Patient/<id>``, other
items of the same record at their HealthSpace ids. A reference to something not held
here keeps its ``display`` and ``identifier`` and loses the ``reference`` (which would
name a resource on the source's server, not ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from healthspace.access.context import ConsentState
from healthspace.audit.fhir import HS_FHIR
from healthspace.fhir_api import ids
from healthspace.records import fhir_map
from healthspace.records.importer import ODS_SYSTEM
from healthspace.records.patient_items import PATIENT_RECORDED_TAG
from healthspace.vault import services as vault

NOT_HELD = "held by the sending system, not by HealthSpace"
CS_SCR_CONSENT = f"{HS_FHIR}/CodeSystem/scr-consent"


def base() -> str:
    return settings.HEALTHSPACE_FHIR_BASE.rstrip("/")


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def relative_reference(reference: str) -> str | None:
    """``Observation/1``, ``<any base>/Observation/1`` -> ``Observation/1``; else None."""
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha() and parts[-1]:
        if "_history" in parts:
            i = parts.index("_history")
            parts = parts[:i]
            if len(parts) < 2:
                return None
        return f"{parts[-2]}/{parts[-1]}"
    return None


@dataclass
class Copied:
    """A stored resource copied for serving, with the dicts of the copy that hold a
    reference (contained ones, ``#...``, excepted): found in the one walk that copies it,
    so serving a resource walks it once, not three times (docs/performance.md)."""

    resource: dict[str, Any]
    # each dict of the copy that holds a reference, with that reference made relative
    # (``Type/id``, or None when it is not one), read once for resolving and pointing
    references: list[tuple[dict[str, Any], str | None]]

    def relatives(self) -> set[str]:
        """Its relative references (``Type/id``)."""
        return {rel for _, rel in self.references if rel is not None}


def copied(resource: dict[str, Any]) -> Copied:
    found: list[tuple[dict[str, Any], str | None]] = []

    def copy(node: Any) -> Any:
        # a deep copy of JSON data (dicts, lists, strings, numbers, booleans, None): what
        # copy.deepcopy gives for it, several times faster (no memo, no dispatch)
        if isinstance(node, dict):
            out = {
                key: copy(value) if isinstance(value, (dict, list)) else value
                for key, value in node.items()
            }
            ref = out.get("reference")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.append((out, relative_reference(ref)))
            return out
        return [copy(value) if isinstance(value, (dict, list)) else value for value in node]

    return Copied(copy(resource), found)


def identity_of(source_system: str, relative: str) -> str:
    """The item identity a reference names (importer: source | type | logical id)."""
    rtype, _, rid = relative.partition("/")
    return vault.index("scr-item", f"{source_system}|{rtype}|{rid}")


def _strip(node: dict[str, Any], rtype: str | None) -> None:
    node.pop("reference", None)
    if not any(k in node for k in ("display", "identifier")):
        node["display"] = f"{rtype or 'Resource'} {NOT_HELD}"


def _point(
    references: list[tuple[dict[str, Any], str | None]],
    *,
    patient_ref: str | None,
    patient_reference: str,
    resolved: dict[str, str],
) -> None:
    """Point each reference of a copy at what this server holds (see module doc)."""
    for node, rel in references:
        ref = node["reference"]
        if patient_ref is not None and ref == patient_ref:
            node["reference"] = patient_reference
        elif rel is not None and rel in resolved:
            node["reference"] = resolved[rel]
        else:
            _strip(node, rel.split("/")[0] if rel else None)


def served_item(
    copy: Copied,
    *,
    item_pk: int,
    patient_id,
    version: int,
    last_updated: datetime,
    patient_recorded: bool,
    resolved: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The stored resource, ``copied``, as served: our id, meta, and references (see
    module doc). The copy is changed and returned."""
    out = copy.resource
    out["id"] = ids.item_id(item_pk)
    meta = dict(out.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(last_updated)
    if patient_recorded:
        tags = [t for t in meta.get("tag") or [] if t.get("code") != PATIENT_RECORDED_TAG["code"]]
        meta["tag"] = [*tags, PATIENT_RECORDED_TAG]
    out["meta"] = meta
    field = fhir_map.PATIENT_FIELD.get(out.get("resourceType", ""))
    original = out.get(field) if field else None
    patient_ref = original.get("reference") if isinstance(original, dict) else None
    patient_reference = f"Patient/{patient_id}"
    _point(
        copy.references,
        patient_ref=patient_ref,
        patient_reference=patient_reference,
        resolved=resolved or {},
    )
    if field:
        subject: dict[str, Any] = {"reference": patient_reference}
        if isinstance(original, dict) and isinstance(original.get("display"), str):
            subject["display"] = original["display"]
        out[field] = subject
    return out


def served_patient(resource: dict[str, Any], patient) -> dict[str, Any]:
    copy = copied(resource)
    out = copy.resource
    out["id"] = str(patient.id)
    meta = dict(out.get("meta") or {})
    meta.pop("tag", None)
    meta["versionId"] = str(patient.version)
    meta["lastUpdated"] = instant(patient.updated_at)
    out["meta"] = meta
    out.pop("generalPractitioner", None)
    _point(copy.references, patient_ref=None, patient_reference="", resolved={})
    practice = patient.registered_practice
    if practice is not None and practice.ods_code:
        out["generalPractitioner"] = [
            {
                "identifier": {"system": ODS_SYSTEM, "value": practice.ods_code},
                "display": practice.name,
            }
        ]
    return out


# SCR consent states as FHIR Consent. The state itself is carried as a HealthSpace code;
# the provision says what staff may see.
CONSENT_WORDS = {
    ConsentState.IMPLIED: ("permit", "Implied consent: core Summary Care Record shared"),
    ConsentState.CORE_ONLY: ("permit", "Express consent: core Summary Care Record only"),
    ConsentState.CORE_AND_ADDITIONAL: (
        "permit",
        "Express consent: core and additional information shared",
    ),
    ConsentState.DISSENT: ("deny", "Dissent: no Summary Care Record shared"),
    ConsentState.HIDDEN: ("deny", "Record hidden from staff"),
    ConsentState.DELETION_REQUESTED: ("deny", "Deletion requested: hidden from staff"),
    ConsentState.DELETED: ("deny", "Record deleted"),
}


def served_consent(
    *, patient_id, state: ConsentState, version: int, recorded_at: datetime | None
) -> dict[str, Any]:
    """The patient's SCR consent: one Consent per patient (id = the patient's id), each
    ConsentRecord version a version of it; version 0 is the implied default."""
    kind, text = CONSENT_WORDS[state]
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": str(patient_id),
        "meta": {"versionId": str(version)},
        "status": "inactive" if state == ConsentState.DELETED else "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
            {"coding": [{"system": CS_SCR_CONSENT, "code": str(state)}], "text": text},
        ],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"text": "NHS Summary Care Record consent"},
        "provision": {"type": kind},
    }
    if recorded_at is not None:
        resource["meta"]["lastUpdated"] = instant(recorded_at)
        resource["dateTime"] = instant(recorded_at)
    return resource
