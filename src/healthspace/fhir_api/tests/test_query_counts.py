"""Constant query counts per request, whatever the size of the record (performance
anchors: no per-row queries on the hot paths)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from healthspace.records.importer import import_entries

pytestmark = pytest.mark.django_db

# token 1, patient 1, data key 1, items 1-2 (count + page), references between items 1
# (only when there are references), audit event 3, the transaction's savepoint 2; a system
# client adds its consent read. $everything of a patient's app also reads their messages
# (Communication: the messages with their replies 1, attachments 1, the account's portal
# key 2, its own message.view audit event 3 and savepoint 2).
LIMITS = {
    "Observation?_count=50": 11,
    "Observation?code=http://loinc.org|8867-4&_count=50": 10,
    "Observation?_include=Observation:patient&_count=50": 12,
    "Patient/{pid}/$everything": 12 + 9,
    "Communication?_count=50": 12,
    "Communication?_include=Communication:subject&_count=50": 20,
    "Patient/{pid}/$summary": 12,
    "AuditEvent?_count=50": 10,
}


def _more_observations(pid, count: int) -> None:
    entries = [
        (
            None,
            {
                "resourceType": "Observation",
                "id": f"hr-{i}",
                "status": "final",
                "code": {
                    "coding": [
                        {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
                    ]
                },
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00Z",
                "valueQuantity": {"value": 60 + i % 30, "unit": "/min"},
                "encounter": {"reference": f"Encounter/e-{i}"},
            },
        )
        for i in range(count)
    ]
    import_entries(entries, where="test", source="urn:test:bulk")


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/fhir/R4/{path}")
    assert response.status_code == 200, response.content[:300]
    return len(captured)


@pytest.mark.parametrize("path", list(LIMITS))
def test_a_request_costs_the_same_queries_for_3_items_or_300(world, patient_api, path):
    from healthspace.records.models import Patient, PatientIdentifier
    from healthspace.vault import services as vault

    pid = world.owner.patient_id
    PatientIdentifier.objects.get_or_create(
        patient=Patient.objects.get(pk=pid),
        lookup=vault.index("source-id", f"urn:test:bulk|Patient|{pid}"),
    )
    url = path.format(pid=pid)
    small = _queries(patient_api, url)
    _more_observations(pid, 300)
    large = _queries(patient_api, url)
    # the same, but for the one query that resolves references, made only when there are any
    assert small <= large <= min(small + 1, LIMITS[path]), (small, large)


def _more_messages(world, count: int) -> None:
    from healthspace.accounts.actors import actor_for_user
    from healthspace.messaging import services

    me = actor_for_user(world.owner.user)
    sent = services.thread_open_by_patient(
        actor=me, user_id=world.owner.user.pk, subject="Many", body="First"
    )
    for i in range(count):
        services.message_send(
            actor=me, user_id=world.owner.user.pk, thread_id=sent.thread_id, body=f"More {i}"
        )


@pytest.mark.parametrize("path", ["Communication?_count=50", "Communication?_count=5"])
def test_messages_cost_the_same_queries_for_3_or_60(world, patient_api, path):
    small = _queries(patient_api, path)
    _more_messages(world, 60)
    large = _queries(patient_api, path)
    assert large <= small + 1 <= LIMITS["Communication?_count=50"] + 1, (small, large)


def test_a_system_clients_search_is_constant_too(world, feed_api):
    pid = world.owner.patient_id
    path = f"AllergyIntolerance?patient={pid}&_count=50"
    assert _queries(feed_api, path) <= 12
