"""Writes to a patient's record other than imports."""

from __future__ import annotations

import uuid

from django.db import transaction

from healthspace.records.models import Organisation, Patient


def organisation_get_or_create(*, ods_code: str, name: str) -> Organisation:
    org, _ = Organisation.objects.get_or_create(
        identifier_system="https://fhir.nhs.uk/Id/ods-organization-code",
        identifier_value=ods_code,
        defaults={"name": name, "ods_code": ods_code},
    )
    return org


def patient_register_practice(*, patient_id: uuid.UUID, practice: Organisation) -> None:
    with transaction.atomic():
        Patient.objects.filter(pk=patient_id).update(registered_practice=practice)
