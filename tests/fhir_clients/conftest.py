"""A live HealthSpace (pytest-django's live_server, a real HTTP server on a free
loopback port) with synthetic patients, a patient app and a GP system, for the real
FHIR clients to talk to."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from healthspace.accounts.models import PatientLink
from healthspace.fhir_api.tests.conftest import converse
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records import synthetic
from healthspace.records.importer import import_entries
from healthspace.smart import testing as smart_testing


@dataclass
class LiveWorld:
    base: str
    owner: PatientLink
    other: PatientLink
    app: object
    feed: object
    feed_key: object


@pytest.fixture
def live_world(live_server, transactional_db, settings) -> LiveWorld:
    settings.HEALTHSPACE_BASE_URL = live_server.url
    settings.HEALTHSPACE_FHIR_BASE = f"{live_server.url}/fhir/R4"
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ISS_ENDPOINT": f"{live_server.url}/oauth",
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for bundle in synthetic.population(3):
        entries = [(e.get("fullUrl"), e["resource"]) for e in bundle["entry"]]
        import_entries(entries, where="synthetic", source=synthetic.SOURCE)
    ensure_demo_logins(count=2)
    links = list(
        PatientLink.objects.select_related("patient__registered_practice", "user").order_by(
            "user__username"
        )
    )
    feed, key = smart_testing.system_client(
        ods=links[0].patient.registered_practice.ods_code, scopes="system/*.rs"
    )
    converse(links[0], links[1])  # messages, served as Communication
    return LiveWorld(
        f"{live_server.url}/fhir/R4",
        links[0],
        links[1],
        smart_testing.patient_app("Live app"),
        feed,
        key,
    )
