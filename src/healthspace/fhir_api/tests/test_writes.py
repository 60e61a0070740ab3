"""GP feeds writing through the API: one import path (the importer's strict validation),
all or nothing per request, idempotent on the source's logical ids, only the feed's own
organisation's registered patients."""

from __future__ import annotations

import copy
import json

import pytest

from healthspace.audit.models import AuditEvent
from healthspace.core import nhs_numbers
from healthspace.fhir_api.testing import check
from healthspace.records import synthetic
from healthspace.records.models import (
    Organisation,
    Patient,
    PatientIdentifier,
    ScrItem,
    ScrItemVersion,
)
from healthspace.records.tests.data import fhir_data_dir

pytestmark = pytest.mark.django_db
BASE = "/fhir/R4"
FHIR_JSON = "application/fhir+json"


def transaction_of(bundle: dict) -> dict:
    """A collection Bundle as a transaction of PUTs by the source's logical ids."""
    entries = []
    for entry in bundle["entry"]:
        resource = copy.deepcopy(entry["resource"])
        entries.append(
            {
                "fullUrl": entry.get("fullUrl") or f"urn:uuid:{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def counts() -> tuple:
    return (
        Patient.objects.count(),
        ScrItem.objects.count(),
        ScrItemVersion.objects.count(),
        PatientIdentifier.objects.count(),
        Organisation.objects.count(),
        AuditEvent.objects.filter(action="record.import", outcome="success").count(),
    )


def post(client, path: str, body) -> tuple:
    response = client.post(f"{BASE}/{path}", data=json.dumps(body), content_type=FHIR_JSON)
    return response, check(response)


def put(client, path: str, body, **headers) -> tuple:
    response = client.put(
        f"{BASE}/{path}", data=json.dumps(body), content_type=FHIR_JSON, **headers
    )
    return response, check(response)


def new_patient_bundle(world) -> dict:
    """A patient not yet here, registered at the feed's practice."""
    index = next(i for i in range(3, 20) if synthetic.PRACTICES[i % 2][0] == world.practice)
    return synthetic.patient_bundle(index)


def test_a_transaction_creates_a_new_patients_record_and_again_changes_nothing(world, feed_api):
    bundle = transaction_of(new_patient_bundle(world))
    before = counts()
    response, body = post(feed_api, "", bundle)
    assert response.status_code == 200, body
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert "201 Created" in statuses
    created = counts()
    assert created[0] == before[0] + 1 and created[1] > before[1]
    # the items are served at the locations given, under the new patient
    # (core information: the practice's own system reads it back; additional information
    # only with the patient's consent)
    first = next(
        e
        for e in body["entry"]
        if e["response"].get("location", "").startswith("AllergyIntolerance/")
    )
    location = first["response"]["location"].rsplit("/_history/", 1)[0]
    response = feed_api.get(f"{BASE}/{location}")
    assert response.status_code == 200
    # idempotent on the source's logical ids: the same again writes nothing new
    response, body = post(feed_api, "", bundle)
    assert response.status_code == 200
    assert {e["response"]["status"] for e in body["entry"]} == {"200 OK"}
    assert counts()[:5] == created[:5]


def test_a_transaction_with_one_invalid_entry_changes_nothing(world, feed_api):
    bundle = transaction_of(new_patient_bundle(world))
    broken = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    broken["resource"]["effectiveDateTime"] = "yesterday"
    before = counts()
    response, body = post(feed_api, "", bundle)
    assert response.status_code == 400
    assert body["resourceType"] == "OperationOutcome"
    assert counts() == before
    assert not Patient.objects.filter(
        nhs_number=next(
            e["resource"]["identifier"][0]["value"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
    ).exists()


def test_a_feed_writes_only_its_own_practices_patients(world, feed_api):
    elsewhere = Patient.objects.exclude(registered_practice__ods_code=world.practice).first()
    observation = {
        "resourceType": "Observation",
        "id": "bp-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{elsewhere.pk}"},
        "valueQuantity": {"value": 120, "unit": "mmHg"},
    }
    before = counts()
    response, body = put(feed_api, "Observation/bp-1", observation)
    assert response.status_code == 422, body
    assert body["issue"][0]["code"] == "business-rule"
    assert counts() == before
    # the attempt is in that patient's trail
    assert AuditEvent.objects.filter(
        patient_id=elsewhere.pk, action="record.import", outcome="denied"
    ).exists()
    # a new patient registered elsewhere is refused too
    other_practice = new_patient_bundle(world)
    for entry in other_practice["entry"]:
        if entry["resource"]["resourceType"] == "Organization":
            entry["resource"]["identifier"][0]["value"] = "ZZ999"
    response, _ = post(feed_api, "", transaction_of(other_practice))
    assert response.status_code == 422
    assert counts() == before


def test_a_feed_cannot_move_a_patient_to_another_practice(world, feed_api):
    bundle = transaction_of(new_patient_bundle(world))
    assert post(feed_api, "", bundle)[0].status_code == 200
    moved = copy.deepcopy(bundle)
    for entry in moved["entry"]:
        if entry["resource"]["resourceType"] == "Organization":
            entry["resource"]["identifier"][0]["value"] = "ZZ999"
        if entry["resource"]["resourceType"] == "Patient":  # a new version names the practice
            entry["resource"]["gender"] = "unknown"
    before = counts()
    response, body = post(feed_api, "", moved)
    assert response.status_code == 422, body
    assert counts() == before


def _observation(pid, value: float) -> dict:
    return {
        "resourceType": "Observation",
        "id": "weight-1",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]
        },
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-11-20T09:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
        "identifier": [{"system": "https://gp.example/obs", "value": "w-1"}],
    }


@pytest.fixture
def additional_consent(world):
    """The owner agreed to share additional information (test results are additional)."""
    from healthspace.access.context import ConsentState
    from healthspace.consent.models import ConsentRecord
    from healthspace.core.clock import now

    ConsentRecord.objects.create(
        patient_id=world.owner.patient_id,
        version=1,
        state=ConsentState.CORE_AND_ADDITIONAL,
        recorded_at=now(),
        recorded_by="patient:user:1",
        source="patient-online",
    )


def test_without_consent_to_additional_information_a_write_is_stored_not_shown(world, feed_api):
    response, body = put(feed_api, "Observation/weight-1", _observation(world.owner.patient_id, 70))
    assert response.status_code == 201
    assert body["resourceType"] == "OperationOutcome" and "70" not in json.dumps(body)
    assert feed_api.get(response["Location"].split("/_history")[0]).status_code == 404


def test_single_resources_update_as_create_versions_and_if_match(
    world, feed_api, additional_consent
):
    pid = world.owner.patient_id
    response, body = put(feed_api, "Observation/weight-1", _observation(pid, 70))
    assert response.status_code == 201, body
    assert response["ETag"] == 'W/"1"'
    location = response["Location"]
    server_id = location.split("/Observation/")[1].split("/")[0]
    assert body["id"] == server_id and body["subject"]["reference"] == f"Patient/{pid}"
    response, _ = put(feed_api, "Observation/weight-1", _observation(pid, 70))
    assert response.status_code == 200 and response["ETag"] == 'W/"1"'  # unchanged
    response, _ = put(feed_api, "Observation/weight-1", _observation(pid, 71))
    assert response.status_code == 200 and response["ETag"] == 'W/"2"'
    # by the server id, with If-Match
    resource = {**_observation(pid, 72), "id": server_id}
    response, body = put(feed_api, f"Observation/{server_id}", resource, HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 412, body
    response, _ = put(feed_api, f"Observation/{server_id}", resource, HTTP_IF_MATCH='W/"2"')
    assert response.status_code == 200 and response["ETag"] == 'W/"3"'
    response, body = put(feed_api, "Observation/other-id", _observation(pid, 1))
    assert response.status_code == 400  # the id in the body is not the id in the URL


def test_create_and_conditional_create_and_update(world, feed_api, additional_consent):
    pid = world.owner.patient_id
    observation = _observation(pid, 65)
    observation.pop("id")
    response, body = post(feed_api, "Observation", observation)
    assert response.status_code == 201, body
    server_id = body["id"]
    condition = "identifier=https://gp.example/obs|w-1"
    response, body = (
        feed_api.post(
            f"{BASE}/Observation",
            data=json.dumps(observation),
            content_type=FHIR_JSON,
            HTTP_IF_NONE_EXIST=condition,
        ),
        None,
    )
    assert response.status_code == 200 and check(response)["id"] == server_id
    nhs = world.owner.patient.nhs_number
    _, patient = put(
        feed_api,
        f"Patient?identifier={nhs_numbers.NHS_NUMBER_SYSTEM}|{nhs}",
        {**feed_api.get(f"{BASE}/Patient/{pid}").json(), "gender": "unknown"},
    )
    assert patient["id"] == str(pid) and patient["gender"] == "unknown"


def test_bad_requests(world, feed_api, settings):
    response = feed_api.post(
        f"{BASE}/Observation", data="<Observation/>", content_type="application/fhir+xml"
    )
    check(response)
    assert response.status_code == 415
    response = feed_api.post(f"{BASE}/Observation", data="{not json", content_type=FHIR_JSON)
    check(response)
    assert response.status_code == 400
    response, _ = post(feed_api, "Observation", {"resourceType": "Condition"})
    assert response.status_code == 400
    response, _ = post(feed_api, "", {"resourceType": "Bundle", "type": "batch", "entry": []})
    assert response.status_code == 400
    response = feed_api.delete(f"{BASE}/Observation/x")
    check(response)
    assert response.status_code == 405
    settings.HEALTHSPACE_FHIR_MAX_REQUEST_BYTES = 1000
    response, body = post(feed_api, "", transaction_of(new_patient_bundle(world)))
    assert response.status_code == 413 and body["issue"][0]["code"] == "too-costly"
    # bodies larger than the web form limit reach the FHIR check, not an HTML page
    settings.HEALTHSPACE_FHIR_MAX_REQUEST_BYTES = 20 * 1024 * 1024
    big = {"resourceType": "Bundle", "type": "transaction", "entry": [], "x": "y" * 6_000_000}
    response, _ = post(feed_api, "", big)
    assert response.status_code == 400


@pytest.mark.synthea
def test_a_real_synthea_record_through_the_api_reads_back_as_valid_fhir(world, feed_api):
    path = sorted((fhir_data_dir() / "synthea-smart-generated-sample-data").glob("*.json"))[0]
    bundle = json.loads(path.read_text())
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    nhs = nhs_numbers.synthetic_for(f"api-test:{path.name}")
    patient["identifier"] = [
        {"system": nhs_numbers.NHS_NUMBER_SYSTEM, "value": nhs},
        *patient.get("identifier", []),
    ]
    patient["generalPractitioner"] = [
        {
            "identifier": {
                "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                "value": world.practice,
            }
        }
    ]
    response, body = post(feed_api, "", transaction_of(bundle))
    assert response.status_code == 200, body
    pid = Patient.objects.get(nhs_number=nhs).pk
    response = feed_api.get(f"{BASE}/Patient/{pid}/$everything")
    everything = check(response)
    assert response.status_code == 200
    sections = {s for s in ScrItem.objects.filter(patient_id=pid).values_list("section", flat=True)}
    served_types = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert "Patient" in served_types and "AllergyIntolerance" in served_types | {
        "AllergyIntolerance"
    }
    assert sections  # core sections at least (no consent to additional: withheld)
    response = feed_api.get(f"{BASE}/Patient/{pid}/$summary")
    assert check(response)["type"] == "document"
