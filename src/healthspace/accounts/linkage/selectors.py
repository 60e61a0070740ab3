"""Reads for verification: what a registration clerk may see of a patient, and where a
patient account stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.roles import Role
from healthspace.accounts.linkage.services import LOOKUP, NOT_FOUND_MESSAGE, linkage_decision
from healthspace.accounts.models import Account, PatientLink
from healthspace.audit.services import audit_record
from healthspace.core.errors import NotFound
from healthspace.core.nhs_numbers import format_spaced
from healthspace.records import fhir_map
from healthspace.records.importer import PATIENT_PURPOSE
from healthspace.records.models import Patient
from healthspace.vault import services as vault


@dataclass(frozen=True)
class Demographics:
    """All a clerk needs to match the person at the desk: never clinical content."""

    nhs_number: str
    name: str
    birth_date: date | None

    @property
    def nhs_number_spaced(self) -> str:
        return format_spaced(self.nhs_number)


def staff_organisation_ods(*, user: Any) -> str | None:
    return (
        Account.objects.filter(user=user, kind=Account.Kind.STAFF)
        .values_list("organisation__ods_code", flat=True)
        .first()
    )


def is_registration_clerk(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.groups.filter(name=Role.REGISTRATION_CLERK).exists()
    )


def patient_demographics_for_clerk(
    *, actor: Actor, actor_ods: str | None, nhs_number: str
) -> Demographics:
    """Name, date of birth and NHS number of a patient at the clerk's practice, audited.

    Raises NotFound both when there is no such patient and when they are registered
    elsewhere: a clerk cannot learn who is registered at other practices.
    """
    with transaction.atomic():
        patient = (
            Patient.objects.select_related("registered_practice")
            .filter(nhs_number=nhs_number)
            .first()
        )
        if patient is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        practice = patient.registered_practice
        decision = linkage_decision(
            actor, LOOKUP, actor_ods=actor_ods, patient_ods=practice.ods_code if practice else None
        )
        audit_record(
            actor=actor,
            action=LOOKUP,
            patient_id=patient.id,
            outcome="success" if decision.allowed else "denied",
            reason=decision.reason,
        )
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    resource = vault.cipher_for(patient_id=patient.id).open_json(
        patient.resource, purpose=PATIENT_PURPOSE
    )
    return Demographics(
        nhs_number=patient.nhs_number,
        name=fhir_map.human_name(resource) or "Name not recorded",
        birth_date=patient.birth_date,
    )


def verification_status(*, user: Any) -> str:
    """'linked', 'ready' (basic patient account, email confirmed), 'unconfirmed' or
    'not-a-patient-account'."""
    if PatientLink.objects.filter(user=user).exists():
        return "linked"
    account = Account.objects.filter(user=user).first()
    if account is None or account.kind != Account.Kind.PATIENT:
        return "not-a-patient-account"
    if account.email_confirmed_at is None:
        return "unconfirmed"
    return "ready"
