"""Communication: the Communicator's messages through the API, as the patient's own app
sees them (read, search, paging, _lastUpdated, _include, $everything), every body valid
FHIR R4; never another patient's, never an earlier account's, never for system clients;
every read decided and audited as message.view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from healthspace.audit.models import AuditEvent
from healthspace.fhir_api.testing import check
from healthspace.fhir_api.tests.conftest import OTHERS_WORDS, bearer
from healthspace.messaging.models import Message, Thread
from healthspace.smart import testing as smart_testing

pytestmark = pytest.mark.django_db
BASE = "/fhir/R4"


def get(client, path: str, **headers):
    response = client.get(f"{BASE}/{path}", **headers)
    return response, check(response)


def _entries(body, mode="match"):
    return [e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == mode]


def test_the_patients_messages_are_communications(patient_api, world):
    pid = world.owner.patient_id
    response, body = get(patient_api, "Communication")
    assert response.status_code == 200
    found = _entries(body)
    assert body["total"] == len(found) == Message.objects.filter(patient_id=pid).count() == 3
    assert all(c["subject"]["reference"] == f"Patient/{pid}" for c in found)
    sent = [c["sent"] for c in found]
    assert sent == sorted(sent, reverse=True)  # newest first
    by_text = {c["payload"][0]["contentString"]: c for c in found}
    reply = by_text["Done: collect it on Friday.\n\nAsha"]
    question = by_text["Please renew."]
    assert reply["topic"]["text"] == question["topic"]["text"] == "Repeat prescription"
    assert reply["inResponseTo"] == [{"reference": f"Communication/{question['id']}"}]
    assert "inResponseTo" not in question
    assert reply["identifier"] == question["identifier"]  # one conversation
    assert reply["recipient"] == [{"reference": f"Patient/{pid}"}]
    assert reply["sender"]["display"].startswith("Asha Patel, ")
    assert question["sender"] == {"reference": f"Patient/{pid}"}
    ods = world.practice
    assert question["recipient"][0]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": ods,
    }
    photo = by_text["A photo of the rash & how it looks now."]
    assert photo["topic"]["text"] == "My rash <b>today</b>"  # plain text, as written
    attachment = photo["payload"][1]["contentAttachment"]
    assert attachment["contentType"] == "image/png" and attachment["title"] == "rash.png"
    assert attachment["size"] > 0 and "data" not in attachment
    assert OTHERS_WORDS not in response.content.decode()


def test_read_with_etag_and_the_audit(patient_api, world):
    pid = world.owner.patient_id
    message = Message.objects.filter(patient_id=pid).order_by("sent_at").first()
    before = AuditEvent.objects.filter(patient_id=pid, action="message.view").count()
    response, body = get(patient_api, f"Communication/{message.pk}")
    assert response.status_code == 200 and body["id"] == str(message.pk)
    assert response["ETag"] == 'W/"1"' and response["Last-Modified"]
    assert (
        patient_api.get(
            f"{BASE}/Communication/{message.pk}", HTTP_IF_NONE_MATCH='W/"1"'
        ).status_code
        == 304
    )
    event = AuditEvent.objects.filter(patient_id=pid, action="message.view").order_by("-pk")[0]
    assert AuditEvent.objects.filter(patient_id=pid, action="message.view").count() == before + 2
    assert event.outcome == "success" and event.reason == "own-record"
    assert event.detail["via"] == "fhir" and event.detail["interaction"] == "read"
    assert event.detail["client"] == world.app.application.client_id
    assert event.detail["threads"] == [str(message.thread_id)]
    # reading through an app is not the patient reading: the markers stay
    thread = Thread.objects.get(pk=message.thread_id)
    assert thread.unread_by_patient is True
    # no history: messages never change
    response, body = get(patient_api, f"Communication/{message.pk}/_history")
    assert response.status_code == 404


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "ge", "lt", "le", "sa", "eb"])
def test_every_last_updated_prefix_and_offset_paging(patient_api, world, prefix):
    from datetime import UTC, datetime

    pid = world.owner.patient_id
    messages = list(Message.objects.filter(patient_id=pid).order_by("sent_at", "id"))
    day = datetime(2026, 3, 10, tzinfo=UTC)
    # one message before the day, one on it, one after
    for message, moment in zip(
        messages,
        (day - timedelta(days=2), day + timedelta(hours=9), day + timedelta(days=3)),
        strict=True,
    ):
        Message.objects.filter(pk=message.pk).update(sent_at=moment)
    before, on, after = (str(m.pk) for m in messages)
    expected = {
        "eq": {on}, "ne": {before, after}, "gt": {after}, "sa": {after},
        "ge": {on, after}, "lt": {before}, "eb": {before}, "le": {before, on},
    }[prefix]  # fmt: skip
    _, body = get(patient_api, f"Communication?_lastUpdated={prefix}2026-03-10")
    assert {c["id"] for c in _entries(body)} == expected and body["total"] == len(expected)
    # oldest first, one a page, from the second
    _, page = get(patient_api, "Communication?_sort=_lastUpdated&_count=1&_offset=1")
    assert [c["id"] for c in _entries(page)] == [on] and page["total"] == 3
    _, past = get(patient_api, "Communication?_count=1&_offset=5")
    assert _entries(past) == [] and past["total"] == 3


def test_paging_last_updated_status_sent_and_count(patient_api, world):
    response, body = get(patient_api, "Communication?_count=2")
    assert body["total"] == 3 and len(_entries(body)) == 2
    nxt = next(link["url"] for link in body["link"] if link["relation"] == "next")
    response, second = get(patient_api, nxt.split("/fhir/R4/", 1)[1])
    ids = {c["id"] for c in _entries(body)} | {c["id"] for c in _entries(second)}
    assert len(ids) == 3 and not any(link["relation"] == "next" for link in second["link"])
    _, counted = get(patient_api, "Communication?_summary=count")
    assert counted["total"] == 3 and "entry" not in counted
    first = Message.objects.filter(patient_id=world.owner.patient_id).order_by("sent_at")[0]
    Message.objects.filter(pk=first.pk).update(sent_at=first.sent_at - timedelta(days=400))
    _, recent = get(
        patient_api, f"Communication?_lastUpdated=gt{(first.sent_at - timedelta(days=30)).date()}"
    )
    assert recent["total"] == 2 and str(first.pk) not in {c["id"] for c in _entries(recent)}
    _, old = get(patient_api, f"Communication?sent=lt{(first.sent_at - timedelta(days=30)).date()}")
    assert [c["id"] for c in _entries(old)] == [str(first.pk)]
    _, oldest_first = get(patient_api, "Communication?_sort=_lastUpdated")
    assert _entries(oldest_first)[0]["id"] == str(first.pk)
    _, done = get(patient_api, "Communication?status=completed")
    assert done["total"] == 3
    _, none = get(patient_api, "Communication?status=in-progress")
    assert none["total"] == 0
    _, by_id = get(patient_api, f"Communication?_id={first.pk}")
    assert by_id["total"] == 1
    response, refused = get(patient_api, "Communication?category=alert")
    assert "category" in refused["issue"][0]["diagnostics"]
    assert response.status_code == 400  # no category: see docs/fhir-api.md


@pytest.mark.parametrize("include", ["Communication:subject", "Communication:patient"])
def test_include_of_the_patient(patient_api, world, include):
    _, body = get(patient_api, f"Communication?_include={include}")
    included = _entries(body, "include")
    assert [p["resourceType"] for p in included] == ["Patient"]
    assert included[0]["id"] == str(world.owner.patient_id)
    # a token without Patient gets the messages without the Patient
    token = smart_testing.issue_token(
        world.app, scope="patient/Communication.rs", user=world.owner.user
    )
    _, narrow = get(bearer(token), f"Communication?_include={include}")
    assert narrow["total"] == 3 and not _entries(narrow, "include")


def test_everything_carries_the_messages_when_the_scopes_do(patient_api, world):
    pid = world.owner.patient_id
    _, body = get(patient_api, f"Patient/{pid}/$everything")
    types = [e["resource"]["resourceType"] for e in body["entry"]]
    assert types.count("Communication") == 3
    _, only = get(patient_api, f"Patient/{pid}/$everything?_type=Patient,Communication")
    assert [e["resource"]["resourceType"] for e in only["entry"]].count("Communication") == 3
    _, without = get(patient_api, f"Patient/{pid}/$everything?_type=Observation")
    assert "Communication" not in {e["resource"]["resourceType"] for e in without["entry"]}
    token = smart_testing.issue_token(
        world.app, scope="patient/Patient.rs patient/Observation.rs", user=world.owner.user
    )
    _, narrow = get(bearer(token), f"Patient/{pid}/$everything")
    assert "Communication" not in {e["resource"]["resourceType"] for e in narrow["entry"]}


def test_an_earlier_accounts_conversations_are_not_served(patient_api, world):
    """A thread sealed under the key of an account closed before this one."""
    from django.contrib.auth import get_user_model

    earlier = get_user_model().objects.create(username="closed-before@example.com")
    thread = Thread.objects.filter(patient_id=world.owner.patient_id).first()
    Thread.objects.filter(pk=thread.pk).update(owner=earlier)
    moved = Message.objects.filter(thread=thread)
    _, body = get(patient_api, "Communication")
    assert body["total"] == 3 - moved.count()
    response, _ = get(patient_api, f"Communication/{moved.first().pk}")
    assert response.status_code == 404


def test_another_patients_messages_are_absent_and_the_attempt_audited(patient_api, world):
    theirs = Message.objects.filter(patient_id=world.other.patient_id).first()
    for url in (
        f"Communication/{theirs.pk}",
        f"Communication?patient={world.other.patient_id}",
        f"Communication?_id={theirs.pk}",
    ):
        response, body = get(patient_api, url)
        assert OTHERS_WORDS not in response.content.decode() and str(theirs.pk) not in str(
            body.get("entry", "")
        ), url
        assert response.status_code in (200, 404)
        if response.status_code == 200:
            assert body["total"] == 0, url
    assert AuditEvent.objects.filter(
        patient_id=world.other.patient_id, action="message.view", outcome="denied"
    ).exists()


def test_system_clients_get_no_messages(world, feed_api):
    pid = world.owner.patient_id  # registered at the client's organisation
    message = Message.objects.filter(patient_id=pid).first()
    for url in (f"Communication?patient={pid}", f"Communication/{message.pk}"):
        response, body = get(feed_api, url)
        assert response.status_code == 403, url
    _, everything = get(feed_api, f"Patient/{pid}/$everything")
    assert "Communication" not in {e["resource"]["resourceType"] for e in everything["entry"]}
    # nor write them (the API stores SCR items only; messages are sent on the pages)
    before = Message.objects.count()
    resource = {
        "resourceType": "Communication",
        "id": str(message.pk),
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "payload": [{"contentString": "written through the API"}],
    }
    for method, url in (("post", "Communication"), ("put", f"Communication/{message.pk}")):
        response = getattr(feed_api, method)(
            f"{BASE}/{url}", data=resource, content_type="application/fhir+json"
        )
        check(response)
        assert 400 <= response.status_code < 500, (method, response.status_code)
    assert Message.objects.count() == before
    response, body = get(feed_api, "$export?_type=Communication", HTTP_PREFER="respond-async")
    assert response.status_code == 400 and "Communication" in body["issue"][0]["diagnostics"]


def test_every_served_type_answers_valid_fhir_communication_included(patient_api):
    """Every type the CapabilityStatement lists, searched and read by the patient's app:
    every body validates with fhir.resources (R4B), entries included."""
    from healthspace.fhir_api import capability

    types = capability.served_types()
    assert "Communication" in types
    read = 0
    for rtype in types:
        response, body = get(patient_api, f"{rtype}?_count=3")
        assert response.status_code in (200, 400), (rtype, response.status_code)
        for entry in body.get("entry", [])[:1]:
            one, _ = get(patient_api, f"{rtype}/{entry['resource']['id']}")
            assert one.status_code == 200, rtype
            read += rtype == "Communication"
    assert read == 1
