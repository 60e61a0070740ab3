"""The International Patient Summary (IPS) of a record: a FHIR document Bundle
(Composition first). Pure: no ORM, no access checks.

Its shape is checked against the R4B models (fhir.resources) by the tests, on every
document they make (portability's test_formats, and every response of the FHIR API's
tests through ``fhir_api.testing.check``), not on every request: the resources in it were
validated when they were imported, and validating the whole Bundle again cost more CPU
than all the rest of a ``$summary`` request (docs/performance.md).

Callers gather what the reader may see, audited (the FHIR API's ``Patient/[id]/$summary``;
the patient's own IPS download), and pass the resources as they serve them: the Patient
and (section, resource) pairs of SCR items, plus the sections the policy withheld, which
the document marks as withheld instead of leaving out (nobody should mistake "withheld"
for "none recorded").

Sections follow the IPS: the three required ones (allergies, medicines, problems) are
always present, with an empty reason when there is nothing to show; immunisations,
results, procedures and the plan of care when there is something.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from healthspace.records import fhir_map

LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
XHTML = "http://www.w3.org/1999/xhtml"


@dataclass(frozen=True)
class IpsSection:
    key: str
    title: str
    loinc: str
    types: tuple[str, ...]
    scr_sections: tuple[str, ...]
    required: bool


SECTIONS: tuple[IpsSection, ...] = (
    IpsSection(
        "allergies",
        "Allergies and intolerances",
        "48765-2",
        ("AllergyIntolerance",),
        ("allergies", "adverse_reactions"),
        True,
    ),
    IpsSection(
        "medications",
        "Medication summary",
        "10160-0",
        ("MedicationStatement", "MedicationRequest"),
        ("medications",),
        True,
    ),
    IpsSection("problems", "Problem list", "11450-4", ("Condition",), ("problems",), True),
    IpsSection(
        "immunisations", "Immunizations", "11369-6", ("Immunization",), ("immunisations",), False
    ),
    IpsSection(
        "results",
        "Results",
        "30954-2",
        ("Observation", "DiagnosticReport"),
        ("results",),
        False,
    ),
    IpsSection(
        "procedures", "History of procedures", "47519-4", ("Procedure",), ("procedures",), False
    ),
    IpsSection("care_plans", "Plan of care", "18776-5", ("CarePlan",), ("care_plans",), False),
)
IPS_TYPES = frozenset(t for s in SECTIONS for t in s.types)


def _div(lines: list[str]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<div xmlns="{XHTML}"><ul>{items}</ul></div>'


def _empty(reason: str, words: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"coding": [{"system": EMPTY_REASON, "code": reason}]},
        {"status": "generated", "div": f'<div xmlns="{XHTML}"><p>{html.escape(words)}</p></div>'},
    )


def _line(resource: dict[str, Any]) -> str:
    view = fhir_map.describe(resource)
    when = fhir_map.recorded_at(resource)
    parts = [view.title]
    if view.status:
        parts.append(view.status)
    if when is not None:
        parts.append(when.date().isoformat())
    for key, value in view.details[:2]:
        parts.append(f"{key}: {value}")
    return " - ".join(parts)


def ips_document(
    *,
    patient: dict[str, Any],
    items: list[tuple[str, dict[str, Any]]],
    withheld: frozenset[str] | set[str] = frozenset(),
    base_url: str,
    timestamp: datetime,
    author_name: str = "HealthSpace",
) -> dict[str, Any]:
    """The IPS document Bundle. ``items`` are (SCR section, resource) as served (ids and
    references already this server's); ``withheld`` names SCR sections not shown."""
    base = base_url.rstrip("/")

    def full_url(resource: dict[str, Any]) -> str:
        return f"{base}/{resource['resourceType']}/{resource['id']}"

    author_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base}|ips-author"))
    author = {"resourceType": "Organization", "id": author_id, "name": author_name}
    author_url = f"urn:uuid:{author_id}"
    composition_id = str(uuid.uuid4())
    patient_url = full_url(patient)
    entries: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    for spec in SECTIONS:
        chosen = [
            r
            for section, r in items
            if section in spec.scr_sections and r["resourceType"] in spec.types
        ]
        section: dict[str, Any] = {
            "title": spec.title,
            "code": {"coding": [{"system": LOINC, "code": spec.loinc}]},
        }
        if chosen:
            section["text"] = {"status": "generated", "div": _div([_line(r) for r in chosen])}
            section["entry"] = [{"reference": full_url(r)} for r in chosen]
            entries.extend({"fullUrl": full_url(r), "resource": r} for r in chosen)
        elif set(spec.scr_sections) & set(withheld):
            if not spec.required:
                continue
            section["emptyReason"], section["text"] = _empty(
                "withheld", "This information is not shared with you."
            )
        elif spec.required:
            section["emptyReason"], section["text"] = _empty(
                "unavailable", "No information recorded."
            )
        else:
            continue
        sections.append(section)
    at = timestamp.isoformat(timespec="seconds")
    composition = {
        "resourceType": "Composition",
        "id": composition_id,
        "status": "final",
        "type": {
            "coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]
        },
        "subject": {"reference": patient_url},
        "date": at,
        "author": [{"reference": author_url}],
        "title": "International Patient Summary",
        "confidentiality": "N",
        "section": sections,
    }
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": at,
        "entry": [
            {"fullUrl": f"urn:uuid:{composition_id}", "resource": composition},
            {"fullUrl": patient_url, "resource": patient},
            {"fullUrl": author_url, "resource": author},
            *entries,
        ],
    }
    return bundle
