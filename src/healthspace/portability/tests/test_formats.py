"""Every format: the whole FHIR export with the account's own data, the IPS, the PDF, the
CSV; through the service, the command and the importer."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.observation import Observation
from pypdf import PdfReader

from healthspace.access.actors import Actor
from healthspace.audit.models import AuditEvent
from healthspace.core.nhs_numbers import format_spaced
from healthspace.portability import services
from healthspace.portability.tests.conftest import MESSAGE_BODY, READING_NOTE
from healthspace.records import fhir_map
from healthspace.records.importer import import_paths
from healthspace.records.models import ScrItem, Section

pytestmark = pytest.mark.django_db
EXPORTER = Actor.system("export")


def _export(link, what: str, actor=None) -> bytes:
    return services.export(
        actor=actor or EXPORTER, patient_id=link.patient_id, user_id=link.user_id, what=what
    )


def test_the_fhir_export_has_the_record_consent_audit_readings_and_messages(person):
    bundle = json.loads(_export(person, "fhir"))
    Bundle.model_validate(bundle)
    by_type: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    tagged = [
        r
        for rs in by_type.values()
        for r in rs
        if services.PORTAL_TAG in (r.get("meta") or {}).get("tag", [])
    ]
    readings = [o for o in by_type["Observation"] if o in tagged]
    assert len(readings) == 2  # blood pressure and weight (no height: no BMI)
    for o in readings:
        Observation.model_validate(o)
        assert o["subject"] == {"reference": f"Patient/{person.patient_id}"}
    assert any(n["text"] == READING_NOTE for o in readings for n in o.get("note", []))
    (message,) = by_type["Communication"]
    Communication.model_validate(message)
    assert message["payload"][0]["contentString"] == MESSAGE_BODY
    assert message["sender"] == {"reference": f"Patient/{person.patient_id}"}
    assert by_type["Consent"][0]["id"] == str(person.patient_id)
    # who looked: the audit trail up to this export (the demo set-up, the reading, ...)
    assert len(by_type["AuditEvent"]) >= 1
    assert (
        AuditEvent.objects.filter(
            patient_id=person.patient_id, action__in=["record.export", "organiser.export"]
        ).count()
        == 2
    )


def test_the_fhir_export_imports_as_the_same_scr_without_the_accounts_own_data(person, tmp_path):
    before = ScrItem.objects.filter(patient_id=person.patient_id).count()
    path = tmp_path / "everything.json"
    path.write_bytes(_export(person, "fhir"))
    ScrItem.objects.filter(patient_id=person.patient_id).delete()
    report = import_paths([path])
    assert report.ok, report.errors
    assert ScrItem.objects.filter(patient_id=person.patient_id).count() == before
    skipped = "\n".join(report.lines())
    assert "the account's own data" in skipped
    assert not ScrItem.objects.filter(resource_type="Communication").exists()


def test_the_ips_is_a_valid_document_that_imports_back(person, tmp_path):
    document = json.loads(_export(person, "ips"))
    Bundle.model_validate(document)
    assert document["type"] == "document"
    assert document["entry"][0]["resource"]["resourceType"] == "Composition"
    titles = [s["title"] for s in document["entry"][0]["resource"]["section"]]
    assert titles[:3] == ["Allergies and intolerances", "Medication summary", "Problem list"]
    shown = [e["resource"] for e in document["entry"][3:]]
    assert shown
    path = tmp_path / "ips.json"
    path.write_bytes(json.dumps(document).encode())
    ScrItem.objects.filter(patient_id=person.patient_id).delete()
    report = import_paths([path])
    assert report.ok, report.errors
    assert ScrItem.objects.filter(patient_id=person.patient_id).count() == len(shown)


def test_the_pdf_has_the_nhs_number_the_date_and_every_item(person):
    body = _export(person, "pdf")
    assert body.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    text = " ".join(text.split())
    nhs = person.patient.nhs_number
    assert format_spaced(nhs) in text
    assert "Summary Care Record" in text and "Printed" in text
    items = ScrItem.objects.filter(patient_id=person.patient_id, section=Section.ALLERGIES)
    assert items.exists()
    bundle = json.loads(_export(person, "fhir"))
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] in ("AllergyIntolerance", "MedicationRequest", "Condition"):
            assert " ".join(fhir_map.describe(r).title.split()) in text
    assert MESSAGE_BODY not in text  # the SCR only


def test_the_csv_has_the_readings(person):
    text = _export(person, "csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["measure"] for r in rows] == ["blood-pressure", "weight"]
    assert rows[0]["systolic_mmhg"] == "131" and rows[0]["note"] == READING_NOTE


def test_a_patient_exports_only_their_own(person, synthetic_patients):
    from healthspace.accounts.actors import actor_for_user
    from healthspace.core.errors import NotFound
    from healthspace.records.models import Patient

    me = actor_for_user(person.user)
    assert json.loads(_export(person, "fhir", actor=me))["entry"]
    other = Patient.objects.exclude(pk=person.patient_id).first()
    with pytest.raises(NotFound):
        services.export(actor=me, patient_id=other.id, user_id=None, what="ips")
    with pytest.raises(NotFound):  # another account's organiser
        services.export(actor=me, patient_id=None, user_id=person.user_id + 999, what="csv")


@pytest.mark.parametrize("what", ["fhir", "ips", "pdf", "csv"])
def test_the_command_writes_each_format(person, tmp_path, what):
    out = tmp_path / f"out.{what}"
    call_command("export", person.patient.nhs_number, "--format", what, "-o", str(out))
    body = out.read_bytes()
    assert body
    if what in ("fhir", "ips"):
        Bundle.model_validate(json.loads(body))
    if what == "pdf":
        assert (
            format_spaced(person.patient.nhs_number)
            in PdfReader(io.BytesIO(body)).pages[0].extract_text()
        )
    assert not list(tmp_path.glob("*.partial"))


def test_the_fhir_export_costs_the_same_queries_for_more_readings_and_messages(person):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from healthspace.accounts.actors import actor_for_user
    from healthspace.core.clock import now
    from healthspace.messaging.services import thread_open_by_patient
    from healthspace.organiser import services as organiser
    from healthspace.organiser.measures import Measure

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            _export(person, "fhir")
        return len(queries)

    before = count()
    actor = actor_for_user(person.user)
    for i in range(15):
        organiser.reading_add(
            actor=actor,
            owner_id=person.user_id,
            measure=Measure.WEIGHT,
            taken_at=now() - timedelta(days=i + 1),
            values={"kg": 70 + i},
            entered={"unit": "kg"},
            note="",
        )
    for i in range(3):
        thread_open_by_patient(
            actor=actor, user_id=person.user_id, subject=f"Thread {i}", body=f"Body {i}"
        )
    assert count() == before
