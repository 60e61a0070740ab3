"""A token reaches its own compartment and nothing else: a patient's app never reads
another patient's resources (ids, searches, includes, _history, $everything, $summary,
bulk), a system client only its organisation's registered patients, and a read-only
scope never writes. Absent and forbidden look the same (404, or an empty search)."""

from __future__ import annotations

import json

import pytest

from healthspace.audit.models import AuditEvent
from healthspace.fhir_api import ids
from healthspace.fhir_api.testing import check
from healthspace.fhir_api.tests.conftest import OTHERS_WORDS, bearer
from healthspace.messaging.models import Message
from healthspace.records.models import Patient, ScrItem, ScrItemVersion
from healthspace.smart import testing as smart_testing

pytestmark = pytest.mark.django_db
BASE = "/fhir/R4"


def _secrets_of(patient: Patient) -> list[str]:
    """What must never appear in another caller's responses."""
    items = ScrItem.objects.filter(patient_id=patient.pk)
    messages = Message.objects.filter(patient_id=patient.pk)
    words = [OTHERS_WORDS] if messages.exists() else []
    return [
        str(patient.pk),
        patient.nhs_number,
        *(ids.item_id(i.pk) for i in items),
        *(str(m.pk) for m in messages),
        *(str(m.thread_id) for m in messages),
        *words,
    ]


def _urls_about(patient: Patient) -> list[str]:
    pid = patient.pk
    urls = [
        f"Patient/{pid}",
        f"Patient/{pid}/_history",
        f"Patient/{pid}/_history/1",
        f"Patient/{pid}/$everything",
        f"Patient/{pid}/$summary",
        f"Consent/{pid}",
        f"Consent/{pid}/_history",
        f"Consent/{pid}/_history/0",
    ]
    for item in ScrItem.objects.filter(patient_id=pid):
        fhir_id = ids.item_id(item.pk)
        urls += [
            f"{item.resource_type}/{fhir_id}",
            f"{item.resource_type}/{fhir_id}/_history",
            f"{item.resource_type}/{fhir_id}/_history/1",
        ]
    for event in AuditEvent.objects.filter(patient_id=pid)[:5]:
        urls.append(f"AuditEvent/{event.pk}")
    for message in Message.objects.filter(patient_id=pid):
        urls += [f"Communication/{message.pk}", f"Communication/{message.pk.hex}"]
    return urls


def _searches_about(patient: Patient) -> list[str]:
    pid = patient.pk
    types = sorted(
        set(ScrItem.objects.filter(patient_id=pid).values_list("resource_type", flat=True))
    )
    out = [
        f"Patient?_id={pid}",
        f"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{patient.nhs_number}",
    ]
    out += [f"Consent?patient={pid}", f"AuditEvent?patient={pid}"]
    out += [
        f"Communication?patient={pid}",
        f"Communication?subject=Patient/{pid}&_include=Communication:subject",
        f"Communication?patient={pid}&_include=Communication:patient",
        *(f"Communication?_id={m.pk}" for m in Message.objects.filter(patient_id=pid)),
    ]
    for rtype in types:
        if rtype in ("Practitioner", "PractitionerRole"):
            continue  # not in the patient compartment: no patient parameter
        out += [
            f"{rtype}?patient={pid}",
            f"{rtype}?patient=Patient/{pid}&_include={rtype}:patient",
            f"{rtype}?patient=http://127.0.0.1:8000/fhir/R4/Patient/{pid}",
        ]
    return out


def _walk(client, urls, searches, secrets):
    wrong = []
    for url in urls:
        response = client.get(f"{BASE}/{url}")
        body = response.content.decode()
        check(response)
        if response.status_code != 404:
            wrong.append(f"{url}: {response.status_code}")
        wrong += [f"{url}: leaked {s}" for s in secrets if s in body]
    for url in searches:
        response = client.get(f"{BASE}/{url}")
        body = check(response)
        if response.status_code != 200 or body["total"] != 0 or body.get("entry"):
            wrong.append(f"{url}: {response.status_code} total={body and body.get('total')}")
        # the self link repeats what the caller asked; nothing else may name the patient
        shown = json.dumps({k: v for k, v in (body or {}).items() if k != "link"})
        wrong += [f"{url}: leaked {s}" for s in secrets if s in shown]
    return wrong


def test_a_patients_app_never_reaches_another_patient(world, patient_api):
    other = world.other.patient
    assert ScrItem.objects.filter(patient_id=other.pk).count() > 5
    assert Message.objects.filter(patient_id=other.pk).exists()
    ScrItemVersion.objects.count()  # (versions are reached through their item's id)
    wrong = _walk(patient_api, _urls_about(other), _searches_about(other), _secrets_of(other))
    assert not wrong, "\n".join(wrong)
    # the attempts are in the other patient's trail, as on the pages
    assert AuditEvent.objects.filter(
        patient_id=other.pk, outcome="denied", actor=f"patient:user:{world.owner.user_id}"
    ).exists()


