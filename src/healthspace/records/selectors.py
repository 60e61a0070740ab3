"""Reads of a patient's record. Each one asks ``access.decide`` and audits, in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action, decide
from healthspace.audit.services import access_checked, audit_record
from healthspace.core import sql
from healthspace.core.errors import NotFound, Refused
from healthspace.core.nhs_numbers import format_spaced
from healthspace.records import fhir_map
from healthspace.records.importer import PATIENT_PURPOSE, item_purpose
from healthspace.records.models import (
    ADDITIONAL_SECTIONS,
    CORE_SECTIONS,
    Organisation,
    Origin,
    Patient,
    ScrItem,
    Section,
)
from healthspace.vault import services as vault

_ITEM_FIELDS = (
    "id",
    "section",
    "identity",
    "recorded_at",
    "source_system",
    "payload",
    "version",
    "resource_type",
    "origin",
)
_PRACTICE_FIELDS = tuple(f.name for f in Organisation._meta.concrete_fields)

# Sections whose items are shown newest first, with current medications before past ones.
NOT_FOUND_MESSAGE = "There is no record here that you can see."


@dataclass
class ItemRow:
    id: int
    view: fhir_map.ItemView
    recorded_at: datetime | None
    source_system: str
    author: str | None
    organisation: str | None
    version: int
    current: bool | None = None  # medications: current or past
    resource: dict[str, Any] = field(default_factory=dict, repr=False)
    # Added by the patient (a shared reading, a preference or need): shown as such to
    # everyone, so nobody mistakes it for something a clinician recorded.
    patient_recorded: bool = False
    # The latest correction a clinician made in HealthSpace: {"at", "by", "reason"}.
    amendment: dict[str, Any] | None = None


@dataclass
class SectionView:
    key: str
    label: str
    core: bool
    items: list[ItemRow]
    # Not shown to this viewer, and why (a policy reason): a withheld section is shown as
    # withheld, never silently left out, so nobody mistakes "withheld" for "none recorded".
    withheld: str | None = None


@dataclass
class ScrView:
    patient_id: uuid.UUID
    nhs_number: str
    name: str
    birth_date: date | None
    practice: str | None
    sections: list[SectionView]
    patient_resource: dict[str, Any] = field(repr=False, default_factory=dict)
    patient_version: int = 1

    @property
    def nhs_number_spaced(self) -> str:
        return format_spaced(self.nhs_number)

    def section(self, key: str) -> SectionView:
        return next(s for s in self.sections if s.key == key)


def _load(patient_id: uuid.UUID, sections: list[str]) -> tuple[Patient, list[ScrItem], Any]:
    # plain SQL (core.sql.objects): the ORM's build and compile of these two reads cost
    # more CPU than running them, on every SCR page and $summary (docs/performance.md)
    found = sql.objects(
        Patient,
        where={"pk": patient_id},
        related={"registered_practice": _PRACTICE_FIELDS},
        prepared=True,
    )
    if not found:
        raise Patient.DoesNotExist
    patient = found[0]
    cipher = vault.cipher_for(patient_id=patient.id)
    items = sql.objects(
        ScrItem,
        _ITEM_FIELDS,
        where={"patient_id": patient.id, "section__in": sorted(sections)},
        order_by=("section", "-recorded_at", "id"),
        prepared=True,  # no LIMIT: every item of the patient, by its index, whatever the plan
    )
    return patient, items, cipher


def scr_for(
    *,
    actor: Actor,
    patient_id: uuid.UUID | None,
    action: Action = Action.VIEW_SCR,
    context: AccessContext | None = None,
) -> ScrView:
    """The SCR of one patient as this actor may see it, in a constant number of queries,
    audited in the read's transaction.

    ``access.decide`` answers for the record, then for each section: sections it refuses
    are not read at all (not decrypted) and come back marked ``withheld``. Raises Refused
    (a NotFound) when the record may not be seen, and NotFound when it is absent.
    """
    decision = access_checked(actor=actor, action=action, patient_id=patient_id, context=context)
    if not decision.allowed:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    per_section = {
        key: decide(actor, action, patient_id, key, context)
        for key in (*CORE_SECTIONS, *ADDITIONAL_SECTIONS)
    }
    shown = [key for key, d in per_section.items() if d.allowed]
    withheld = {key: d.reason for key, d in per_section.items() if not d.allowed}
    with transaction.atomic():
        loaded = None
        if patient_id is not None:
            try:
                loaded = _load(patient_id, shown)
            except Patient.DoesNotExist:
                loaded = None
        if loaded is not None:
            detail: dict[str, Any] = {"items": len(loaded[1]), "sections": shown}
            if withheld:
                detail["withheld"] = sorted(withheld)
            audit_record(
                actor=actor,
                action=action,
                patient_id=patient_id,
                outcome="success",
                reason=decision.reason,
                detail=detail,
            )
    if loaded is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    patient, items, cipher = loaded
    patient_resource = cipher.open_json(patient.resource, purpose=PATIENT_PURPOSE)
    rows: dict[str, list[ItemRow]] = {s: [] for s in Section.values}
    for item in items:
        content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
        resource = content["resource"]
        if action == Action.VIEW_SCR and fhir_map.entered_in_error(resource):
            # Recorded by mistake (the GP system says so, or a clinician's correction):
            # not information about the patient, so no page shows it, struck out or not:
            # a struck-out allergy is still read as an allergy by someone in a hurry. The
            # previous versions keep the trace; an export keeps the item with its
            # entered-in-error status, which FHIR receivers must honour.
            continue
        view = fhir_map.describe(resource)
        if content.get("medication") and view.title.endswith("(no description recorded)"):
            view.title = content["medication"]
        rows[item.section].append(
            ItemRow(
                id=item.id,
                view=view,
                recorded_at=item.recorded_at,
                source_system=fhir_map.source_label(item.source_system),
                author=content.get("author"),
                organisation=content.get("organisation"),
                version=item.version,
                current=(
                    fhir_map.medication_is_current(resource)
                    if item.section == Section.MEDICATIONS
                    else None
                ),
                resource=resource,
                patient_recorded=item.origin == Origin.PATIENT,
                amendment=content.get("amendment"),
            )
        )
    rows[Section.MEDICATIONS].sort(key=lambda r: not r.current)  # stable: current first
    sections = [
        SectionView(key, Section(key).label, key in CORE_SECTIONS, rows[key], withheld.get(key))
        for key in (*CORE_SECTIONS, *ADDITIONAL_SECTIONS)
    ]
    practice = patient.registered_practice
    return ScrView(
        patient_id=patient.id,
        nhs_number=patient.nhs_number,
        name=fhir_map.human_name(patient_resource) or "Name not recorded",
        birth_date=patient.birth_date,
        practice=str(practice.name) if practice else None,
        sections=sections,
        patient_resource=patient_resource,
        patient_version=patient.version,
    )
