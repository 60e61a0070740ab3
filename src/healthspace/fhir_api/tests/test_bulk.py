"""Bulk Data export for system clients: kick-off 202 + Content-Location, polling, NDJSON
files; only the client's organisation's registered patients, as the policy allows."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from healthspace.access.context import ConsentState
from healthspace.audit.models import AuditEvent
from healthspace.consent.models import ConsentRecord
from healthspace.core.clock import now
from healthspace.fhir_api.testing import check
from healthspace.fhir_api.tests.conftest import bearer
from healthspace.notify.testing import run_due_tasks
from healthspace.records.models import Patient
from healthspace.smart import testing as smart_testing

pytestmark = pytest.mark.django_db
BASE = "/fhir/R4"
ASYNC = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "application/fhir+json"}


def kick_off(client, path: str = "$export"):
    response = client.get(f"{BASE}/{path}", **ASYNC)
    check(response)
    return response


def poll(client, location: str):
    response = client.get(location.replace("http://127.0.0.1:8000", ""))
    return response, check(response)


def download(client, url: str) -> list[dict]:
    response = client.get(
        url.replace("http://127.0.0.1:8000", ""), HTTP_ACCEPT="application/fhir+ndjson"
    )
    assert response.status_code == 200
    return check(response)


def test_a_system_export_holds_the_practices_patients_only(world, feed_api):
    response = kick_off(feed_api)
    assert response.status_code == 202
    location = response["Content-Location"]
    waiting, _ = poll(feed_api, location)
    assert waiting.status_code == 202 and waiting["Retry-After"]
    run_due_tasks()
    done, manifest = poll(feed_api, location)
    assert done.status_code == 200, manifest
    assert manifest["requiresAccessToken"] is True
    files = {o["type"]: o for o in manifest["output"]}
    patients = download(feed_api, files["Patient"]["url"])
    mine = set(
        str(p)
        for p in Patient.objects.filter(registered_practice__ods_code=world.practice).values_list(
            "id", flat=True
        )
    )
    assert {p["id"] for p in patients} == mine
    assert files["Patient"]["count"] == len(patients)
    for output in manifest["output"]:
        lines = download(feed_api, output["url"])
        assert len(lines) == output["count"]
        assert all(line["resourceType"] == output["type"] for line in lines)
        subjects = {
            (line.get("subject") or line.get("patient") or {}).get("reference")
            for line in lines
            if output["type"] != "Patient"
        } - {None}
        assert subjects <= {f"Patient/{p}" for p in mine}
    # core information only: no consent to additional information yet
    assert "Condition" not in files and "Observation" not in files
    # each patient exported is in their trail, with the client
    exported = AuditEvent.objects.filter(action="record.export", outcome="success")
    assert {str(e.patient_id) for e in exported} == mine
    assert all(e.detail["client"] == world.feed.application.client_id for e in exported)


def test_consent_decides_what_is_exported(world, feed_api):
    ConsentRecord.objects.create(
        patient_id=world.owner.patient_id,
        version=1,
        state=ConsentState.CORE_AND_ADDITIONAL,
        recorded_at=now(),
        recorded_by="patient:user:1",
        source="patient-online",
    )
    third = (
        Patient.objects.filter(registered_practice__ods_code=world.practice)
        .exclude(pk=world.owner.patient_id)
        .first()
    )
    ConsentRecord.objects.create(
        patient_id=third.pk,
        version=1,
        state=ConsentState.HIDDEN,
        recorded_at=now(),
        recorded_by="patient:user:1",
        source="patient-online",
    )
    location = kick_off(feed_api, f"Group/{world.practice}/$export")["Content-Location"]
    run_due_tasks()
    _, manifest = poll(feed_api, location)
    files = {o["type"]: o for o in manifest["output"]}
    patients = download(feed_api, files["Patient"]["url"])
    assert [p["id"] for p in patients] == [str(world.owner.patient_id)]  # hidden: left out
    assert "Condition" in files  # the owner agreed to additional information
    assert AuditEvent.objects.filter(
        patient_id=third.pk, action="record.export", outcome="denied"
    ).exists()


def test_kick_off_rules(world, feed_api):
    assert feed_api.get(f"{BASE}/$export").status_code == 400  # no Prefer: respond-async
    assert kick_off(feed_api, "Group/ZZ999/$export").status_code == 404
    assert kick_off(feed_api, "$export?_type=Basic").status_code == 400
    assert kick_off(feed_api, "$export?_outputFormat=text/csv").status_code == 400
    assert kick_off(feed_api, "$export?_typeFilter=x").status_code == 400
    response = kick_off(feed_api, "$export?_type=Patient&_since=2000-01-01T00:00:00Z")
    assert response.status_code == 202
    run_due_tasks()
    _, manifest = poll(feed_api, response["Content-Location"])
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    read_only_elsewhere = bearer(
        smart_testing.issue_token(world.feed, scope="system/Observation.rs")
    )
    assert kick_off(read_only_elsewhere).status_code == 403  # no Patient scope


def test_only_the_client_that_asked_reaches_its_export(world, feed_api):
    location = kick_off(feed_api)["Content-Location"]
    run_due_tasks()
    _, manifest = poll(feed_api, location)
    other_feed, _ = smart_testing.system_client(ods=world.practice, scopes="system/*.rs")
    other = bearer(smart_testing.issue_token(other_feed, scope="system/*.rs"))
    assert poll(other, location)[0].status_code == 404
    response = other.get(manifest["output"][0]["url"].replace("http://127.0.0.1:8000", ""))
    assert response.status_code == 404
    assert Client_get_without_token(manifest["output"][0]["url"]) == 401


def Client_get_without_token(url: str) -> int:
    from django.test import Client

    return Client().get(url.replace("http://127.0.0.1:8000", "")).status_code


def test_cancel_and_expiry(world, feed_api, settings):
    location = kick_off(feed_api)["Content-Location"]
    cancelled = feed_api.delete(location.replace("http://127.0.0.1:8000", ""))
    assert cancelled.status_code == 202
    run_due_tasks()
    assert poll(feed_api, location)[0].status_code == 404
    location = kick_off(feed_api)["Content-Location"]
    run_due_tasks()
    assert poll(feed_api, location)[0].status_code == 200
    from healthspace.fhir_api.models import ExportChunk

    assert ExportChunk.objects.exists()
    with time_machine.travel(now() + timedelta(hours=settings.HEALTHSPACE_BULK_EXPORT_HOURS + 1)):
        later = bearer(smart_testing.issue_token(world.feed, scope="system/*.rs"))
        assert poll(later, location)[0].status_code == 404
        run_due_tasks()  # the worker deletes the files when the export expires
        assert not ExportChunk.objects.exists()
