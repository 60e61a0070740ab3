"""Import FHIR R4 Bundles, single resources and NDJSON into patients' SCRs.

A *unit* is one file: a Bundle (any type), a single resource, or an NDJSON file. Every
resource of a unit is validated before anything is written, and a unit is written in
one transaction, so a unit with one bad resource changes nothing. Imports are
idempotent: each item is keyed by (source system, resource type, logical id); the same
content again changes nothing, changed content becomes a new version.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action, Decision, decide
from healthspace.audit.services import audit_record
from healthspace.core import nhs_numbers
from healthspace.records import fhir_map
from healthspace.records.fhir_checks import (
    FhirInputError,
    parse_json_bytes,
    validate_bundle,
    validate_resource,
)
from healthspace.records.models import (
    Organisation,
    Patient,
    PatientIdentifier,
    ScrItem,
    ScrItemVersion,
)
from healthspace.vault import services as vault
from healthspace.vault.crypto import PatientCipher

DEFAULT_SOURCE = "urn:healthspace:file-import"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ID_NAMESPACE = uuid.UUID("6f1d7a52-4c55-4c1b-9d8e-2a36b1f7f0a1")
PATIENT_PURPOSE = "patient"
MAX_FILE_BYTES = 200 * 1024 * 1024


def item_purpose(identity: str) -> str:
    return f"scr-item:{identity}"


@dataclass
class ImportReport:
    files_ok: int = 0
    files_failed: int = 0
    patients_created: int = 0
    patients_updated: int = 0
    items_created: Counter[str] = field(default_factory=Counter)
    items_updated: Counter[str] = field(default_factory=Counter)
    items_unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    patient_ids: set[uuid.UUID] = field(default_factory=set)
    # patients this unit created (their keys are discarded if the unit rolls back)
    new_patient_ids: list[uuid.UUID] = field(default_factory=list, repr=False)

    def merge(self, other: ImportReport, *, skipped: bool = True, unchanged: bool = True) -> None:
        self.patients_created += other.patients_created
        self.patients_updated += other.patients_updated
        self.items_created.update(other.items_created)
        self.items_updated.update(other.items_updated)
        if unchanged:
            self.items_unchanged += other.items_unchanged
        if skipped:
            self.skipped.update(other.skipped)
        self.patient_ids |= other.patient_ids

    @property
    def ok(self) -> bool:
        return self.files_failed == 0

    def lines(self) -> list[str]:
        out = [
            f"files: {self.files_ok} imported, {self.files_failed} failed",
            f"patients: {self.patients_created} new, {self.patients_updated} updated",
        ]
        sections = sorted(set(self.items_created) | set(self.items_updated))
        for section in sections:
            out.append(
                f"  {section}: {self.items_created[section]} new, "
                f"{self.items_updated[section]} new versions"
            )
        out.append(f"items unchanged: {self.items_unchanged}")
        for reason, count in sorted(self.skipped.items()):
            out.append(f"skipped {count}: {reason}")
        out.extend(f"ERROR {e}" for e in self.errors)
        return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------- reading files


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".ndjson")
            )
        else:
            yield path


def _entries_of(path: Path, data: bytes) -> tuple[list[tuple[str | None, dict[str, Any]]], dict]:
    """Parse one file into (fullUrl, resource) entries; returns the Bundle (or {}) too."""
    where = path.name
    if path.suffix == ".ndjson":
        entries = []
        for lineno, line in enumerate(data.splitlines(), 1):
            if line.strip():
                resource = parse_json_bytes(line, where=f"{where} line {lineno}")
                entries.append((None, resource))
        return entries, {}
    document = parse_json_bytes(data, where=where)
    if not isinstance(document, dict) or "resourceType" not in document:
        raise FhirInputError(f"{where}: not a FHIR resource (no resourceType)")
    if document["resourceType"] != "Bundle":
        return [(None, document)], {}
    validate_bundle(document, where=where)
    entries = []
    for entry in document.get("entry") or []:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            entries.append((entry.get("fullUrl"), entry["resource"]))
    return entries, document


# ---------------------------------------------------------------- planning (pure)


@dataclass
class PatientPlan:
    key: str  # unit-local key
    resource: dict[str, Any]
    nhs_number: str | None
    lookups: list[str]
    source_lookup: str | None
    source: str = DEFAULT_SOURCE
    practice: dict[str, str] | None = None
    existing_id: uuid.UUID | None = None  # a patient already in the database, not in the file


@dataclass
class ItemPlan:
    patient_key: str
    section: str
    resource: dict[str, Any]
    identity: str
    labels: dict[str, str | None]
    source: str


class Unit:
    """One file's resources, with reference resolution inside it."""

    def __init__(
        self,
        entries: list[tuple[str | None, dict[str, Any]]],
        source: str,
        where: str,
        *,
        explicit: bool = True,
    ):
        self.entries = entries
        self.source = source
        self.explicit = explicit
        self.where = where
        self.by_ref: dict[str, dict[str, Any]] = {}
        for full_url, resource in entries:
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if full_url:
                self.by_ref[full_url] = resource
            if rtype and rid:
                self.by_ref[f"{rtype}/{rid}"] = resource
                if full_url and full_url.endswith(f"/{rtype}/{rid}"):
                    continue
        # logical ids for resources that arrive without one
        for full_url, resource in entries:
            if not resource.get("id"):
                if full_url and full_url.startswith("urn:uuid:"):
                    resource["id"] = full_url.removeprefix("urn:uuid:")
                else:
                    resource["id"] = str(uuid.uuid5(ID_NAMESPACE, source + _canonical(resource)))

    def source_of(self, resource: dict[str, Any]) -> str:
        """The sending system: as given on the command line, else the resource's meta.source
        (kept through export and re-import), else the unit's default."""
        if self.explicit:
            return self.source
        meta_source = (resource.get("meta") or {}).get("source")
        return meta_source if isinstance(meta_source, str) and meta_source else self.source

    def resolve(self, ref: Any, holder: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        target = ref["reference"]
        if target.startswith("#") and holder is not None:
            for contained in holder.get("contained") or []:
                if contained.get("id") == target[1:]:
                    return contained
            return None
        if target in self.by_ref:
            return self.by_ref[target]
        # absolute RESTful reference to a resource we hold under its relative form
        parts = target.rstrip("/").split("/")
        if len(parts) >= 2:
            return self.by_ref.get(f"{parts[-2]}/{parts[-1]}")
        return None

    def label_of(self, ref: Any, holder: dict[str, Any]) -> str | None:
        target = self.resolve(ref, holder)
        if target is not None:
            name = fhir_map.human_name(target)
            if name:
                return name
        return ref.get("display") if isinstance(ref, dict) else None


def _nhs_number_of(resource: dict[str, Any]) -> str | None:
    for ident in resource.get("identifier") or []:
        if ident.get("system") == nhs_numbers.NHS_NUMBER_SYSTEM and ident.get("value"):
            return nhs_numbers.normalise(ident["value"])
    return None


def _practice_of(unit: Unit, patient: dict[str, Any]) -> dict[str, str] | None:
    for ref in patient.get("generalPractitioner") or []:
        target = unit.resolve(ref, patient)
        ident = (ref.get("identifier") or {}) if isinstance(ref, dict) else {}
        if target is not None and target.get("resourceType") == "Organization":
            idents = target.get("identifier") or []
            ods = next((i["value"] for i in idents if i.get("system") == ODS_SYSTEM), None)
            first = (ods and {"system": ODS_SYSTEM, "value": ods}) or (
                idents[0] if idents else None
            )
            return {
                "ods": ods or "",
                "name": target.get("name") or (ref.get("display") or "Unnamed organisation"),
                "system": (first or {}).get("system") or unit.source,
                "value": (first or {}).get("value") or target["id"],
            }
        if ident.get("system") == ODS_SYSTEM and ident.get("value"):
            return {
                "ods": ident["value"],
                "name": ref.get("display") or ident["value"],
                "system": ODS_SYSTEM,
                "value": ident["value"],
            }
    return None


def _plan_patient(unit: Unit, resource: dict[str, Any], key: str, assign: bool) -> PatientPlan:
    where = f"{unit.where} Patient/{resource.get('id')}"
    nhs = _nhs_number_of(resource)
    source_lookup = None
    if not key.startswith("#"):
        source_lookup = vault.index(
            "source-id", f"{unit.source_of(resource)}|Patient|{resource['id']}"
        )
    if nhs is not None and not nhs_numbers.is_valid(nhs):
        raise FhirInputError(f"{where}: NHS number fails its check digit")
    if nhs is None:
        if not assign:
            raise FhirInputError(
                f"{where}: has no NHS number (identifier system {nhs_numbers.NHS_NUMBER_SYSTEM}); "
                "for test data such as Synthea, import with --assign-nhs-numbers"
            )
        if source_lookup is None:
            raise FhirInputError(f"{where}: contained patient without an NHS number")
    lookups = []
    for ident in resource.get("identifier") or []:
        if ident.get("system") and ident.get("value"):
            lookups.append(vault.index("identifier", f"{ident['system']}|{ident['value']}"))
    return PatientPlan(
        key=key,
        resource=resource,
        nhs_number=nhs,
        lookups=lookups,
        source_lookup=source_lookup,
        source=unit.source_of(resource),
        practice=_practice_of(unit, resource),
    )


def _normalise(unit: Unit, resource: dict[str, Any]) -> dict[str, Any]:
    """Point references held in this unit at ``Type/id`` and inline referenced Medications."""

    def copy(node: Any, rewrite: bool) -> Any:
        # a deep copy (the caller's resource stays as read) that rewrites on the way;
        # contained resources are copied as they are
        if isinstance(node, dict):
            out = {k: copy(v, rewrite and k != "contained") for k, v in node.items()}
            ref = out.get("reference")
            if rewrite and isinstance(ref, str) and not ref.startswith("#"):
                target = unit.resolve(out)
                if target is not None:
                    out["reference"] = f"{target['resourceType']}/{target['id']}"
            return out
        if isinstance(node, list):
            return [copy(v, rewrite) for v in node]
        return node

    out = copy(resource, True)
    med_ref = out.get("medicationReference")
    if isinstance(med_ref, dict):
        medication = unit.resolve(resource.get("medicationReference"), resource)
        if medication is not None and medication.get("resourceType") == "Medication":
            contained = [c for c in out.get("contained") or [] if c.get("id") != medication["id"]]
            contained.append(medication)
            out["contained"] = contained
            out["medicationReference"] = {**med_ref, "reference": f"#{medication['id']}"}
    meta = dict(out.get("meta") or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    meta["source"] = unit.source_of(resource)
    out["meta"] = meta
    return out


def plan_unit(
    entries: list[tuple[str | None, dict[str, Any]]],
    *,
    where: str,
    source: str | None,
    assign_nhs_numbers: bool,
    report: ImportReport,
    context: list[tuple[str | None, dict[str, Any]]] = (),  # type: ignore[assignment]
    known_patient: Callable[..., uuid.UUID | None] | None = None,
    one_patient: bool | None = None,
) -> tuple[list[PatientPlan], list[ItemPlan], Counter[str]]:
    """Validate ``entries`` and plan what to write.

    The bulk importer (``records.bulk``) plans a long NDJSON file in pieces: ``context``
    are resources of the same file already validated and planned with an earlier piece,
    there only so references to them resolve; ``known_patient`` replaces the database
    look-up of a patient outside the file; ``one_patient`` says whether the whole file is
    one patient's record (default: this piece holds exactly one patient)."""
    for index, (full_url, resource) in enumerate(entries):
        label = f"{resource.get('resourceType', '?')}/{resource.get('id', full_url or index)}"
        validate_resource(resource, where=f"{where} {label}")

    unit_source = source or DEFAULT_SOURCE
    unit = Unit([*context, *entries], unit_source, where, explicit=source is not None)
    find_known = known_patient or _known_patient
    skipped: Counter[str] = Counter()
    patients: dict[Any, PatientPlan] = {}
    for _, resource in entries:
        if resource.get("resourceType") == "Patient":
            patients[id(resource)] = _plan_patient(
                unit, resource, f"Patient/{resource['id']}", assign_nhs_numbers
            )

    items: list[ItemPlan] = []
    professionals = []
    for _, resource in entries:
        rtype = resource["resourceType"]
        if rtype == "Patient":
            continue
        if _account_own(resource):
            # a patient's own organiser readings and messages in a HealthSpace export
            skipped[f"{rtype}: the account's own data, not part of the Summary Care Record"] += 1
            continue
        section = fhir_map.section_for(resource)
        if section is None:
            skipped[f"{rtype}: not part of the Summary Care Record"] += 1
            continue
        if rtype in fhir_map.PROFESSIONAL_TYPES:
            professionals.append((section, resource))
            continue
        ref = fhir_map.patient_reference(resource)
        target = unit.resolve(ref, resource)
        if target is None:
            known = find_known(unit, ref, resource)
            if known is None:
                skipped[f"{rtype}: {PATIENT_NOT_FOUND}"] += 1
                continue
            key = f"db:{known}"
            patients.setdefault(key, PatientPlan(key, {}, None, [], None, existing_id=known))
            items.append(_plan_item(unit, resource, section, key))
            continue
        if target.get("resourceType") != "Patient":
            skipped[f"{rtype}: its subject is not a patient"] += 1
            continue
        if id(target) not in patients:  # a contained Patient (e.g. NHS Immunisation API)
            if not _nhs_number_of(target):
                skipped[f"{rtype}: contained patient has no NHS number"] += 1
                continue
            patients[id(target)] = _plan_patient(
                unit, target, f"#{resource['id']}/{target.get('id')}", assign_nhs_numbers
            )
        items.append(_plan_item(unit, resource, section, patients[id(target)].key))
    if professionals:
        if (len(patients) == 1) if one_patient is None else one_patient:
            key = next(iter(patients.values())).key
            items.extend(_plan_item(unit, r, s, key) for s, r in professionals)
        else:
            for _, resource in professionals:
                skipped[f"{resource['resourceType']}: file is not one patient's record"] += 1
    return list(patients.values()), items, skipped


PATIENT_NOT_FOUND = "its patient is neither in the file nor in the database"
ACCOUNT_OWN_TAG = "account-own-data"  # portability.services.PORTAL_TAG


def _account_own(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(isinstance(t, dict) and t.get("code") == ACCOUNT_OWN_TAG for t in tags)


def _known_patient(
    unit: Unit, ref: dict[str, Any] | None, holder: dict[str, Any]
) -> uuid.UUID | None:
    """A patient imported earlier, by ``Patient/<id>`` from the same source or by NHS number."""
    if not isinstance(ref, dict):
        return None
    lookups = []
    reference = ref.get("reference")
    if (
        isinstance(reference, str)
        and reference.startswith("Patient/")
        and reference.count("/") == 1
    ):
        lookups.append(
            vault.index("source-id", f"{unit.source_of(holder)}|{reference.replace('/', '|', 1)}")
        )
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
        lookups.append(vault.index("identifier", f"{ident['system']}|{ident['value']}"))
    if not lookups:
        return None
    found = {
        pid
        for pid in PatientIdentifier.objects.filter(lookup__in=lookups).values_list(
            "patient_id", flat=True
        )
    }
    return found.pop() if len(found) == 1 else None


def _plan_item(unit: Unit, resource: dict[str, Any], section: str, patient_key: str) -> ItemPlan:
    labels = {
        "author": unit.label_of(fhir_map.author_reference(resource), resource),
        "organisation": unit.label_of(fhir_map.organisation_reference(resource), resource),
    }
    if resource.get("medicationReference"):
        labels["medication"] = unit.label_of(resource["medicationReference"], resource)
        target = unit.resolve(resource["medicationReference"], resource)
        if target is not None:
            labels["medication"] = (
                fhir_map.codeable_text(target.get("code")) or labels["medication"]
            )
    source = unit.source_of(resource)
    identity = vault.index("scr-item", f"{source}|{resource['resourceType']}|{resource['id']}")
    return ItemPlan(patient_key, section, _normalise(unit, resource), identity, labels, source)


# ---------------------------------------------------------------- writing (one transaction)


SYSTEM_IMPORTER = Actor.system("import")


def _find_patient(plan: PatientPlan) -> Patient | None:
    lookups = [x for x in [plan.source_lookup, *plan.lookups] if x]
    by_lookup = {
        row.patient_id
        for row in PatientIdentifier.objects.filter(lookup__in=lookups).only("patient_id")
    }
    by_nhs = (
        set(Patient.objects.filter(nhs_number=plan.nhs_number).values_list("id", flat=True))
        if plan.nhs_number
        else set()
    )
    if by_nhs and by_lookup and by_nhs != by_lookup:
        raise FhirInputError(
            f"{plan.key}: NHS number and identifiers point at different patients; not merged"
        )
    found = by_nhs or by_lookup
    if len(found) > 1:
        raise FhirInputError(f"{plan.key}: identifiers match more than one patient; not merged")
    return Patient.objects.select_for_update(no_key=True).get(pk=found.pop()) if found else None


def _practice(plan: PatientPlan) -> Organisation | None:
    info = plan.practice
    if not info:
        return None
    org, _ = Organisation.objects.get_or_create(
        identifier_system=info["system"],
        identifier_value=info["value"],
        defaults={"name": info["name"], "ods_code": info["ods"] or None},
    )
    return org


def _write_patient(plan: PatientPlan, report: ImportReport) -> tuple[Patient, PatientCipher]:
    source = plan.source
    if plan.existing_id is not None:
        patient = Patient.objects.get(pk=plan.existing_id)
        return patient, vault.cipher_for(patient_id=patient.id)
    patient = _find_patient(plan)
    resource = _normalise(Unit([], source, ""), plan.resource)  # meta.source = plan's source
    if patient is None:
        nhs = plan.nhs_number
        attempt = 0
        while nhs is None or Patient.objects.filter(nhs_number=nhs).exists():
            # seeded by the plain source identity: the same test data gets the same numbers
            # on every installation (the demo logins' NHS numbers are stable)
            seed = f"{plan.source}|Patient|{plan.resource.get('id')}"
            nhs = nhs_numbers.synthetic_for(seed, attempt=attempt)
            attempt += 1
        resource = _with_nhs_number(resource, nhs)
        patient = Patient(nhs_number=nhs, source_system=source)
        report.new_patient_ids.append(patient.id)
        cipher = vault.datakey_create(patient_id=patient.id)
        patient.resource = cipher.seal_json(resource, purpose=PATIENT_PURPOSE)
        patient.content_hash = vault.index("content", _canonical(resource))
        patient.birth_date = _birth_date(resource)
        patient.registered_practice = _practice(plan)
        patient.save()
        report.patients_created += 1
    else:
        cipher = vault.cipher_for(patient_id=patient.id)
        resource = _with_nhs_number(resource, patient.nhs_number)
        content_hash = vault.index("content", _canonical(resource))
        if content_hash != patient.content_hash:
            patient.resource = cipher.seal_json(resource, purpose=PATIENT_PURPOSE)
            patient.content_hash = content_hash
            patient.version += 1
            patient.birth_date = _birth_date(resource)
            patient.registered_practice = _practice(plan) or patient.registered_practice
            patient.source_system = source
            patient.save()
            report.patients_updated += 1
    lookups = {x for x in [plan.source_lookup, *plan.lookups] if x}
    lookups.add(vault.index("identifier", f"{nhs_numbers.NHS_NUMBER_SYSTEM}|{patient.nhs_number}"))
    existing = dict(
        PatientIdentifier.objects.filter(lookup__in=lookups).values_list("lookup", "patient_id")
    )
    if any(pid != patient.id for pid in existing.values()):
        raise FhirInputError(f"{plan.key}: an identifier already belongs to another patient")
    PatientIdentifier.objects.bulk_create(
        [PatientIdentifier(patient=patient, lookup=x) for x in sorted(lookups - set(existing))]
    )
    return patient, cipher


def _birth_date(resource: dict[str, Any]) -> str | None:
    value = resource.get("birthDate")
    return value if isinstance(value, str) and len(value) == 10 else None


def _with_nhs_number(resource: dict[str, Any], nhs: str) -> dict[str, Any]:
    idents = list(resource.get("identifier") or [])
    if not any(i.get("system") == nhs_numbers.NHS_NUMBER_SYSTEM for i in idents):
        idents.insert(0, {"system": nhs_numbers.NHS_NUMBER_SYSTEM, "value": nhs})
    return {**resource, "identifier": idents}


def _write_items(
    patient: Patient,
    cipher: PatientCipher,
    plans: list[ItemPlan],
    report: ImportReport,
) -> None:
    existing = {
        row["identity"]: row
        for row in ScrItem.objects.filter(
            patient=patient, identity__in=[p.identity for p in plans]
        ).values("id", "identity", "content_hash", "source_hash", "version")
    }
    new_rows: list[ScrItem] = []
    changed: list[tuple[ItemPlan, dict[str, Any], str]] = []
    for plan in plans:
        content = {"resource": plan.resource, **plan.labels}
        content_hash = vault.index("content", _canonical(content))
        row = existing.get(plan.identity)
        if row is None:
            new_rows.append(
                ScrItem(
                    patient=patient,
                    section=plan.section,
                    resource_type=plan.resource["resourceType"],
                    identity=plan.identity,
                    content_hash=content_hash,
                    source_hash=content_hash,
                    recorded_at=fhir_map.recorded_at(plan.resource),
                    source_system=plan.source,
                    payload=cipher.seal_json(content, purpose=item_purpose(plan.identity)),
                )
            )
            report.items_created[plan.section] += 1
        elif content_hash not in (row["content_hash"], row["source_hash"]):
            # new content from the source (the same content as before an amendment in
            # HealthSpace is not new: the correction stands)
            changed.append((plan, content, content_hash))
            report.items_updated[plan.section] += 1
        else:
            report.items_unchanged += 1
    ScrItem.objects.bulk_create(new_rows, batch_size=500)
    if changed:
        current = {
            item.identity: item
            for item in ScrItem.objects.select_for_update().filter(
                patient=patient, identity__in=[p.identity for p, _, _ in changed]
            )
        }
        ScrItemVersion.objects.bulk_create(
            [
                ScrItemVersion(
                    item=item,
                    patient=patient,
                    version=item.version,
                    content_hash=item.content_hash,
                    recorded_at=item.recorded_at,
                    source_system=item.source_system,
                    payload=item.payload,
                )
                for item in current.values()
            ],
            batch_size=500,
        )
        for plan, content, content_hash in changed:
            item = current[plan.identity]
            item.version += 1
            item.section = plan.section
            item.content_hash = content_hash
            item.source_hash = content_hash
            item.recorded_at = fhir_map.recorded_at(plan.resource)
            item.source_system = plan.source
            item.payload = cipher.seal_json(content, purpose=item_purpose(plan.identity))
        ScrItem.objects.bulk_update(
            list(current.values()),
            [
                "version",
                "section",
                "content_hash",
                "source_hash",
                "recorded_at",
                "source_system",
                "payload",
            ],
            batch_size=500,
        )


def import_entries(
    entries: list[tuple[str | None, dict[str, Any]]],
    *,
    where: str,
    source: str | None = None,
    assign_nhs_numbers: bool = False,
    actor: Actor = SYSTEM_IMPORTER,
    report: ImportReport | None = None,
    context: AccessContext | None = None,
    before_write: Callable[[list[PatientPlan], list[ItemPlan], Counter[str]], None] | None = None,
) -> ImportReport:
    """Validate, plan and write one unit atomically. Raises FhirInputError; writes nothing then.

    ``context`` is what the caller gathered for ``decide`` (the FHIR API: the token's
    scopes). ``before_write`` sees the plan inside the unit's transaction, before any row
    is written, and raises to refuse it (the FHIR API: a feed writes only its own
    organisation's registered patients)."""
    from healthspace.ops import lifecycle

    lifecycle.refuse_writes("importing records", fresh=False)  # the service is closing
    report = report if report is not None else ImportReport()
    decision = decide(actor, Action.IMPORT_RECORDS, None, context=context)
    if not decision.allowed:
        raise FhirInputError(f"{where}: not allowed to import ({decision.reason})")
    scratch = ImportReport()
    patient_plans, item_plans, skipped = plan_unit(
        entries, where=where, source=source, assign_nhs_numbers=assign_nhs_numbers, report=scratch
    )
    try:
        return _write_unit(
            patient_plans,
            item_plans,
            skipped,
            scratch,
            report,
            actor=actor,
            decision=decision,
            before_write=before_write,
        )
    except BaseException:
        # the unit rolled back: the keys made for its new patients open nothing now
        vault.datakeys_discard(subject_ids=scratch.new_patient_ids)
        raise


def _write_unit(
    patient_plans: list[PatientPlan],
    item_plans: list[ItemPlan],
    skipped: Counter[str],
    scratch: ImportReport,
    report: ImportReport,
    *,
    actor: Actor,
    decision: Decision,
    before_write: Callable[[list[PatientPlan], list[ItemPlan], Counter[str]], None] | None,
) -> ImportReport:
    with transaction.atomic():
        if before_write is not None:
            before_write(patient_plans, item_plans, skipped)
        by_key: dict[str, tuple[Patient, PatientCipher]] = {}
        for plan in patient_plans:
            by_key[plan.key] = _write_patient(plan, scratch)
        grouped: dict[str, list[ItemPlan]] = {}
        for item in item_plans:
            grouped.setdefault(item.patient_key, []).append(item)
        for key, (patient, cipher) in by_key.items():
            before = (sum(scratch.items_created.values()), sum(scratch.items_updated.values()))
            _write_items(patient, cipher, grouped.get(key, []), scratch)
            after = (sum(scratch.items_created.values()), sum(scratch.items_updated.values()))
            audit_record(
                actor=actor,
                action=Action.IMPORT_RECORDS,
                patient_id=patient.id,
                outcome="success",
                reason=decision.reason,
                detail={"new_items": after[0] - before[0], "new_versions": after[1] - before[1]},
            )
            scratch.patient_ids.add(patient.id)
    # merged only after commit, so a failed unit leaves the caller's counts alone too
    scratch.skipped.update(skipped)
    report.merge(scratch)
    return report


def import_paths(
    paths: Iterable[Path],
    *,
    source: str | None = None,
    assign_nhs_numbers: bool = False,
    actor: Actor = SYSTEM_IMPORTER,
) -> ImportReport:
    """Raises ops.lifecycle.ServiceReadOnly, importing nothing, while the service closes."""
    from healthspace.ops import lifecycle

    lifecycle.refuse_writes("importing records")
    report = ImportReport()
    deferred: list[Path] = []
    for path in iter_files(paths):
        if _import_file(path, report, source, assign_nhs_numbers, actor, defer=True):
            deferred.append(path)
    # Files read before the file holding their patient: once more, now the patients exist.
    # Re-importing is idempotent, so only the items that were skipped are added.
    for path in deferred:
        _import_file(path, report, source, assign_nhs_numbers, actor, defer=False)
    return report


def _import_file(
    path: Path,
    report: ImportReport,
    source: str | None,
    assign_nhs_numbers: bool,
    actor: Actor,
    *,
    defer: bool,
) -> bool:
    """Import one file into ``report``; True if it should be tried again at the end."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FhirInputError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        entries, _ = _entries_of(path, path.read_bytes())
        unit = import_entries(
            entries,
            where=path.name,
            source=source,
            assign_nhs_numbers=assign_nhs_numbers,
            actor=actor,
        )
    except FhirInputError as exc:
        report.files_failed += 1
        message = str(exc)
        report.errors.append(
            message if message.startswith(path.name) else f"{path.name}: {message}"
        )
        return False
    orphans = any(reason.endswith(PATIENT_NOT_FOUND) for reason in unit.skipped)
    if defer and orphans:
        report.merge(unit, skipped=False)
        return True
    # a deferred file's second try: its first try already counted the unchanged items
    report.merge(unit, unchanged=defer)
    report.files_ok += 1
    return False
