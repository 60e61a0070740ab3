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
    return World(owner, other, smart_testing.patient_app(), feed, key, third)


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
