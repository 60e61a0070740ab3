"""Writes of the FHIR API: GP feeds (system clients) sending SCR content.

One import path: ``records.importer.import_entries`` with its strict validation
(``records.fhir_checks``), atomic per request. What the API adds:

- the token's scopes (``c`` for create, ``u`` for update, per resource type) and the
  policy's answer for every patient the request touches, asked inside the import's
  transaction before anything is written (``before_write``): a feed writes only patients
  registered at its own organisation, or new patients whose registered practice it is;
- after the import, still in the same transaction, that every patient touched is still
  registered there (a feed cannot move a patient to another practice);
- idempotence on the source's logical ids: every write is recorded under the client's
  source system, keyed by (source, type, id), so sending the same again changes nothing;
- references to this server's patients (``Patient/<id>``) become NHS-number identifier
  references, which the importer resolves.

A refusal rolls back everything and is audited afterwards (in the patient's trail).
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from healthspace.access.context import AccessContext, Interaction, Relationship, TokenScope
from healthspace.access.policy import Action, decide
from healthspace.audit.services import access_checked
from healthspace.consent.selectors import consent_state_for
from healthspace.core import nhs_numbers
from healthspace.fhir_api import ids
from healthspace.fhir_api.http import ApiError
from healthspace.fhir_api.search import ITEM_PARAMS, Search, matches, reference_id
from healthspace.fhir_api.selectors import ITEM_FIELDS, require_token
from healthspace.records import fhir_map
from healthspace.records.importer import (
    PATIENT_NOT_FOUND,
    ImportReport,
    ItemPlan,
    PatientPlan,
    import_entries,
    item_purpose,
)
from healthspace.records.models import Patient, PatientIdentifier, ScrItem
from healthspace.smart.tokens import TokenActor
from healthspace.vault import services as vault

WRITABLE = frozenset([*ITEM_PARAMS, "Patient"])
REFUSED_SKIPS = (
    PATIENT_NOT_FOUND,
    "its subject is not a patient",
    "contained patient has no NHS number",
    "file is not one patient's record",
)


class FeedRefused(ApiError):
    """A business rule refused the write (422); ``denied`` are the refusals to audit
    once the transaction has rolled back."""

    def __init__(self, diagnostics: str, denied: list[tuple[uuid.UUID | None, AccessContext]]):
        super().__init__(422, "business-rule", diagnostics)
        self.denied = denied


@dataclass
class Written:
    rtype: str
    server_id: str
    version: int
    last_updated: Any
    created: bool
    changed: bool

    @property
    def status(self) -> str:
        return "201 Created" if self.created else "200 OK"

    @property
    def location(self) -> str:
        return f"{self.rtype}/{self.server_id}/_history/{self.version}"


def _scope(who: TokenActor, rtype: str, interaction: Interaction) -> TokenScope:
    return TokenScope(who.grants, rtype, interaction)


def _registered_here(patient: Patient | None, who: TokenActor) -> bool:
    practice = patient.registered_practice if patient is not None else None
    return practice is not None and practice.ods_code == who.actor.organisation


def _existing(plan: PatientPlan) -> Patient | None:
    if plan.existing_id is not None:
        return Patient.objects.select_related("registered_practice").get(pk=plan.existing_id)
    lookups = [x for x in [plan.source_lookup, *plan.lookups] if x]
    found = set(
        PatientIdentifier.objects.filter(lookup__in=lookups).values_list("patient_id", flat=True)
    )
    if plan.nhs_number:
        found |= set(
            Patient.objects.filter(nhs_number=plan.nhs_number).values_list("id", flat=True)
        )
    if len(found) != 1:
        return None  # none (a new patient), or ambiguous (the importer refuses it)
    return Patient.objects.select_related("registered_practice").get(pk=found.pop())


def _checker(who: TokenActor, interactions: dict[str, Interaction]):
    """The importer's ``before_write``: every patient of the plan may be written by this
    client; nothing is skipped for want of a patient."""

    def check(patients: list[PatientPlan], items: list[ItemPlan], skipped: Counter[str]) -> None:
        refused = [reason for reason in skipped if reason.endswith(REFUSED_SKIPS)]
        if refused:
            raise FeedRefused(
                "Not written: " + "; ".join(sorted(refused)) + ". Send the Patient in the "
                "same request, or refer to a patient registered at your organisation "
                "(Patient/<id>, or an NHS number identifier).",
                [],
            )
        denied = []
        for plan in patients:
            existing = _existing(plan)
            rtype_interaction = interactions.get("Patient", Interaction.UPDATE)
            if existing is None:
                if (
                    plan.existing_id is None
                    and (plan.practice or {}).get("ods") == who.actor.organisation
                ):
                    continue  # a new patient of this practice
                denied.append(
                    (None, AccessContext(token=_scope(who, "Patient", rtype_interaction)))
                )
                continue
            context = AccessContext(
                consent=consent_state_for(patient_id=existing.id),
                relationship=(
                    Relationship.CARE_TEAM if _registered_here(existing, who) else Relationship.NONE
                ),
                token=_scope(who, next(iter(interactions)), next(iter(interactions.values()))),
            )
            if not decide(who.actor, Action.IMPORT_RECORDS, existing.id, None, context).allowed:
                denied.append((existing.id, context))
        if denied:
            raise FeedRefused(
                "Not written: a patient in this request is not registered at your "
                "organisation (a feed writes only its own registered patients).",
                denied,
            )

    return check


def _audit_refusals(who: TokenActor, denied: list[tuple[uuid.UUID | None, AccessContext]]) -> None:
    for patient_id, context in denied:
        access_checked(
            actor=who.actor, action=Action.IMPORT_RECORDS, patient_id=patient_id, context=context
        )


def _point_at_nhs_numbers(resource: dict[str, Any]) -> dict[str, Any]:
    """``Patient/<HealthSpace id>`` -> an NHS-number identifier reference the importer
    resolves (the feed refers to patients by this server's ids)."""
    out = copy.deepcopy(resource)
    field = fhir_map.PATIENT_FIELD.get(out.get("resourceType", ""))
    ref = out.get(field) if field else None
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        pid = _uuid(reference_id(ref["reference"]))
        nhs = (
            Patient.objects.filter(pk=pid).values_list("nhs_number", flat=True).first()
            if pid
            else None
        )
        if nhs:
            out[field] = {
                "identifier": {"system": nhs_numbers.NHS_NUMBER_SYSTEM, "value": nhs},
                **({"display": ref["display"]} if isinstance(ref.get("display"), str) else {}),
            }
    return out


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return None


def _identity(who: TokenActor, rtype: str, logical_id: str) -> str:
    return vault.index("scr-item", f"{who.source_system}|{rtype}|{logical_id}")


def _snapshot(who: TokenActor, resources: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """identity -> (pk, version) of the items these resources would write, now."""
    identities = [
        _identity(who, r["resourceType"], r["id"])
        for r in resources
        if r.get("resourceType") in ITEM_PARAMS and r.get("id")
    ]
    return {
        identity: (pk, version)
        for pk, identity, version in ScrItem.objects.filter(identity__in=identities).values_list(
            "pk", "identity", "version"
        )
    }


def _patient_lookup(who: TokenActor, resource: dict[str, Any]) -> str:
    return vault.index("source-id", f"{who.source_system}|Patient|{resource['id']}")


def feed_write(
    who: TokenActor,
    entries: list[tuple[str | None, dict[str, Any]]],
    interactions: dict[str, Interaction],
    *,
    where: str,
) -> list[Written | None]:
    """Import ``entries`` for a system client, atomically; one Written per entry (None
    for a resource carried only to resolve references)."""
    for rtype, interaction in interactions.items():
        require_token(who, Action.IMPORT_RECORDS, rtype, interaction)
    if not who.is_system or not who.source_system:
        raise ApiError(403, "forbidden", "Only a registered feed (system client) writes.")
    entries = [(url, _point_at_nhs_numbers(r)) for url, r in entries]
    first = next(iter(interactions))
    context = AccessContext(token=_scope(who, first, interactions[first]))
    try:
        with transaction.atomic():
            before = _snapshot(who, [r for _, r in entries])
            report: ImportReport = import_entries(
                entries,
                where=where,
                source=who.source_system,
                actor=who.actor,
                context=context,
                before_write=_checker(who, interactions),
            )
            moved = (
                Patient.objects.filter(pk__in=report.patient_ids)
                .exclude(registered_practice__ods_code=who.actor.organisation)
                .exists()
            )
            if moved:
                raise FeedRefused(
                    "Not written: a feed cannot register a patient at another practice.", []
                )
            return _results(who, entries, before)
    except FeedRefused as refused:
        _audit_refusals(who, refused.denied)
        raise


def _results(
    who: TokenActor,
    entries: list[tuple[str | None, dict[str, Any]]],
    before: dict[str, tuple[int, int]],
) -> list[Written | None]:
    after = _snapshot(who, [r for _, r in entries])
    item_rows = {
        row.identity: row
        for row in ScrItem.objects.filter(identity__in=list(after)).only(
            "pk", "identity", "version", "updated_at", "source_system"
        )
    }
    patient_ids = dict(
        PatientIdentifier.objects.filter(
            lookup__in=[
                _patient_lookup(who, r) for _, r in entries if r["resourceType"] == "Patient"
            ]
        ).values_list("lookup", "patient_id")
    )
    patients = {p.id: p for p in Patient.objects.filter(pk__in=list(patient_ids.values()))}
    out: list[Written | None] = []
    for _, resource in entries:
        rtype = resource["resourceType"]
        if rtype in ITEM_PARAMS:
            identity = _identity(who, rtype, resource["id"])
            row = item_rows.get(identity)
            if row is None:
                out.append(None)
                continue
            was = before.get(identity)
            out.append(
                Written(
                    rtype,
                    ids.item_id(row.pk),
                    row.version,
                    row.updated_at,
                    created=was is None,
                    changed=was is None or was[1] != row.version,
                )
            )
        elif rtype == "Patient":
            patient = patients.get(patient_ids.get(_patient_lookup(who, resource)))
            if patient is None:
                out.append(None)
                continue
            out.append(
                Written(
                    "Patient", str(patient.id), patient.version, patient.updated_at, False, True
                )
            )
        else:
            out.append(None)
    return out


# --- single resources ------------------------------------------------------------------


def _item_source_id(item: ScrItem) -> str:
    cipher = vault.cipher_for(patient_id=item.patient_id)
    content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
    return content["resource"]["id"]


def prepare_update(
    who: TokenActor, rtype: str, fhir_id: str, resource: dict[str, Any], if_match: str | None
) -> tuple[dict[str, Any], bool]:
    """``PUT [type]/[id]``: the resource to import and whether it names an existing item.

    A HealthSpace id names an item this feed sent (else 409); any other id is the feed's
    own logical id (update as create, idempotent)."""
    if resource.get("id") != fhir_id:
        raise ApiError(400, "invalid", "The resource's id must be the id in the URL.")
    resource = dict(resource)
    if rtype == "Patient":
        pid = _uuid(fhir_id)
        patient = Patient.objects.filter(pk=pid).first() if pid else None
        if patient is not None:
            _check_version(if_match, patient.version)
            return resource, True
        _check_version(if_match, None)
        return resource, False
    pk = ids.item_pk(fhir_id)
    item = (
        ScrItem.objects.filter(pk=pk, resource_type=rtype).only(*ITEM_FIELDS).first()
        if pk
        else None
    )
    if item is None:
        _check_version(if_match, None)
        return resource, False
    if item.source_system != who.source_system:
        raise ApiError(
            409, "conflict", "This item came from another source system; a feed updates its own."
        )
    _check_version(if_match, item.version)
    resource["id"] = _item_source_id(item)
    return resource, True


def _check_version(if_match: str | None, current: int | None) -> None:
    if not if_match:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if current is None or wanted != str(current):
        raise ApiError(
            412, "conflict", "The resource has changed (If-Match does not match its version)."
        )


def conditional_match(
    who: TokenActor, rtype: str, search: Search, resource: dict[str, Any] | None
) -> list[str]:
    """Server ids matching a conditional create/update (``identifier`` only): for a
    Patient through the blind index, for an item among its patient's items."""
    identifiers = [f for f in search.filters if f.name == "identifier"]
    if not identifiers or len(search.used) != len(identifiers):
        raise ApiError(
            400, "not-supported", "Conditional writes support identifier=system|value only."
        )
    if rtype == "Patient":
        found: set[uuid.UUID] | None = None
        for f in identifiers:
            lookups = [
                vault.index("identifier", f"{v.system}|{v.code}")
                for v in f.values
                if v.system and v.code
            ]
            pids = set(
                PatientIdentifier.objects.filter(lookup__in=lookups).values_list(
                    "patient_id", flat=True
                )
            )
            found = pids if found is None else found & pids
        return [str(p) for p in sorted(found or set())]
    field = fhir_map.PATIENT_FIELD.get(rtype)
    ref = (resource or {}).get(field) if field else None
    pid = None
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        pid = _uuid(reference_id(ref["reference"]))
    elif isinstance(ref, dict) and isinstance(ref.get("identifier"), dict):
        ident = ref["identifier"]
        pid = (
            PatientIdentifier.objects.filter(
                lookup=vault.index("identifier", f"{ident.get('system')}|{ident.get('value')}")
            )
            .values_list("patient_id", flat=True)
            .first()
        )
    patient = (
        Patient.objects.select_related("registered_practice").filter(pk=pid).first()
        if pid
        else None
    )
    if patient is None or not _registered_here(patient, who):
        return []  # nothing of another practice's patients is matched (or revealed)
    cipher = vault.cipher_for(patient_id=patient.id)
    out = []
    for item in ScrItem.objects.filter(patient_id=patient.id, resource_type=rtype).only(
        *ITEM_FIELDS
    ):
        content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
        if matches(search, content["resource"]):
            out.append(ids.item_id(item.pk))
    return out
