"""What the staff pages read. Gathering the facts ``access.decide`` needs about a member of
staff and a patient happens here, in one place: consent state, relationship, permission.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState, Permission, Relationship
from healthspace.access.policy import Action
from healthspace.accounts.models import Account, PatientLink
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import ConsentRecord
from healthspace.consent.selectors import consent_state_for
from healthspace.core import sql
from healthspace.core.clock import now
from healthspace.core.errors import NotFound
from healthspace.core.nhs_numbers import format_spaced
from healthspace.records import fhir_map
from healthspace.records.importer import PATIENT_PURPOSE
from healthspace.records.models import Organisation, Patient
from healthspace.staff.models import PermissionAnswer, RelationshipClaim
from healthspace.vault import services as vault

NOT_FOUND_MESSAGE = "No patient matches that NHS number and date of birth."


@dataclass(frozen=True)
class StaffContext:
    """The gathered facts, and what the pages say about them."""

    access: AccessContext
    claim_expires_at: datetime | None = None  # a live self-claimed relationship
    permission_note: str = ""  # the reason recorded with "cannot be asked" or emergency
    # The linked account that asked to be emailed of every staff view, read with the facts
    # (``staff_view_emails_read``); a context made without it makes the view ask again.
    staff_view_emails_to: int | None = None
    staff_view_emails_read: bool = False


def access_context_for(
    *, actor: Actor, user_id: int, session_key_hash: str, patient_id: uuid.UUID
) -> StaffContext:
    """One query, five indexed reads as subqueries of the patient's row: consent (its latest
    version), the patient's practice, a live self-claimed relationship, this session's
    answer, and whether the patient asked to be emailed of staff views. The actor's
    organisation comes from their account (set at login)."""
    row = _access_row(user_id=user_id, session_key_hash=session_key_hash, patient_id=patient_id)
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
        staff_view_emails_to=row["staff_view_emails_to"],
        staff_view_emails_read=True,
    )


def _access_row(
    *, user_id: int, session_key_hash: str, patient_id: uuid.UUID
) -> dict[str, Any] | None:
    """The four facts in one statement of plain SQL (core.sql): the ORM's version, with four
    subqueries, cost over 4 ms of CPU to build and compile on every staff view."""
    patients, p = sql.names(Patient)
    orgs, o = sql.names(Organisation)
    consents, c = sql.names(ConsentRecord)
    claims, r = sql.names(RelationshipClaim)
    answers, a = sql.names(PermissionAnswer)
    links, pl = sql.names(PatientLink)
    accounts, ac = sql.names(Account)
    found = sql.rows(
        f"SELECT o.{o['ods_code']}, "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"(SELECT c.{c['state']} FROM {consents} c WHERE c.{c['patient_id']} = p.{p['id']} "
        f"ORDER BY c.{c['version']} DESC LIMIT 1), "
        f"(SELECT r.{r['expires_at']} FROM {claims} r WHERE r.{r['user_id']} = %s "
        f"AND r.{r['patient_id']} = p.{p['id']} AND r.{r['expires_at']} > %s "
        f"ORDER BY r.{r['expires_at']} DESC LIMIT 1), "
        f"(SELECT a.{a['answer']} FROM {answers} a WHERE a.{a['session_key_hash']} = %s "
        f"AND a.{a['patient_id']} = p.{p['id']} AND a.{a['user_id']} = %s "
        f"ORDER BY a.{a['recorded_at']} DESC, a.{a['id']} DESC LIMIT 1), "
        f"(SELECT a.{a['explanation']} FROM {answers} a WHERE a.{a['session_key_hash']} = %s "
        f"AND a.{a['patient_id']} = p.{p['id']} AND a.{a['user_id']} = %s "
        f"ORDER BY a.{a['recorded_at']} DESC, a.{a['id']} DESC LIMIT 1), "
        f"(SELECT pl.{pl['user_id']} FROM {links} pl "
        f"JOIN {accounts} ac ON ac.{ac['user_id']} = pl.{pl['user_id']} "
        f"WHERE pl.{pl['patient_id']} = p.{p['id']} AND ac.{ac['notify_staff_views']} = %s "
        f"ORDER BY pl.{pl['id']} LIMIT 1) "
        f"FROM {patients} p LEFT JOIN {orgs} o ON o.{o['id']} = p.{p['registered_practice_id']} "
        f"WHERE p.{p['id']} = %s",
        [
            user_id,
            sql.param(RelationshipClaim, "expires_at", now()),
            session_key_hash,
            user_id,
            session_key_hash,
            user_id,
            True,
            sql.param(Patient, "id", patient_id),
        ],
        prepared=True,  # one patient by its key; each subquery a unique index's range
    )
    if not found:
        return None
    ods, consent, claim, answer, explanation, emails_to = found[0]
    return {
        "registered_practice__ods_code": ods,
        "consent_state": consent,
        "claim_expires_at": sql.as_datetime(claim),
        "answer": answer,
        "explanation": explanation,
        "staff_view_emails_to": emails_to,
    }


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
