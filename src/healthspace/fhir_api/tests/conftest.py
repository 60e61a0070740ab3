"""A small world for the API: three synthetic patients (two with accounts), a patient
app, and a GP system registered for the first patient's practice."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from healthspace.accounts.models import PatientLink
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import Patient
from healthspace.smart import testing as smart_testing


@dataclass
class World:
    owner: PatientLink
    other: PatientLink
    app: object
    feed: object
    feed_key: object
    third: Patient  # no account
    tokens: dict | None = None

    @property
    def practice(self) -> str:
        return self.owner.patient.registered_practice.ods_code


def bearer(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/fhir+json")


def build_world() -> World:
    """Three synthetic patients imported, two demo logins, the clients (no fixtures: the
    fuzz suite builds it once per module)."""
    from healthspace.records import synthetic
    from healthspace.records.importer import import_entries

    if not Patient.objects.exists():
        for bundle in synthetic.population(3):
            entries = [(e.get("fullUrl"), e["resource"]) for e in bundle["entry"]]
            import_entries(entries, where="synthetic", source=synthetic.SOURCE)
    ensure_demo_logins(count=2)
    links = list(
        PatientLink.objects.select_related("patient__registered_practice", "user").order_by(
            "user__username"
        )
    )
    owner, other = links[0], links[1]
    third = Patient.objects.exclude(pk__in=[owner.patient_id, other.patient_id]).get()
    feed, key = smart_testing.system_client(
        ods=owner.patient.registered_practice.ods_code, scopes="system/*.rs system/*.cu"
    )
    converse(owner, other)
    return World(owner, other, smart_testing.patient_app(), feed, key, third)


OTHERS_WORDS = "Zebra-crossing-secret: my neighbour must never read this"


def converse(owner: PatientLink, other: PatientLink) -> None:
    """Conversations in the Communicator (served as Communication): the owner asks their
    practice and a clinician replies; the owner sends a photo; the other patient writes
    something only they may read."""
    from healthspace.access.roles import Role
    from healthspace.accounts.actors import actor_for_user
    from healthspace.messaging import services
    from healthspace.messaging.attachments import attachment_check
    from healthspace.messaging.models import Thread
    from healthspace.messaging.tests.files import png
    from healthspace.staff.testing import make_staff_user

    if Thread.objects.exists():
        return
    me = actor_for_user(owner.user)
    sent = services.thread_open_by_patient(
        actor=me, user_id=owner.user.pk, subject="Repeat prescription", body="Please renew."
    )
    clinician = make_staff_user(
        Role.CLINICIAN, ods=owner.patient.registered_practice.ods_code, first="Asha", last="Patel"
    )
    services.message_send(
        actor=actor_for_user(clinician),
        user_id=clinician.pk,
        thread_id=sent.thread_id,
        body="Done: collect it on Friday.\n\nAsha",
    )
    services.thread_open_by_patient(
        actor=me,
        user_id=owner.user.pk,
        subject="My rash <b>today</b>",
        body="A photo of the rash & how it looks now.",
        attachment=attachment_check(name="rash.png", data=png(), max_bytes=1_000_000),
    )
    services.thread_open_by_patient(
        actor=actor_for_user(other.user),
        user_id=other.user.pk,
        subject="Private question",
        body=OTHERS_WORDS,
    )


@pytest.fixture
def world(synthetic_patients, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


@pytest.fixture
def patient_api(world) -> Client:
    token = smart_testing.issue_token(
        world.app, scope="launch/patient patient/*.rs openid fhirUser", user=world.owner.user
    )
    return bearer(token)


@pytest.fixture
def feed_api(world) -> Client:
    return bearer(smart_testing.issue_token(world.feed, scope="system/*.rs system/*.cu"))
