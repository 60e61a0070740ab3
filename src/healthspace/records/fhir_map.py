"""How FHIR R4 resources map onto SCR sections, and what of each one a person is shown.

Pure functions over resource dicts (already validated by ``fhir_checks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from healthspace.records.models import Section

# The field that names the patient, per resource type.
PATIENT_FIELD: dict[str, str] = {
    "AllergyIntolerance": "patient",
    "AdverseEvent": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "Condition": "subject",
    "Observation": "subject",
    "DiagnosticReport": "subject",
    "Immunization": "patient",
    "Procedure": "subject",
    "Encounter": "subject",
    "CarePlan": "subject",
    "CareTeam": "subject",
}
# Resources about the people treating the patient; linked to the bundle's one patient.
PROFESSIONAL_TYPES = ("Practitioner", "PractitionerRole")
SUPPORTED_TYPES = ("Patient", *PATIENT_FIELD, *PROFESSIONAL_TYPES)


def section_for(resource: dict[str, Any]) -> str | None:
    rtype = resource.get("resourceType")
    if rtype == "AllergyIntolerance":
        # SCR keeps allergies apart from other adverse reactions (intolerances).
        return (
            Section.ADVERSE_REACTIONS
            if resource.get("type") == "intolerance"
            else Section.ALLERGIES
        )
    return {
        "AdverseEvent": Section.ADVERSE_REACTIONS,
        "MedicationRequest": Section.MEDICATIONS,
        "MedicationStatement": Section.MEDICATIONS,
        "Condition": Section.PROBLEMS,
        "Observation": Section.RESULTS,
        "DiagnosticReport": Section.RESULTS,
        "Immunization": Section.IMMUNISATIONS,
        "Procedure": Section.PROCEDURES,
        "Encounter": Section.ENCOUNTERS,
        "CarePlan": Section.CARE_PLANS,
        "CareTeam": Section.PROFESSIONALS,
        "Practitioner": Section.PROFESSIONALS,
        "PractitionerRole": Section.PROFESSIONALS,
    }.get(rtype or "")


def patient_reference(resource: dict[str, Any]) -> dict[str, Any] | None:
    name = PATIENT_FIELD.get(resource.get("resourceType", ""))
    ref = resource.get(name) if name else None
    return ref if isinstance(ref, dict) else None


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None


def author_reference(resource: dict[str, Any]) -> dict[str, Any] | None:
    """Who recorded or is responsible for the item, as a Reference."""
    r = resource
    rtype = r.get("resourceType")
    candidates: list[Any] = []
    if rtype in ("AllergyIntolerance", "Condition"):
        candidates = [r.get("recorder"), r.get("asserter")]
    elif rtype == "MedicationRequest":
        candidates = [r.get("requester"), r.get("recorder")]
    elif rtype == "MedicationStatement":
        candidates = [r.get("informationSource")]
    elif rtype in ("Observation", "DiagnosticReport"):
        candidates = [_first(r.get("performer")), _first(r.get("resultsInterpreter"))]
    elif rtype in ("Immunization", "Procedure"):
        performer = _first(r.get("performer"))
        candidates = [
            performer.get("actor") if isinstance(performer, dict) else None,
            r.get("recorder"),
        ]
    elif rtype == "Encounter":
        participant = _first(r.get("participant"))
        candidates = [
            participant.get("individual") if isinstance(participant, dict) else None,
            r.get("serviceProvider"),
        ]
    elif rtype == "CarePlan":
        candidates = [r.get("author")]
    elif rtype == "CareTeam":
        candidates = [_first(r.get("managingOrganization"))]
    elif rtype == "AdverseEvent":
        candidates = [r.get("recorder")]
    return next((c for c in candidates if isinstance(c, dict)), None)


def organisation_reference(resource: dict[str, Any]) -> dict[str, Any] | None:
    rtype = resource.get("resourceType")
    if rtype == "Encounter":
        return resource.get("serviceProvider")
    if rtype == "Immunization":
        performer = _first(resource.get("performer"))
        return performer.get("actor") if isinstance(performer, dict) else None
    return None


_DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("recordedDate", "onsetDateTime", "lastOccurrence"),
    "AdverseEvent": ("recordedDate", "date"),
    "MedicationRequest": ("authoredOn",),
    "MedicationStatement": ("dateAsserted", "effectiveDateTime", "effectivePeriod.start"),
    "Condition": ("recordedDate", "onsetDateTime", "onsetPeriod.start"),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
    "Encounter": ("period.start",),
    "CarePlan": ("created", "period.start"),
    "CareTeam": ("period.start",),
    "Flag": ("period.start",),  # what the patient added: since when it applies
}


def _path(resource: dict[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def parse_fhir_datetime(value: str | None) -> datetime | None:
    """FHIR dates may be partial (YYYY, YYYY-MM, YYYY-MM-DD); treat them as the start, in UTC."""
    if not value or not isinstance(value, str):
        return None
    text = value
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    if len(text) == 10:
        text += "T00:00:00+00:00"
    parsed = parse_datetime(text)
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recorded_at(resource: dict[str, Any]) -> datetime | None:
    for dotted in _DATE_FIELDS.get(resource.get("resourceType", ""), ()):
        parsed = parse_fhir_datetime(_path(resource, dotted))
        if parsed:
            return parsed
    return None


def codeable_text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return coding["display"]
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return coding["code"]
    return None


def first_code(concept: Any) -> tuple[str, str] | None:
    """(system, code) of the first coding, for display beside the text."""
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return coding.get("system") or "", coding["code"]
    return None


CODE_SYSTEM_NAMES = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "https://dmd.nhs.uk": "dm+d",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
}


# HealthSpace's own code systems: shown in words only, never as "code ...".
LOCAL_CODE_SYSTEMS = "https://healthspace.example/fhir/CodeSystem/"


def human_name(resource: dict[str, Any]) -> str | None:
    names = resource.get("name")
    if isinstance(names, str):  # Organization.name
        return names
    if not isinstance(names, list) or not names:
        return None
    official = next((n for n in names if n.get("use") == "official"), names[0])
    if official.get("text"):
        return official["text"]
    parts = [
        *(official.get("prefix") or []),
        *(official.get("given") or []),
        official.get("family"),
    ]
    return " ".join(p for p in parts if p) or None


def _quantity(q: Any) -> str | None:
    if not isinstance(q, dict) or q.get("value") is None:
        return None
    unit = q.get("unit") or q.get("code") or ""
    return (
        f"{q['value']:g} {unit}".strip()
        if isinstance(q["value"], float)
        else f"{q['value']} {unit}".strip()
    )


@dataclass
class ItemView:
    """What a person is shown of one item: plain strings, nothing clinical left sealed."""

    title: str
    code: str | None = None
    status: str | None = None
    details: list[tuple[str, str]] = field(default_factory=list)


def _status_text(resource: dict[str, Any]) -> str | None:
    for key in ("clinicalStatus", "verificationStatus"):
        text = codeable_text(resource.get(key))
        if text:
            return text
    status = resource.get("status")
    return status.replace("-", " ").capitalize() if isinstance(status, str) else None


def medication_course(resource: dict[str, Any]) -> str:
    """Repeat or acute, from what the source says; never guessed."""
    course = first_code(resource.get("courseOfTherapyType"))
    if course and course[1] == "continuous":
        return "Repeat"
    if course and course[1] == "acute":
        return "Acute"
    repeats = (resource.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed")
    if isinstance(repeats, int) and repeats > 0:
        return "Repeat"
    for ext in resource.get("extension") or []:
        if "MedicationRepeatInformation" in (ext.get("url") or ""):
            return "Repeat"
    return "Not recorded"


# Source systems as a patient should read them; other sources are shown as sent.
SOURCE_LABELS = {
    "urn:healthspace:file-import": "Imported from a file",
    "urn:healthspace:synthetic": "Synthetic demo data",
    "urn:healthspace:patient": "Added by the patient in HealthSpace",
}


def source_label(source_system: str) -> str:
    return SOURCE_LABELS.get(source_system, source_system)


def entered_in_error(resource: dict[str, Any]) -> bool:
    """The source (or a clinician's correction) says the item was recorded by mistake:
    ``status`` for most resources, ``verificationStatus`` for allergies and problems."""
    if resource.get("status") == "entered-in-error":
        return True
    verification = resource.get("verificationStatus")
    codings = verification.get("coding") if isinstance(verification, dict) else None
    return any(isinstance(c, dict) and c.get("code") == "entered-in-error" for c in codings or [])


def medication_is_current(resource: dict[str, Any]) -> bool:
    return resource.get("status") in ("active", "on-hold", "draft", "intended")


def describe(resource: dict[str, Any]) -> ItemView:
    rtype = resource.get("resourceType", "")
    concept: Any = resource.get("code")
    if rtype in ("MedicationRequest", "MedicationStatement"):
        concept = resource.get("medicationCodeableConcept")
    elif rtype == "Immunization":
        concept = resource.get("vaccineCode")
    elif rtype == "Encounter":
        concept = _first(resource.get("type")) or resource.get("class")
    elif rtype == "CarePlan":
        concept = _first(resource.get("category"))
    elif rtype == "AdverseEvent":
        concept = resource.get("event")
    title = codeable_text(concept)
    if rtype in PROFESSIONAL_TYPES:
        title = human_name(resource)
    elif rtype == "CareTeam":
        title = resource.get("name") or codeable_text(_first(resource.get("category")))
    elif rtype == "MedicationRequest" and not title:
        ref = resource.get("medicationReference") or {}
        title = ref.get("display")
    code = first_code(concept)
    if code and code[0].startswith(LOCAL_CODE_SYSTEMS):
        code = None  # HealthSpace's own codes (what the patient added) say nothing more
    view = ItemView(
        title=title or f"{rtype} (no description recorded)",
        code=f"{CODE_SYSTEM_NAMES.get(code[0], code[0] or 'code')} {code[1]}" if code else None,
        status=_status_text(resource),
    )
    d = view.details
    if rtype in ("MedicationRequest", "MedicationStatement"):
        d.append(("Repeat or acute", medication_course(resource)))
        dosage = _first(resource.get("dosageInstruction") or resource.get("dosage"))
        if isinstance(dosage, dict) and dosage.get("text"):
            d.append(("Dosage", dosage["text"]))
        reason = codeable_text(_first(resource.get("reasonCode")))
        if reason:
            d.append(("Reason", reason))
    elif rtype == "AllergyIntolerance":
        if resource.get("criticality"):
            d.append(("Criticality", resource["criticality"].replace("-", " ")))
        for reaction in resource.get("reaction") or []:
            manifestations = ", ".join(
                t for t in (codeable_text(m) for m in reaction.get("manifestation") or []) if t
            )
            if manifestations:
                severity = reaction.get("severity")
                d.append(("Reaction", manifestations + (f" ({severity})" if severity else "")))
    elif rtype == "Observation":
        value = (
            _quantity(resource.get("valueQuantity"))
            or codeable_text(resource.get("valueCodeableConcept"))
            or resource.get("valueString")
        )
        if value is not None:
            d.append(("Result", str(value)))
        for comp in resource.get("component") or []:
            comp_value = _quantity(comp.get("valueQuantity")) or codeable_text(
                comp.get("valueCodeableConcept")
            )
            if comp_value:
                d.append((codeable_text(comp.get("code")) or "Component", comp_value))
    elif rtype == "Immunization":
        if resource.get("lotNumber"):
            d.append(("Batch", resource["lotNumber"]))
    elif rtype == "Encounter":
        reason = codeable_text(_first(resource.get("reasonCode")))
        if reason:
            d.append(("Reason", reason))
    elif rtype == "CarePlan":
        for activity in (resource.get("activity") or [])[:5]:
            text = codeable_text((activity.get("detail") or {}).get("code"))
            if text:
                d.append(("Activity", text))
    elif rtype == "Practitioner":
        qual = codeable_text((_first(resource.get("qualification")) or {}).get("code"))
        if qual:
            d.append(("Qualification", qual))
    elif rtype == "CareTeam":
        for participant in (resource.get("participant") or [])[:5]:
            member = (participant.get("member") or {}).get("display")
            role = codeable_text(_first(participant.get("role")))
            if member or role:
                d.append(("Member", " - ".join(x for x in (member, role) if x)))
    return view
