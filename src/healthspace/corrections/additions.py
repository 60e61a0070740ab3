"""What patients add to their Summary Care Record: communication preferences, access needs
and preferences for care. Services (``addition_put``, ``addition_remove``) and the one
selector (``own_additions``), each asking ``access.decide`` and auditing in the same
transaction as the read or write.

Each addition is one FHIR R4 ``Flag`` (shape and codes: ``corrections.codes``) stored with
``records.patient_items``: an SCR item with ``origin = patient`` under the patient's SCR
key, which every reader of the SCR then shows "added by the patient" under the same rules
as the rest of the additional information (the clinician's activity and the patient's
consent, or emergency access).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.selectors import consent_state_for
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.corrections import codes
from healthspace.corrections.codes import KINDS, SECTION_KIND, Kind, Option
from healthspace.records import fhir_map
from healthspace.records.importer import item_purpose
from healthspace.records.models import Origin, ScrItem
from healthspace.records.patient_items import (
    patient_item_put,
    patient_item_remove,
    patient_subject,
)
from healthspace.vault import services as vault

NOT_FOUND_MESSAGE = "There is nothing here that you added."
RESOURCE_TYPE = "Flag"
ADDITION_SECTIONS = tuple(text.section for text in KINDS.values())


@dataclass(frozen=True)
class Addition:
    id: uuid.UUID
    kind: Kind
    option: Option
    details: str
    since: datetime | None
    item_id: int


def _key(addition_id: uuid.UUID) -> str:
    return f"addition:{addition_id}"


def _clean_details(option: Option, details: str) -> str:
    details = " ".join((details or "").split())
    if len(details) > codes.DETAILS_MAX:
        raise InvalidInput(f"What you write must be {codes.DETAILS_MAX} characters or fewer")
    if option.details_required and not details:
        raise InvalidInput(f"You chose '{option.label}': tell us more in the box")
    return details


def flag_resource(
    *,
    patient_id: uuid.UUID,
    addition_id: uuid.UUID,
    kind: Kind,
    option: Option,
    details: str,
    since: datetime,
) -> dict[str, Any]:
    """The FHIR R4 Flag of one addition (``patient_item_put`` adds id and meta)."""
    text = KINDS[kind]
    return {
        "resourceType": RESOURCE_TYPE,
        "identifier": [{"system": codes.IDENTIFIER_SYSTEM, "value": str(addition_id)}],
        "status": "active",
        "category": [
            {
                "coding": [
                    {"system": codes.CATEGORY_SYSTEM, "code": kind.value, "display": text.display}
                ],
                "text": text.display,
            }
        ],
        "code": {
            "coding": [
                {
                    "system": codes.OPTION_SYSTEM,
                    "code": codes.option_code(kind, option),
                    "display": option.display,
                }
            ],
            "text": codes.code_text(option, details),
        },
        "subject": patient_subject(patient_id),
        "period": {"start": since.isoformat()},
        "author": patient_subject(patient_id),
    }


def _addition_of(item: ScrItem, resource: dict[str, Any]) -> Addition | None:
    """Read an addition back from its Flag; None for anything else the patient added."""
    kind = SECTION_KIND.get(item.section)
    ident = next(
        (
            i.get("value")
            for i in resource.get("identifier") or []
            if i.get("system") == codes.IDENTIFIER_SYSTEM
        ),
        None,
    )
    coding = next(
        (
            c
            for c in (resource.get("code") or {}).get("coding") or []
            if c.get("system") == codes.OPTION_SYSTEM
        ),
        None,
    )
    if kind is None or ident is None or coding is None:
        return None
    option = codes.option_for(kind, str(coding.get("code", "")).removeprefix(f"{kind.value}."))
    if option is None:
        return None
    text = (resource.get("code") or {}).get("text") or ""
    prefix = f"{option.display}: "
    return Addition(
        id=uuid.UUID(ident),
        kind=kind,
        option=option,
        details=text[len(prefix) :] if text.startswith(prefix) else "",
        since=fhir_map.parse_fhir_datetime((resource.get("period") or {}).get("start")),
        item_id=item.pk,
    )


def _load(patient_id: uuid.UUID) -> list[Addition]:
    items = list(
        ScrItem.objects.filter(
            patient_id=patient_id,
            origin=Origin.PATIENT,
            resource_type=RESOURCE_TYPE,
            section__in=ADDITION_SECTIONS,
        )
        .order_by("created_at", "id")
        .only("id", "section", "identity", "payload")
    )
    if not items:
        return []
    cipher = vault.cipher_for(patient_id=patient_id)
    out = []
    for item in items:
        content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
        addition = _addition_of(item, content["resource"])
        if addition is not None:
            out.append(addition)
    return out


def _decided(actor: Actor, action: Action) -> tuple[uuid.UUID, str]:
    """The actor's own record (from the session) and the policy's reason."""
    patient_id = actor.patient_id
    decision = access_checked(actor=actor, action=action, patient_id=patient_id)
    if not decision.allowed or patient_id is None:
        raise Refused(NOT_FOUND_MESSAGE, reason=decision.reason)
    return patient_id, decision.reason


@dataclass(frozen=True)
class OwnAdditions:
    items: list[Addition]
    # the patient's consent choice: whether staff see additional information at all
    consent: ConsentState

    def of(self, kind: Kind) -> list[Addition]:
        return [a for a in self.items if a.kind == kind]

    def get(self, addition_id: uuid.UUID) -> Addition:
        return _find(self.items, addition_id)


def own_additions(*, actor: Actor) -> OwnAdditions:
    """Everything the signed-in patient added, oldest first, and their consent choice
    (who will see it); reading it is audited."""
    patient_id, reason = _decided(actor, Action.VIEW_SCR)
    with transaction.atomic():
        found = _load(patient_id)
        consent = consent_state_for(patient_id=patient_id)
        audit_record(
            actor=actor,
            action=Action.VIEW_SCR,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"page": "additions", "items": len(found), "sections": list(ADDITION_SECTIONS)},
        )
    return OwnAdditions(found, consent)


def _find(found: list[Addition], addition_id: uuid.UUID | None) -> Addition:
    addition = next((a for a in found if a.id == addition_id), None)
    if addition is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return addition


def addition_put(
    *,
    actor: Actor,
    kind: Kind | str,
    option_code: str,
    details: str = "",
    addition_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Add an addition (``addition_id`` None) or change one of the patient's own (the
    same kind: a change of kind is a removal and a new addition). Returns its id.
    Raises InvalidInput (nothing changed), NotFound, Refused (audited)."""
    try:
        kind = Kind(kind)
    except ValueError:
        raise NotFound(NOT_FOUND_MESSAGE) from None
    option = codes.option_for(kind, option_code)
    if option is None:
        raise InvalidInput(f"Choose {KINDS[kind].one}")
    details = _clean_details(option, details)
    patient_id, reason = _decided(actor, Action.ADDITION_CHANGE)
    with transaction.atomic():
        found = _load(patient_id)
        if addition_id is None:
            if sum(1 for a in found if a.kind == kind) >= codes.PER_KIND_MAX:
                raise InvalidInput(
                    f"You can add up to {codes.PER_KIND_MAX} of these. Remove one you no "
                    "longer need first."
                )
            addition_id, since, change = uuid.uuid4(), now(), "added"
        else:
            existing = _find(found, addition_id)
            if existing.kind != kind:
                raise NotFound(NOT_FOUND_MESSAGE)
            since, change = existing.since or now(), "changed"
        result = patient_item_put(
            patient_id=patient_id,
            key=_key(addition_id),
            section=KINDS[kind].section,
            resource=flag_resource(
                patient_id=patient_id,
                addition_id=addition_id,
                kind=kind,
                option=option,
                details=details,
                since=since,
            ),
        )
        audit_record(
            actor=actor,
            action=Action.ADDITION_CHANGE,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            # what kind of thing, never what it says
            detail={
                "section": KINDS[kind].section,
                "change": change if result.changed else "unchanged",
                "item": result.item_id,
            },
        )
    return addition_id


def addition_remove(*, actor: Actor, addition_id: uuid.UUID) -> None:
    """Remove one of the patient's own additions; nobody is shown it any more."""
    patient_id, reason = _decided(actor, Action.ADDITION_CHANGE)
    with transaction.atomic():
        existing = _find(_load(patient_id), addition_id)
        patient_item_remove(
            patient_id=patient_id, key=_key(addition_id), resource_type=RESOURCE_TYPE
        )
        audit_record(
            actor=actor,
            action=Action.ADDITION_CHANGE,
            patient_id=patient_id,
            outcome="success",
            reason=reason,
            detail={"section": KINDS[existing.kind].section, "change": "removed"},
        )
