"""Real FHIR clients, not only our own code: the SMART on FHIR Python client (fhirclient)
connects as a patient's app (discovery, authorization code with PKCE, token), reads,
searches and pages; fhirpy reads, searches and pages with a patient's token and with a
system client's token got by a signed assertion. Over HTTP, against a live server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.communication import Communication
from fhirclient.models.condition import Condition
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient as SmartPatient
from fhirclient.server import FHIRNotFoundException
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError

from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.messaging.models import Message
from healthspace.records.models import ScrItem
from healthspace.smart import testing as smart_testing
from healthspace.smart.assertions import JWT_BEARER

pytestmark = pytest.mark.django_db(transaction=True)
SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"


def _connect_with_fhirclient(world) -> smart_client.FHIRClient:
    smart = smart_client.FHIRClient(
        settings={
            "app_id": world.app.application.client_id,
            "api_base": world.base,
            "redirect_uri": smart_testing.REDIRECT,
            "scope": SCOPE,
        }
    )
    authorize_url = smart.authorize_url  # discovery over HTTP: metadata / smart-configuration
    parts = urlsplit(authorize_url)
    assert parts.path == "/oauth/authorize/"
    # the patient's browser: logged in with a second factor, approves on the consent screen
    browser = signed_in_client(world.owner.user)
    page = browser.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200, page.content
    import re

    pending = re.search(r'name="pending" value="([^"]+)"', page.content.decode()).group(1)
    answered = browser.post("/oauth/authorize/", {"pending": pending, "answer": "allow"})
    assert answered.status_code == 302
    smart.handle_callback(answered["Location"])  # code -> token, over HTTP
    return smart


def test_fhirclient_connects_reads_searches_and_pages(live_world):
    smart = _connect_with_fhirclient(live_world)
    assert smart.ready and smart.patient_id == str(live_world.owner.patient_id)
    patient = SmartPatient.read(smart.patient_id, smart.server)
    assert any(i.value == live_world.owner.patient.nhs_number for i in patient.identifier)
    search = Observation.where(struct={"patient": smart.patient_id, "_count": "2"})
    observations = list(search.perform_resources_iter(smart.server))  # follows next links
    expected = ScrItem.objects.filter(
        patient_id=live_world.owner.patient_id, resource_type="Observation"
    ).count()
    assert len(observations) == expected > 2
    assert len({o.id for o in observations}) == expected
    conditions = Condition.where(struct={"clinical-status": "active"}).perform_resources_iter(
        smart.server
    )
    assert all(c.clinicalStatus.coding[0].code == "active" for c in conditions)
    # another patient's record is simply not there
    with pytest.raises(FHIRNotFoundException):
        SmartPatient.read(str(live_world.other.patient_id), smart.server)
    # the patient's messages, as Communication (paged)
    messages = Communication.where(struct={"_count": "1"}).perform_resources_iter(smart.server)
    mine = Message.objects.filter(patient_id=live_world.owner.patient_id)
    assert sorted(m.id for m in messages) == sorted(str(m.pk) for m in mine)
    one = Communication.read(str(mine.first().pk), smart.server)
    assert one.subject.reference == f"Patient/{smart.patient_id}" and one.payload
    theirs = Message.objects.filter(patient_id=live_world.other.patient_id).first()
    with pytest.raises(FHIRNotFoundException):
        Communication.read(str(theirs.pk), smart.server)


def test_fhirpy_reads_searches_and_pages_with_a_patients_token(live_world):
    token = smart_testing.issue_token(
        live_world.app, scope="patient/*.rs", user=live_world.owner.user
    )
    fhir = SyncFHIRClient(live_world.base, authorization=f"Bearer {token}")
    pid = str(live_world.owner.patient_id)
    patient = fhir.reference("Patient", pid).to_resource()
    assert patient["id"] == pid
    observations = fhir.resources("Observation").search(patient=pid).limit(2).fetch_all()
    expected = ScrItem.objects.filter(patient_id=pid, resource_type="Observation").count()
    assert len(observations) == expected
    assert {o["subject"]["reference"] for o in observations} == {f"Patient/{pid}"}
    included = (
        fhir.resources("AllergyIntolerance").include("AllergyIntolerance", "patient").fetch_raw()
    )
    assert included["resourceType"] == "Bundle"
    assert (
        fhir.resources("Observation").search(patient=str(live_world.other.patient_id)).fetch_all()
        == []
    )
    messages = fhir.resources("Communication").search(patient=pid).limit(1).fetch_all()
    assert len(messages) == Message.objects.filter(patient_id=pid).count() > 1
    assert {m["subject"]["reference"] for m in messages} == {f"Patient/{pid}"}
    other = str(live_world.other.patient_id)
    assert fhir.resources("Communication").search(subject=f"Patient/{other}").fetch_all() == []


def test_fhirpy_as_a_system_client_with_a_signed_assertion(live_world):
    token = requests.post(
        f"{live_world.base.rsplit('/fhir/', 1)[0]}/oauth/token/",
        data={
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": smart_testing.assertion(
                live_world.feed.application.client_id, live_world.feed_key
            ),
        },
        timeout=10,
    ).json()["access_token"]
    fhir = SyncFHIRClient(live_world.base, authorization=f"Bearer {token}")
    pid = str(live_world.owner.patient_id)
    allergies = fhir.resources("AllergyIntolerance").search(patient=pid).limit(1).fetch_all()
    assert allergies and all(a["patient"]["reference"] == f"Patient/{pid}" for a in allergies)
    found = (
        fhir.resources("Patient")
        .search(
            identifier=f"https://fhir.nhs.uk/Id/nhs-number|{live_world.owner.patient.nhs_number}"
        )
        .fetch_all()
    )
    assert [p["id"] for p in found] == [pid]
    # the Communicator's messages are the patient's and their care team's, not for systems
    with pytest.raises(ForbiddenError) as refused:
        fhir.resources("Communication").search(patient=pid).fetch_all()
    assert "Communication" in str(refused.value)
