"""Audit test fixtures: a fixed checkpoint key, and a small chain to tamper with."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.audit.services import audit_record

# A test-only Ed25519 seed; never a real key.
TEST_SEED = bytes(range(32))
CLINICIAN = Actor("staff", "user:7")


@pytest.fixture(autouse=True)
def signing_key(settings):
    settings.HEALTHSPACE_AUDIT_SIGNING_KEY = TEST_SEED
    return TEST_SEED


def record(patient_id: uuid.UUID | None, *, actor: Actor = CLINICIAN, n: int = 0, **extra):
    with transaction.atomic():
        return audit_record(
            actor=actor,
            action=extra.get("action", "scr.view"),
            patient_id=patient_id,
            outcome=extra.get("outcome", "allowed"),
            reason=extra.get("reason", "direct care"),
            detail=extra.get("detail", {"sections": ["allergies"], "n": n}),
        )


@pytest.fixture
def patient_chain(db):
    """Three events in one patient's chain; returns (patient_id, [e1, e2, e3])."""
    patient = uuid.uuid4()
    return patient, [record(patient, n=n) for n in range(3)]
