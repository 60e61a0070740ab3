"""Amending an SCR item in HealthSpace: a clinician's correction, with the reason.

An amendment is a new version of the item, as a change from the GP feed is: the previous
version goes to ``ScrItemVersion``, the item's version goes up, and the amended FHIR
resource is validated as strictly as an import. The sealed content carries
``"amendment": {"at", "by", "reason"}`` so everyone reading the item sees that it was
corrected, when and why.

The feed: ``content_hash`` becomes the amended content's, while ``source_hash`` keeps the
hash of what the source last sent. The importer treats a resource whose content matches
either as unchanged, so a GP system re-sending the same, uncorrected resource does not
undo the correction; anything else the source sends is new and supersedes the amendment
(the source is the record's source of truth: the practice corrects its own system too).

What may change, by resource type (``RULES``): the description (the coded concept is
replaced by the corrected words: a code that says something else than the text beside it
is a safety hazard, since systems read the code and people the text), the status (from a
short clinical list), or "entered in error". Entered in error follows each resource's own
FHIR rule: ``verificationStatus`` for allergies and problems (whose ``clinicalStatus`` must
then be absent: FHIR invariants ait-2 and con-5), ``status`` elsewhere.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.records import fhir_map
from healthspace.records.fhir_checks import FhirInputError, validate_resource
from healthspace.records.importer import item_purpose
from healthspace.records.models import Organisation, Origin, ScrItem, ScrItemVersion
from healthspace.vault import services as vault

NOT_FOUND_MESSAGE = "There is no item here that you can change."
REASON_MIN = 10
REASON_MAX = 1000
DESCRIPTION_MAX = 300
ENTERED_IN_ERROR = "entered-in-error"


@dataclass(frozen=True)
class Rule:
    """What of one resource type may be amended, and where it lives."""

    concept: str | None  # the element holding the description ("type.0": first of a list)
    status_element: str | None = None  # "status" (a code) or "clinicalStatus" (a concept)
    status_system: str | None = None  # for a CodeableConcept status
    statuses: tuple[tuple[str, str], ...] = ()  # (code, words) a clinician may choose
    error_element: str | None = None  # where "entered in error" goes
    error_system: str | None = None  # for a CodeableConcept verificationStatus


_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

RULES: dict[str, Rule] = {
    "AllergyIntolerance": Rule(
        "code",
        "clinicalStatus",
        _ALLERGY_CLINICAL,
        (("active", "Active"), ("inactive", "Inactive"), ("resolved", "Resolved")),
        "verificationStatus",
        _ALLERGY_VERIFICATION,
    ),
    "Condition": Rule(
        "code",
        "clinicalStatus",
        _CONDITION_CLINICAL,
        (
            ("active", "Active"),
            ("recurrence", "Recurrence"),
            ("relapse", "Relapse"),
            ("inactive", "Inactive"),
            ("remission", "In remission"),
            ("resolved", "Resolved"),
        ),
        "verificationStatus",
        _CONDITION_VERIFICATION,
    ),
    "MedicationRequest": Rule(
        "medicationCodeableConcept",
        "status",
        None,
        (
            ("active", "Active"),
            ("on-hold", "On hold"),
            ("stopped", "Stopped"),
            ("completed", "Completed"),
            ("cancelled", "Cancelled"),
        ),
        "status",
    ),
    "MedicationStatement": Rule(
        "medicationCodeableConcept",
        "status",
        None,
        (
            ("active", "Active"),
            ("on-hold", "On hold"),
            ("stopped", "Stopped"),
            ("completed", "Completed"),
            ("not-taken", "Not taken"),
        ),
        "status",
    ),
    "Immunization": Rule(
        "vaccineCode", "status", None, (("completed", "Given"), ("not-done", "Not given")), "status"
    ),
    "Procedure": Rule(
        "code",
        "status",
        None,
        (("completed", "Completed"), ("not-done", "Not done"), ("stopped", "Stopped")),
        "status",
    ),
    "Observation": Rule("code", error_element="status"),
    "DiagnosticReport": Rule("code", error_element="status"),
    "Encounter": Rule(
        "type.0", "status", None, (("finished", "Finished"), ("cancelled", "Cancelled")), "status"
    ),
    "CarePlan": Rule(
        "category.0",
        "status",
        None,
        (
            ("active", "Active"),
            ("on-hold", "On hold"),
            ("revoked", "Revoked"),
            ("completed", "Completed"),
        ),
        "status",
    ),
    "CareTeam": Rule(
        None,
        "status",
        None,
        (("active", "Active"), ("inactive", "Inactive"), ("suspended", "Suspended")),
        "status",
    ),
    # R4 AdverseEvent has no status: its description can be corrected, nothing else.
    "AdverseEvent": Rule("event"),
    # Practitioner, PractitionerRole: not amendable here (names and roles are corrected in
    # the source system, which then sends them again).
}


@dataclass(frozen=True)
class AmendOptions:
    """What a clinician may be offered for one item."""

    description: bool
    statuses: tuple[tuple[str, str], ...]
    entered_in_error: bool

    @property
    def any(self) -> bool:
        return self.description or bool(self.statuses) or self.entered_in_error


def amend_options(resource_type: str) -> AmendOptions:
    rule = RULES.get(resource_type)
    if rule is None:
        return AmendOptions(False, (), False)
    return AmendOptions(rule.concept is not None, rule.statuses, rule.error_element is not None)


@dataclass(frozen=True)
class ItemChanges:
    """One amendment: any of a corrected description and a new status, or entered in
    error on its own (an item recorded by mistake has nothing left to correct)."""

    description: str | None = None
    status: str | None = None
    entered_in_error: bool = False

    def names(self) -> list[str]:
        """What changed, for the audit trail (never the new words themselves)."""
        return [
            name
            for name, present in (
                ("description", self.description is not None),
                ("status", self.status is not None),
                ("entered-in-error", self.entered_in_error),
            )
            if present
        ]


@dataclass(frozen=True)
class AmendResult:
    item_id: int
    version: int
    entered_in_error: bool


def _checked(changes: ItemChanges, rule: Rule | None) -> ItemChanges:
    if rule is None:
        raise InvalidInput("This kind of item cannot be corrected in HealthSpace.")
    if not changes.names():
        raise InvalidInput("Choose what to change.")
    if changes.entered_in_error and (changes.description is not None or changes.status):
        raise InvalidInput("An item entered in error is not also given a new description.")
    if changes.entered_in_error and rule.error_element is None:
        raise InvalidInput("This kind of item cannot be marked as entered in error.")
    description = changes.description
    if description is not None:
        description = " ".join(description.split())
        if rule.concept is None:
            raise InvalidInput("This kind of item has no description to correct.")
        if not description:
            raise InvalidInput("Enter the corrected description.")
        if len(description) > DESCRIPTION_MAX:
            raise InvalidInput(f"The description must be {DESCRIPTION_MAX} characters or fewer.")
    if changes.status is not None and changes.status not in dict(rule.statuses):
        raise InvalidInput("Choose one of the statuses.")
    return ItemChanges(description, changes.status, changes.entered_in_error)


def _set_concept(resource: dict[str, Any], path: str, text: str) -> None:
    name, _, index = path.partition(".")
    concept = {"text": text}
    if index:
        values = list(resource.get(name) or [{}])
        values[int(index)] = concept
        resource[name] = values
        return
    if name == "medicationCodeableConcept" and "medicationReference" in resource:
        # medication[x] is a choice: the corrected words replace the referenced Medication
        ref = resource.pop("medicationReference").get("reference") or ""
        contained = [c for c in resource.get("contained") or [] if f"#{c.get('id')}" != ref]
        if contained:
            resource["contained"] = contained
        else:
            resource.pop("contained", None)
    resource[name] = concept


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def amended_resource(resource: dict[str, Any], changes: ItemChanges) -> dict[str, Any]:
    """The resource with ``changes`` applied (pure; the caller validates it)."""
    rule = RULES.get(resource.get("resourceType", ""))
    changes = _checked(changes, rule)
    assert rule is not None  # _checked refused every type without a rule
    out = copy.deepcopy(resource)
    if changes.description is not None and rule.concept:
        _set_concept(out, rule.concept, changes.description)
    if changes.status is not None and rule.status_element:
        current = out.get(rule.status_element)
        if rule.status_system:
            code = fhir_map.first_code(current)
            if code is not None and code[1] == changes.status:
                raise InvalidInput("The item already has this status.")
            out[rule.status_element] = {
                **_concept(rule.status_system, changes.status),
                "text": dict(rule.statuses)[changes.status],
            }
        else:
            if current == changes.status:
                raise InvalidInput("The item already has this status.")
            out[rule.status_element] = changes.status
    if changes.entered_in_error and rule.error_element:
        if rule.error_system:
            out[rule.error_element] = _concept(rule.error_system, ENTERED_IN_ERROR)
            # FHIR ait-2 / con-5: no clinical status on something that was never true
            out.pop("clinicalStatus", None)
        else:
            out[rule.error_element] = ENTERED_IN_ERROR
    return out


def _reason(text: str) -> str:
    text = " ".join((text or "").split())
    if len(text) < REASON_MIN:
        raise InvalidInput(
            f"Give the reason for the correction in at least {REASON_MIN} characters."
        )
    if len(text) > REASON_MAX:
        raise InvalidInput(f"The reason must be {REASON_MAX} characters or fewer.")
    return text


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def amended_by_label(actor: Actor) -> str:
    """Who corrected it, as people read it: "Asha Patel, Riverside Medical Practice"."""
    name = ""
    if actor.id.startswith("user:") and actor.id[5:].isdigit():
        user = get_user_model().objects.filter(pk=int(actor.id[5:])).first()
        name = user.get_full_name() if user is not None else ""
    organisation = (
        Organisation.objects.filter(ods_code=actor.organisation)
        .values_list("name", flat=True)
        .first()
        if actor.organisation
        else None
    )
    return ", ".join(p for p in (name or "A clinician", organisation) if p)


def item_amend(
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    item_id: int,
    changes: ItemChanges,
    reason: str,
    context: AccessContext,
) -> AmendResult:
    """Amend one item from the source (a GP feed's item; what the patient added they
    change themselves). ``context`` is what the caller established about the actor
    (``team_member``: works at the practice the correction request went to).

    Runs in the caller's transaction when there is one (a correction's decision), else in
    its own; the amendment and its audit event commit together. Raises Refused (audited),
    NotFound, or InvalidInput (nothing changed).
    """
    reason = _reason(reason)
    decision = access_checked(
        actor=actor, action=Action.RECORD_AMEND, patient_id=patient_id, context=context
    )
    if not decision.allowed:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    by = amended_by_label(actor)
    with transaction.atomic():
        item = (
            ScrItem.objects.select_for_update()
            .filter(pk=item_id, patient_id=patient_id, origin=Origin.SOURCE)
            .first()
        )
        if item is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        cipher = vault.cipher_for(patient_id=patient_id)
        purpose = item_purpose(item.identity)
        content = cipher.open_json(item.payload, purpose=purpose)
        resource = amended_resource(content["resource"], changes)
        if resource == content["resource"]:
            raise InvalidInput("The item already says this: nothing would change.")
        try:
            validate_resource(resource, where=f"amendment of item {item.pk}")
        except FhirInputError as exc:
            raise InvalidInput(f"The corrected item is not valid FHIR: {exc}") from exc
        amended = {
            **content,
            "resource": resource,
            "amendment": {"at": now().isoformat(), "by": by, "reason": reason},
        }
        if changes.description is not None:
            amended.pop("medication", None)  # the label of a Medication no longer referenced
        ScrItemVersion.objects.create(
            item=item,
            patient_id=patient_id,
            version=item.version,
            content_hash=item.content_hash,
            recorded_at=item.recorded_at,
            source_system=item.source_system,
            payload=item.payload,
        )
        # An item from before source hashes were kept: its content is the source's.
        item.source_hash = item.source_hash or item.content_hash
        item.version += 1
        item.content_hash = vault.index("content", _canonical(amended))
        item.recorded_at = fhir_map.recorded_at(resource) or item.recorded_at
        item.payload = cipher.seal_json(amended, purpose=purpose)
        item.save(
            update_fields=[
                "source_hash",
                "version",
                "content_hash",
                "recorded_at",
                "payload",
                "updated_at",
            ]
        )
        audit_record(
            actor=actor,
            action=Action.RECORD_AMEND,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"item": item.pk, "version": item.version, "changes": changes.names()},
        )
    return AmendResult(item.pk, item.version, changes.entered_in_error)
