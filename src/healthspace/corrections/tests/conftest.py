"""Fixtures: two verified patients (the first registered at the demo practice Y00001),
clinicians in and outside that practice, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.consent.models import ConsentRecord
from healthspace.core.clock import now
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import Patient, ScrItem, Section
from healthspace.staff.testing import make_staff_user


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Person:
    user: object
    patient: Patient

    @property
    def actor(self) -> Actor:
        return actor_for_user(self.user)

    def client(self):
        return signed_in_client(self.user)


@pytest.fixture
def people(synthetic_patients) -> tuple[Person, Person]:
    """(me, someone else): two verified patients, me at the demo practice."""
    ensure_demo_logins(count=2)
    links = list(PatientLink.objects.select_related("user", "patient").order_by("user__username"))
    me, other = (Person(link.user, link.patient) for link in links[:2])
    assert me.patient.registered_practice.ods_code == "Y00001"
    return me, other


@pytest.fixture
def me(people) -> Person:
    return people[0]


@pytest.fixture
def other(people) -> Person:
    return people[1]


def item_of(patient: Patient, section: str = Section.ALLERGIES) -> ScrItem:
    return ScrItem.objects.filter(patient=patient, section=section).order_by("id").first()


def staff_client(*roles: str, ods: str = "Y00001", **names):
    user = make_staff_user(*roles, ods=ods, **names)
    return user, signed_in_client(user, second_factor="passkey")


def consent(patient: Patient, state: ConsentState) -> None:
    latest = ConsentRecord.objects.filter(patient_id=patient.id).order_by("-version").first()
    ConsentRecord.objects.create(
        patient_id=patient.id,
        version=(latest.version + 1) if latest else 1,
        state=state,
        recorded_at=now(),
        recorded_by="test",
        source="patient-online",
    )


@pytest.fixture
def clinician():
    """A clinician of the demo practice (Y00001): (user, signed-in client)."""
    return staff_client("clinician", first="Asha", last="Patel")


def users_named(*usernames: str):
    return get_user_model().objects.filter(username__in=usernames)
