"""Reading and searching through the API: as the patient's own app sees their record,
every body valid FHIR, errors OperationOutcome, paging, parameters, caching headers."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from healthspace.audit.models import AuditEvent
from healthspace.fhir_api.testing import check
from healthspace.fhir_api.tests.conftest import bearer
from healthspace.messaging.models import Message
from healthspace.records.models import ScrItem
from healthspace.smart import testing as smart_testing

pytestmark = pytest.mark.django_db
BASE = "/fhir/R4"


def get(client: Client, path: str, **headers):
    response = client.get(f"{BASE}/{path}", **headers)
    body = check(response)
    return response, body


def test_metadata_lists_exactly_what_is_supported(client):
    response, body = get(client, "metadata")
    assert response.status_code == 200
    rest = body["rest"][0]
    types = {r["type"] for r in rest["resource"]}
    assert {
        "Patient",
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "Consent",
        "AuditEvent",
    } <= types
    communication = next(r for r in rest["resource"] if r["type"] == "Communication")
    assert {i["code"] for i in communication["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in communication["searchParam"]} == {
        "patient",
        "subject",
        "status",
        "sent",
        "_id",
        "_lastUpdated",
    }
    assert communication["searchInclude"] == ["Communication:patient", "Communication:subject"]
    observation = next(r for r in rest["resource"] if r["type"] == "Observation")
    assert {p["name"] for p in observation["searchParam"]} >= {
        "patient",
        "code",
        "date",
        "category",
    }
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"


def test_smart_configuration(client):
    response, body = get(client, ".well-known/smart-configuration")
    assert response.status_code == 200
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "permission-v2" in body["capabilities"] and "permission-v1" in body["capabilities"]
    assert body["token_endpoint"].endswith("/oauth/token/")


def test_without_a_valid_token_nothing_but_the_metadata(world):
    for headers in (
        {},
        {"HTTP_AUTHORIZATION": "Bearer nonsense"},
        {"HTTP_AUTHORIZATION": "Basic x"},
    ):
        response, body = get(Client(), f"Patient/{world.owner.patient_id}", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert body["issue"][0]["code"] == "login"


def test_an_expired_token_is_refused(world):
    token = smart_testing.issue_token(
        world.app, scope="patient/*.rs", user=world.owner.user, seconds=-1
    )
    assert bearer(token).get(f"{BASE}/Patient/{world.owner.patient_id}").status_code == 401


def test_xml_is_answered_406_and_bodies_must_be_json(patient_api, world):
    pid = world.owner.patient_id
    for headers in ({"HTTP_ACCEPT": "application/fhir+xml"}, {"HTTP_ACCEPT": "text/html"}):
        response, _body = get(patient_api, f"Patient/{pid}", **headers)
        assert response.status_code == 406
    response, _ = get(patient_api, f"Patient/{pid}?_format=xml")
    assert response.status_code == 406
    response, _ = get(
        patient_api, f"Patient/{pid}", HTTP_ACCEPT="application/fhir+json;q=1, */*;q=0"
    )
    assert response.status_code == 200


def test_unknown_types_are_not_supported(patient_api):
    response, body = get(patient_api, "Basic")
    assert response.status_code == 404 and body["issue"][0]["code"] == "not-supported"


def test_own_patient_with_etag_and_conditional_read(patient_api, world):
    pid = world.owner.patient_id
    response, body = get(patient_api, f"Patient/{pid}")
    assert response.status_code == 200
    assert body["id"] == str(pid)
    assert response["ETag"] == f'W/"{body["meta"]["versionId"]}"'
    assert response["Last-Modified"].endswith("GMT")
    assert response["Cache-Control"] == "no-store"
    nhs = next(i for i in body["identifier"] if i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
    assert nhs["value"] == world.owner.patient.nhs_number
    again = patient_api.get(f"{BASE}/Patient/{pid}", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def _all_pages(client: Client, path: str) -> list[dict]:
    resources, url, seen = [], f"{BASE}/{path}", 0
    while url:
        response = client.get(url.replace("http://127.0.0.1:8000", ""))
        body = check(response)
        assert response.status_code == 200, body
        resources += [
            e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == "match"
        ]
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
        seen += 1
        assert seen < 100
    return resources


def test_paging_with_next_links_returns_every_item_once(patient_api, world):
    items = ScrItem.objects.filter(patient_id=world.owner.patient_id, resource_type="Observation")
    paged = _all_pages(patient_api, "Observation?_count=2")
    assert len(paged) == items.count() > 2
    assert len({r["id"] for r in paged}) == len(paged)
    subjects = {r["subject"]["reference"] for r in paged}
    assert subjects == {f"Patient/{world.owner.patient_id}"}


def test_search_parameters(patient_api, world):
    pid = world.owner.patient_id
    everything = _all_pages(patient_api, "Observation")
    first = everything[0]
    coding = first["code"]["coding"][0]
    by_code = _all_pages(patient_api, f"Observation?code={coding['system']}|{coding['code']}")
    assert by_code and all(
        any(c["code"] == coding["code"] for c in r["code"]["coding"]) for r in by_code
    )
    assert _all_pages(patient_api, f"Observation?code={coding['code']}") == by_code
    assert _all_pages(patient_api, "Observation?code=http://example.org|nothing") == []
    when = first["effectiveDateTime"][:10]
    on_day = _all_pages(patient_api, f"Observation?date={when}")
    assert first["id"] in {r["id"] for r in on_day}
    assert all(r["effectiveDateTime"][:10] == when for r in on_day)
    before = _all_pages(patient_api, f"Observation?date=lt{when}")
    after = _all_pages(patient_api, f"Observation?date=ge{when}")
    assert len(before) + len(after) == len(everything)
    assert _all_pages(patient_api, f"Observation?patient={pid}") == everything
    assert _all_pages(patient_api, f"Observation?subject=Patient/{pid}") == everything
    active = _all_pages(patient_api, "Condition?clinical-status=active")
    assert all(r["clinicalStatus"]["coding"][0]["code"] == "active" for r in active)
    assert _all_pages(patient_api, "Observation?_lastUpdated=ge2000-01-01") == everything
    assert _all_pages(patient_api, "Observation?_lastUpdated=lt2000-01-01") == []
    oldest_first = _all_pages(patient_api, "Observation?_sort=date")
    assert [r["id"] for r in oldest_first] == [r["id"] for r in reversed(everything)] or len(
        everything
    ) < 2


def test_include_of_the_patient_and_count_only(patient_api, world):
    _, body = get(patient_api, "Observation?_include=Observation:patient&_count=1")
    modes = [e["search"]["mode"] for e in body["entry"]]
    assert modes == ["match", "include"]
    assert body["entry"][1]["resource"]["id"] == str(world.owner.patient_id)
    _response, body = get(patient_api, "Observation?_summary=count")
    assert body["total"] > 0 and "entry" not in body


def test_patient_search_by_nhs_number(patient_api, world):
    nhs = world.owner.patient.nhs_number
    _, body = get(patient_api, f"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}")
    assert [e["resource"]["id"] for e in body["entry"]] == [str(world.owner.patient_id)]
    _, body = get(
        patient_api,
        f"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{world.other.patient.nhs_number}",
    )
    assert body["total"] == 0  # another patient's NHS number finds nothing, not even a 403


def test_unsupported_parameters_strict_by_default_lenient_on_request(patient_api):
    response, body = get(patient_api, "Observation?flavour=salty")
    assert response.status_code == 400
    assert (
        body["issue"][0]["code"] == "not-supported" and "flavour" in body["issue"][0]["diagnostics"]
    )
    response, body = get(
        patient_api, "Observation?flavour=salty&_count=1", HTTP_PREFER="handling=lenient"
    )
    assert response.status_code == 200
    assert "flavour" not in body["link"][0]["url"] and "_count=1" in body["link"][0]["url"]
    for bad in (
        "_sort=name;drop table",
        "_sort=code",
        "date=yesterday",
        "_count=-1",
        "code=",
        "_include=Observation:performer",
    ):
        response, body = get(patient_api, f"Observation?{bad}")
        assert response.status_code == 400, bad
    response, _ = get(patient_api, "Condition?date=2020")  # Condition has no "date" in R4
    assert response.status_code == 400


def test_history_and_versions(patient_api, world):
    from healthspace.records.importer import import_entries, item_purpose
    from healthspace.vault import services as vault

    item = ScrItem.objects.filter(
        patient_id=world.owner.patient_id, resource_type="Condition"
    ).first()
    resource = vault.cipher_for(patient_id=item.patient_id).open_json(
        item.payload, purpose=item_purpose(item.identity)
    )["resource"]
    changed = {**resource, "note": [{"text": "Reviewed at the practice"}]}
    changed.pop("meta", None)
    import_entries([(None, changed)], where="test", source=item.source_system)
    _, current = get(patient_api, "Condition?_count=500")
    served = next(e["resource"] for e in current["entry"] if e["resource"].get("note"))
    assert served["meta"]["versionId"] == "2"
    _, history = get(patient_api, f"Condition/{served['id']}/_history")
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    _, first = get(patient_api, f"Condition/{served['id']}/_history/1")
    assert "note" not in first and first["id"] == served["id"]
    response, _ = get(patient_api, f"Condition/{served['id']}/_history/9")
    assert response.status_code == 404


def test_patient_recorded_observations_are_marked(patient_api, world):
    from django.db import transaction

    from healthspace.records.patient_items import PATIENT_RECORDED_TAG, patient_item_put

    reading = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]
        },
        "subject": {"reference": f"Patient/{world.owner.patient_id}"},
        "effectiveDateTime": "2026-11-01T08:00:00Z",
        "valueQuantity": {
            "value": 70.5,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
    }
    with transaction.atomic():
        patient_item_put(
            patient_id=world.owner.patient_id, key="reading:1", section="results", resource=reading
        )
    _, body = get(patient_api, "Observation?code=http://loinc.org|29463-7")
    mine = [
        e["resource"]
        for e in body["entry"]
        if any(t["code"] == "patient-recorded" for t in e["resource"]["meta"].get("tag", []))
    ]
    assert len(mine) == 1
    assert PATIENT_RECORDED_TAG in mine[0]["meta"]["tag"]
    assert mine[0]["meta"]["source"] == "urn:healthspace:patient"


def test_consent_and_the_access_trail(patient_api, world):
    pid = world.owner.patient_id
    _, consent = get(patient_api, f"Consent/{pid}")
    assert consent["meta"]["versionId"] == "0"  # implied: no choice recorded yet
    _, found = get(patient_api, "Consent")
    assert [e["resource"]["id"] for e in found["entry"]] == [str(pid)]
    get(patient_api, f"Patient/{pid}")
    _, trail = get(patient_api, "AuditEvent?_count=50")
    assert trail["total"] >= 2
    patients = {
        ent["what"]["reference"]
        for e in trail["entry"]
        for ent in e["resource"]["entity"]
        if ent.get("role", {}).get("code") == "1"
    }
    assert patients == {f"http://127.0.0.1:8000/fhir/R4/Patient/{pid}"}
    first_id = trail["entry"][0]["resource"]["id"]
    response, event = get(patient_api, f"AuditEvent/{first_id}")
    assert response.status_code == 200 and event["id"] == first_id


def test_every_read_is_audited_in_the_patients_trail_with_the_app(patient_api, world):
    before = AuditEvent.objects.filter(patient_id=world.owner.patient_id).count()
    get(patient_api, "Observation?_count=3")
    event = AuditEvent.objects.filter(patient_id=world.owner.patient_id).order_by("-pk").first()
    assert AuditEvent.objects.filter(patient_id=world.owner.patient_id).count() == before + 1
    assert (
        event.action == "scr.view" and event.outcome == "success" and event.reason == "own-record"
    )
    assert event.detail["client"] == world.app.application.client_id
    assert event.detail["items"] == 3 and event.detail["via"] == "fhir"
    assert "Observation" not in json.dumps(event.detail["sections"])


def test_everything_and_the_patient_summary(patient_api, world):
    pid = world.owner.patient_id
    _, everything = get(patient_api, f"Patient/{pid}/$everything")
    types = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert types[0] == "Patient" and "Consent" in types
    items = ScrItem.objects.filter(patient_id=pid).count()
    messages = Message.objects.filter(patient_id=pid).count()
    assert messages and types.count("Communication") == messages
    assert len(types) == items + 2 + messages
    response, summary = get(patient_api, f"Patient/{pid}/$summary")
    assert response.status_code == 200
    assert summary["type"] == "document"
    composition = summary["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    codes = [s["code"]["coding"][0]["code"] for s in composition["section"]]
    assert codes[:3] == ["48765-2", "10160-0", "11450-4"]  # allergies, medicines, problems
    referenced = {e["reference"] for s in composition["section"] for e in s.get("entry", [])}
    full_urls = {e["fullUrl"] for e in summary["entry"]}
    assert referenced <= full_urls


def test_throttled_clients_get_429(patient_api, world, settings):
    from django.core.cache import cache

    cache.clear()
    settings.HEALTHSPACE_FHIR_RATE_LIMIT = 2
    codes = [
        patient_api.get(f"{BASE}/Patient/{world.owner.patient_id}").status_code for _ in range(3)
    ]
    response = patient_api.get(f"{BASE}/Patient/{world.owner.patient_id}")
    body = check(response)
    assert codes[:2] == [200, 200] and response.status_code == 429
    assert int(response["Retry-After"]) >= 1 and body["issue"][0]["code"] == "throttled"


def test_audit_events_name_the_app_that_read(patient_api, world):
    from healthspace.audit.fhir import ID_OAUTH_CLIENT

    get(patient_api, f"Patient/{world.owner.patient_id}")
    _, trail = get(patient_api, "AuditEvent?_count=5")
    apps = {
        a["who"]["identifier"]["value"]
        for e in trail["entry"]
        for a in e["resource"]["agent"]
        if a["who"].get("identifier", {}).get("system") == ID_OAUTH_CLIENT
    }
    assert apps == {world.app.application.client_id}


def test_search_by_post_is_the_same_search(patient_api):
    by_get = check(patient_api.get(f"{BASE}/Observation?_count=2"))
    response = patient_api.post(
        f"{BASE}/Observation/_search",
        data="_count=2",
        content_type="application/x-www-form-urlencoded",
    )
    by_post = check(response)
    assert response.status_code == 200
    assert [e["resource"]["id"] for e in by_post["entry"]] == [
        e["resource"]["id"] for e in by_get["entry"]
    ]
    assert by_post["total"] == by_get["total"]
