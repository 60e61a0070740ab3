from __future__ import annotations

import uuid

import pytest

from healthspace.access.actors import Actor
from healthspace.access.roles import Role
from healthspace.consent.models import Source
from healthspace.records.models import Patient


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_patient(db):
    def make(nhs_number: str = "9999999999") -> uuid.UUID:
        return Patient.objects.create(
            nhs_number=nhs_number, resource=b"", content_hash="x", source_system="test"
        ).id

    return make


def actor_for(source: Source, patient_id: uuid.UUID) -> Actor:
    """Someone entitled to make changes from ``source``."""
    if source == Source.PATIENT_ONLINE:
        return Actor("patient", "user:1", patient_id=patient_id)
    if source == Source.GP_PRACTICE:
        return Actor("staff", "user:2", roles=frozenset({Role.REGISTRATION_CLERK}))
    return Actor("staff", "user:3", roles=frozenset({Role.PRIVACY_OFFICER}))
