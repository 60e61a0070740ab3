from __future__ import annotations

from datetime import timedelta

import pytest

from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import PatientLink
from healthspace.core.clock import now
from healthspace.ops.demo import DEMO_PASSWORD_PATIENT, ensure_demo_logins

READING_NOTE = "PORTABILITY-READING-NOTE"
MESSAGE_BODY = "PORTABILITY-MESSAGE-BODY"


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def person(synthetic_patients, fast_hasher):
    """A verified demo account with a reading and a message thread with its practice."""
    from healthspace.messaging.services import thread_open_by_patient
    from healthspace.organiser import services as organiser
    from healthspace.organiser.measures import Measure

    ensure_demo_logins(count=1)
    link = PatientLink.objects.select_related("user", "patient").first()
    user = link.user
    actor = actor_for_user(user)
    organiser.reading_add(
        actor=actor,
        owner_id=user.pk,
        measure=Measure.BLOOD_PRESSURE,
        taken_at=now() - timedelta(hours=2),
        values={"systolic": 131, "diastolic": 84},
        entered={"unit": "mmHg"},
        note=READING_NOTE,
    )
    organiser.reading_add(
        actor=actor,
        owner_id=user.pk,
        measure=Measure.WEIGHT,
        taken_at=now() - timedelta(hours=1),
        values={"kg": 72.5},
        entered={"unit": "kg"},
        note="",
    )
    thread_open_by_patient(
        actor=actor, user_id=user.pk, subject="About my tablets", body=MESSAGE_BODY
    )
    user.password_text = DEMO_PASSWORD_PATIENT
    return link