def test_a_made_up_id_is_just_absent(patient_api):
    for url in (
        "Observation/" + "0" * 32,
        "Observation/123",
        "Observation/../Patient",
        "Patient/not-a-uuid",
    ):
        response = patient_api.get(f"{BASE}/{url}")
        check(response)
        assert response.status_code == 404, url


def test_bulk_export_is_not_for_patient_apps(world, patient_api):
    for url in ("$export", "Patient/$export", f"Group/{world.practice}/$export"):
        response = patient_api.get(f"{BASE}/{url}", HTTP_PREFER="respond-async")
        check(response)
        assert response.status_code == 403, url


def test_a_narrow_scope_reaches_only_its_types(world):
    token = smart_testing.issue_token(
        world.app, scope="patient/Observation.rs", user=world.owner.user
    )
    client = bearer(token)
    assert client.get(f"{BASE}/Observation").status_code == 200
    message = Message.objects.filter(patient_id=world.owner.patient_id).first()
    for url in (
        "Condition",
        f"Patient/{world.owner.patient_id}",
        "AuditEvent",
        "Consent",
        "Communication",
        f"Communication/{message.pk}",
    ):
        response = client.get(f"{BASE}/{url}")
        check(response)
        assert response.status_code == 403, url
    # $everything carries only what the scopes allow; without Patient it is refused
    response = client.get(f"{BASE}/Patient/{world.owner.patient_id}/$everything")
    assert response.status_code == 403


def test_read_only_scopes_never_write(world, patient_api):
    pid = world.owner.patient_id
    read_only_feed = bearer(smart_testing.issue_token(world.feed, scope="system/*.rs"))
    observation = {
        "resourceType": "Observation",
        "id": "weight-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 80, "unit": "kg"},
    }
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation, "request": {"method": "PUT", "url": "Observation/weight-1"}}
        ],
    }
    before = (ScrItem.objects.count(), Patient.objects.count())
    for client in (patient_api, read_only_feed):
        for method, url, body in (
            ("post", "Observation", observation),
            ("put", "Observation/weight-1", observation),
            ("post", "", transaction),
        ):
            response = getattr(client, method)(
                f"{BASE}/{url}", data=body, content_type="application/fhir+json"
            )
            check(response)
            assert response.status_code == 403, (method, url, response.content)
    assert (ScrItem.objects.count(), Patient.objects.count()) == before


def test_a_system_client_reaches_only_its_organisations_registered_patients(world, feed_api):
    elsewhere = Patient.objects.exclude(registered_practice__ods_code=world.practice).first()
    assert elsewhere is not None
    wrong = _walk(
        feed_api,
        # (Communication, AuditEvent and Consent are not for system clients at all: 403,
        # test_communication and test_reads)
        [
            u
            for u in _urls_about(elsewhere)
            if not u.startswith(("AuditEvent", "Consent", "Communication"))
        ],
        [
            s
            for s in _searches_about(elsewhere)
            if not s.startswith(("AuditEvent", "Consent", "Communication"))
        ],
        _secrets_of(elsewhere),
    )
    assert not wrong, "\n".join(wrong)
    mine = world.owner.patient
    response = feed_api.get(f"{BASE}/Patient/{mine.pk}")
    assert response.status_code == 200
    response = feed_api.get(f"{BASE}/Observation")
    body = check(response)
    assert response.status_code == 400 and "one patient" in body["issue"][0]["diagnostics"]


def test_hidden_and_dissented_records_are_closed_to_system_clients(world, feed_api):
    from healthspace.access.context import ConsentState
    from healthspace.consent.models import ConsentRecord
    from healthspace.core.clock import now

    pid = world.owner.patient_id
    assert (
        feed_api.get(f"{BASE}/Condition?patient={pid}").json()["total"] == 0
    )  # no consent to additional
    assert feed_api.get(f"{BASE}/AllergyIntolerance?patient={pid}").status_code == 200
    ConsentRecord.objects.create(
        patient_id=pid,
        version=1,
        state=ConsentState.HIDDEN,
        recorded_at=now(),
        recorded_by="patient:user:1",
        source="patient-online",
    )
    body = check(feed_api.get(f"{BASE}/AllergyIntolerance?patient={pid}"))
    assert body["total"] == 0
    assert feed_api.get(f"{BASE}/Patient/{pid}/$everything").status_code == 404
