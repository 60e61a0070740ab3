"""The audit trail outlives the record and the account: once both are gone, what is left
names the patient only by a random id nothing maps back to (a pseudonym), and every chain
still verifies."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from healthspace.access.actors import Actor
from healthspace.accounts.models import PatientLink
from healthspace.audit.models import AuditEvent
from healthspace.audit.verify import verify_database
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import Patient
from healthspace.records.selectors import scr_for

pytestmark = pytest.mark.django_db


def test_deleting_the_record_and_account_leaves_a_verifiable_pseudonymous_trail(
    synthetic_patients, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_demo_logins(count=1)
    link = PatientLink.objects.select_related("patient", "user").get()
    patient, user = link.patient, link.user
    actor = Actor("patient", f"user:{user.pk}", patient_id=patient.id)
    scr = scr_for(actor=actor, patient_id=patient.id)
    identifying = [patient.nhs_number, scr.name, user.username]
    before = AuditEvent.objects.filter(patient_id=patient.id).count()
    assert before >= 2  # the import and the view at least

    get_user_model().objects.filter(pk=user.pk).delete()
    Patient.objects.filter(pk=patient.id).delete()

    kept = list(AuditEvent.objects.filter(patient_id=patient.id))
    assert len(kept) == before
    text = json.dumps(
        [[e.actor, e.action, e.reason, e.outcome, e.detail, e.chain_key] for e in kept]
    )
    for value in identifying:
        assert value not in text
    assert not Patient.objects.filter(pk=patient.id).exists()
    assert verify_database().ok
