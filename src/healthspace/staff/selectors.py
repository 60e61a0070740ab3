"""What the staff pages read. Gathering the facts ``access.decide`` needs about a member of
staff and a patient happens here, in one place: consent state, relationship, permission.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState, Permission, Relationship
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import ConsentRecord
from healthspace.consent.selectors import consent_state_for
from healthspace.core.clock import now
from healthspace.core.errors import NotFound
from healthspace.core.nhs_numbers import format_spaced
from healthspace.records import fhir_map
from healthspace.records.importer import PATIENT_PURPOSE
from healthspace.records.models import Patient
from healthspace.staff.models import PermissionAnswer, RelationshipClaim
from healthspace.vault import services as vault

NOT_FOUND_MESSAGE = "No patient matches that NHS number and date of birth."


@dataclass(frozen=True)
class StaffContext:
    """The gathered facts, and what the pages say about them."""

    access: AccessContext
    claim_expires_at: datetime | None = None  # a live self-claimed relationship
    permission_note: str = ""  # the reason recorded with "cannot be asked" or emergency


def access_context_for(
    *, actor: Actor, user_id: int, session_key_hash: str, patient_id: uuid.UUID
) -> StaffContext:
    """One query, four indexed reads as subqueries of the patient's row: consent (its latest
    version), the patient's practice, a live self-claimed relationship, this session's
    answer. The actor's organisation comes from their account (set at login)."""
    at = now()
    answers = PermissionAnswer.objects.filter(
        session_key_hash=session_key_hash, patient_id=OuterRef("pk"), user_id=user_id
    ).order_by("-recorded_at", "-pk")
    row = (
        Patient.objects.filter(pk=patient_id)
        .values("registered_practice__ods_code")
        .annotate(
            consent_state=Subquery(
                ConsentRecord.objects.filter(patient_id=OuterRef("pk"))
                .order_by("-version")
                .values("state")[:1]
            ),
            claim_expires_at=Subquery(
                RelationshipClaim.objects.filter(
                    user_id=user_id, patient_id=OuterRef("pk"), expires_at__gt=at
                )
                .order_by("-expires_at")
                .values("expires_at")[:1]
            ),
            answer=Subquery(answers.values("answer")[:1]),
            explanation=Subquery(answers.values("explanation")[:1]),
        )
        .first()
    )
    if row is None:  # no such patient: nothing to relate to or answer about
        return StaffContext(
            access=AccessContext(
                consent=consent_state_for(patient_id=patient_id),
                relationship=Relationship.NONE,
                permission=Permission.NOT_ASKED,
            )
        )
    consent = ConsentState(row["consent_state"]) if row["consent_state"] else ConsentState.IMPLIED
    practice_ods = row["registered_practice__ods_code"]
    claim_expires_at = None
    if actor.organisation and practice_ods and actor.organisation == practice_ods:
        relationship = Relationship.CARE_TEAM
    else:
        claim_expires_at = row["claim_expires_at"]
        relationship = Relationship.SELF_CLAIMED if claim_expires_at else Relationship.NONE
    answer = row["answer"]
    return StaffContext(
        access=AccessContext(
            consent=consent,
            relationship=relationship,
            permission=Permission(answer) if answer else Permission.NOT_ASKED,
        ),
        claim_expires_at=claim_expires_at,
        permission_note=(row["explanation"] or "") if answer else "",
    )


@dataclass(frozen=True)
class PatientBanner:
    """Who the patient is, as the NHS.UK patient banner shows it: enough to be sure it is
    the person in front of you, nothing clinical."""

    patient_id: uuid.UUID
    name: str
    birth_date: date | None
    nhs_number: str
    practice: str | None
    consent: ConsentState

    @property
    def nhs_number_spaced(self) -> str:
        return format_spaced(self.nhs_number)


def _banner(patient: Patient, consent: ConsentState) -> PatientBanner:
    resource: dict[str, Any] = vault.cipher_for(patient_id=patient.id).open_json(
        patient.resource, purpose=PATIENT_PURPOSE
    )
    practice = patient.registered_practice
    return PatientBanner(
        patient_id=patient.id,
        name=fhir_map.human_name(resource) or "Name not recorded",
        birth_date=patient.birth_date,
        nhs_number=patient.nhs_number,
        practice=practice.name if practice else None,
        consent=consent,
    )


def patient_banner(*, actor: Actor, patient_id: uuid.UUID) -> PatientBanner:
    """The banner of a patient this member of staff found by NHS number and date of birth
    in this session (the caller checks that), audited: every display of who a patient is
    to staff is in the patient's trail."""
    decision = access_checked(actor=actor, action=Action.FIND_PATIENT, patient_id=patient_id)
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    with transaction.atomic():
        patient = (
            Patient.objects.select_related("registered_practice")
            .only("id", "nhs_number", "birth_date", "resource", "registered_practice__name")
            .filter(pk=patient_id)
            .first()
        )
        if patient is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        banner = _banner(patient, consent_state_for(patient_id=patient_id))
        audit_record(
            actor=actor,
            action=Action.FIND_PATIENT,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"step": "banner"},
        )
    return banner
