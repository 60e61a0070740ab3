"""Import: counts per section, idempotence, versions, atomicity, NHS numbers."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from healthspace.audit.models import AuditEvent
from healthspace.core import nhs_numbers
from healthspace.records import synthetic
from healthspace.records.fhir_map import section_for
from healthspace.records.importer import import_paths
from healthspace.records.models import Patient, PatientIdentifier, ScrItem, ScrItemVersion
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db


def _row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Patient, PatientIdentifier, ScrItem, ScrItemVersion, DataKey, AuditEvent)
    }


def _expected_sections(bundle) -> Counter:
    return Counter(
        section_for(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] not in ("Patient", "Organization")
    )


def test_import_puts_every_supported_resource_in_its_section(write_bundles):
    bundles = synthetic.population(3)
    report = import_paths([write_bundles(bundles)], source=synthetic.SOURCE)

    assert report.ok and report.files_ok == 3 and report.patients_created == 3
    for bundle in bundles:
        nhs = next(
            e["resource"]["identifier"][0]["value"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        stored = Counter(
            ScrItem.objects.filter(patient__nhs_number=nhs).values_list("section", flat=True)
        )
        assert stored == _expected_sections(bundle)
    assert report.skipped == Counter({"Organization: not part of the Summary Care Record": 3})


def test_second_import_changes_nothing(write_bundles):
    folder = write_bundles(synthetic.population(2))
    import_paths([folder], source=synthetic.SOURCE)
    before = _row_counts()
    payloads = dict(ScrItem.objects.values_list("id", "content_hash"))

    report = import_paths([folder], source=synthetic.SOURCE)

    assert report.ok and report.patients_created == 0 and report.patients_updated == 0
    assert sum(report.items_created.values()) == 0 and sum(report.items_updated.values()) == 0
    after = _row_counts()
    assert after["AuditEvent"] == before["AuditEvent"] + 2  # the import itself is recorded
    assert {k: v for k, v in after.items() if k != "AuditEvent"} == {
        k: v for k, v in before.items() if k != "AuditEvent"
    }
    assert dict(ScrItem.objects.values_list("id", "content_hash")) == payloads


def test_changed_resource_becomes_a_new_version(write_bundles):
    bundle = synthetic.patient_bundle(0)
    import_paths([write_bundles([bundle])], source=synthetic.SOURCE)
    changed = copy.deepcopy(bundle)
    allergy = next(
        e for e in changed["entry"] if e["resource"]["resourceType"] == "AllergyIntolerance"
    )
    allergy["resource"]["criticality"] = "high"

    report = import_paths([write_bundles([changed])], source=synthetic.SOURCE)

    assert report.items_updated == Counter({allergy_section(allergy): 1})
    item = ScrItem.objects.get(version=2)
    assert item.versions.count() == 1 and item.versions.get().version == 1


def allergy_section(entry) -> str:
    return section_for(entry["resource"])


def test_a_bundle_with_one_invalid_resource_changes_nothing(write_bundles):
    good = synthetic.patient_bundle(0)
    bad = synthetic.patient_bundle(1)
    observation = next(e for e in bad["entry"] if e["resource"]["resourceType"] == "Observation")
    del observation["resource"]["code"]  # Observation.code is 1..1
    before = _row_counts()

    report = import_paths([write_bundles([bad, good])], source=synthetic.SOURCE)

    assert report.files_failed == 1 and report.files_ok == 1
    assert "bundle-000.json" in report.errors[0]
    assert f"Observation/{observation['resource']['id']}" in report.errors[0]
    assert "code" in report.errors[0]
    assert Patient.objects.count() == before["Patient"] + 1  # only the good file


def test_patient_without_nhs_number_is_rejected_unless_numbers_are_assigned(write_bundles):
    bundle = synthetic.patient_bundle(0)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["identifier"] = [{"system": "https://example.org/mrn", "value": "MRN-1"}]
    folder = write_bundles([bundle])

    refused = import_paths([folder])
    assert not refused.ok and "has no NHS number" in refused.errors[0]
    assert "--assign-nhs-numbers" in refused.errors[0]
    assert Patient.objects.count() == 0

    first = import_paths([folder], assign_nhs_numbers=True)
    again = import_paths([folder], assign_nhs_numbers=True)
    stored = Patient.objects.get()
    assert first.ok and again.ok and again.patients_created == 0
    assert stored.nhs_number.startswith("999") and nhs_numbers.is_valid(stored.nhs_number)


def test_invalid_nhs_number_is_rejected(write_bundles):
    bundle = synthetic.patient_bundle(0)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["identifier"][0]["value"] = "9000000015"  # fails the modulus 11 check
    report = import_paths([write_bundles([bundle])])
    assert "NHS number fails its check digit" in report.errors[0]
    assert Patient.objects.count() == 0


def test_ndjson_files_import(tmp_path):
    bundle = synthetic.patient_bundle(0)
    lines = [json.dumps(e["resource"]) for e in bundle["entry"]]
    # references in NDJSON are relative (Type/id), as a bulk export writes them
    text = "\n".join(lines).replace("urn:uuid:", "")
    for e in bundle["entry"]:
        r = e["resource"]
        text = text.replace(
            f'"reference": "{r["id"]}"', f'"reference": "{r["resourceType"]}/{r["id"]}"'
        )
    (tmp_path / "export.ndjson").write_text(text + "\n")

    report = import_paths([tmp_path], source=synthetic.SOURCE)

    assert report.ok, report.errors
    assert ScrItem.objects.count() == sum(_expected_sections(bundle).values())


def test_resources_in_a_later_file_find_a_patient_imported_earlier(tmp_path):
    bundle = synthetic.patient_bundle(0)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    allergy = copy.deepcopy(
        next(
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "AllergyIntolerance"
        )
    )
    allergy["patient"] = {"reference": f"Patient/{patient['id']}"}
    allergy.pop("recorder")
    # alphabetical order puts the allergy first: the importer must retry it
    (tmp_path / "a-allergy.json").write_text(json.dumps(allergy))
    (tmp_path / "b-patient.json").write_text(json.dumps(patient))

    report = import_paths([tmp_path], source="urn:test")

    assert report.ok and report.files_ok == 2
    assert ScrItem.objects.get().patient.id == Patient.objects.get().id
    assert not report.skipped


def test_import_command_prints_a_summary_and_fails_on_bad_files(write_bundles, capsys, tmp_path):
    folder = write_bundles(synthetic.population(1))
    (folder / "broken.json").write_text('{"resourceType": "Bundle", ')
    with pytest.raises(CommandError, match="1 file"):
        call_command("import", str(folder), "--source", synthetic.SOURCE)
    out = capsys.readouterr()
    assert "files: 1 imported, 1 failed" in out.out
    assert "broken.json" in out.err
    assert Patient.objects.count() == 1


def test_every_import_is_audited_per_patient(synthetic_patients):
    events = AuditEvent.objects.filter(action="record.import")
    assert events.count() == 3
    assert set(events.values_list("patient_id", flat=True)) == set(
        Patient.objects.values_list("id", flat=True)
    )
    assert all(e.actor == "system:cli:import" for e in events)


def test_import_and_reading_log_nothing_that_identifies_a_patient(write_bundles, caplog):
    import logging

    from healthspace.access.actors import Actor
    from healthspace.records.selectors import scr_for

    bundles = synthetic.population(2)
    with caplog.at_level(logging.DEBUG):
        import_paths([write_bundles(bundles)], source=synthetic.SOURCE)
        for patient in Patient.objects.all():
            scr_for(actor=Actor("patient", "u", patient_id=patient.id), patient_id=patient.id)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                assert resource["identifier"][0]["value"] not in logged
                assert resource["name"][0]["family"] not in logged
            text = (resource.get("code") or resource.get("medicationCodeableConcept") or {}).get(
                "text"
            )
            if text:
                assert text not in logged
