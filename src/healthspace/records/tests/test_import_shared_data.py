"""Real external data: Synthea patients and the HL7, UK Core, NHS England and IPS examples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from healthspace.records.fhir_map import PROFESSIONAL_TYPES, section_for
from healthspace.records.importer import import_paths
from healthspace.records.models import Patient, PatientIdentifier, ScrItem, ScrItemVersion
from healthspace.records.tests.data import fhir_data_dir
from healthspace.vault import services as vault

pytestmark = [pytest.mark.django_db, pytest.mark.synthea]

SYNTHEA = ("synthea-smart-generated-sample-data", "synthea-jddamore-ips-server")
EXAMPLES = (
    "hl7-r4-examples-fhir-test-cases",
    "hl7-r4-examples-fhir-models",
    "ukcore-r4-staging-main/json-converted",
    "nhs-immunisation-fhir-api",
    "nhs-pds-fhir-api",
    "ips-hl7-fhir-ips",
    "ips-connectathon-jddamore",
)
# Files the import refuses, each for a reason a clinician would agree with.
EXPECTED_REFUSALS = {
    # The PDS sandbox's compound-name patient has NHS number 9000000015, whose modulus 11
    # check digit should be 7: a record under a mistyped NHS number must not be created.
    "PatientCompoundName.json": "NHS number fails its check digit",
    # fullUrl and the resource's own id disagree (R4: they "SHALL NOT disagree"); since
    # references resolve by both, accepting them could file data under the wrong record.
    "diagnosticreport-example-lri.json": "does not agree with the resource",
    "message-request-link.json": "does not agree with the resource",
    "message-response-link.json": "does not agree with the resource",
    "UK_NHSx_IPS_Example_01-modified.json": "does not agree with the resource",
    # the attachment's hash is not the SHA-1 of its data: its integrity cannot be shown
    "diagnosticreport-example-pgx.json": "hash must be a base64 SHA-1 digest",
}


def _synthea_files() -> list[Path]:
    base = fhir_data_dir()
    return sorted(p for folder in SYNTHEA for p in (base / folder).glob("*.json"))


def _expected(bundle: dict) -> Counter:
    resources = [e["resource"] for e in bundle["entry"]]
    counts = Counter(
        section_for(r)
        for r in resources
        if r["resourceType"] != "Patient" and section_for(r) is not None
    )
    return counts


def test_every_synthea_bundle_imports_with_each_section_complete_and_twice_is_once():
    files = _synthea_files()
    assert len(files) == 53
    report = import_paths(files, assign_nhs_numbers=True)
    assert report.ok, report.errors
    assert report.patients_created == 53

    for path in files:
        bundle = json.loads(path.read_text())
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        lookup = vault.index("source-id", f"urn:healthspace:file-import|Patient|{patient['id']}")
        patient_id = PatientIdentifier.objects.get(lookup=lookup).patient_id
        stored = Counter(
            ScrItem.objects.filter(patient_id=patient_id).values_list("section", flat=True)
        )
        assert stored == _expected(bundle), path.name

    rows = (Patient.objects.count(), ScrItem.objects.count(), ScrItemVersion.objects.count())
    hashes = dict(ScrItem.objects.values_list("id", "content_hash"))
    again = import_paths(files, assign_nhs_numbers=True)
    assert again.ok and again.patients_created == 0 and again.patients_updated == 0
    assert not again.items_created and not again.items_updated
    assert (
        Patient.objects.count(),
        ScrItem.objects.count(),
        ScrItemVersion.objects.count(),
    ) == rows
    assert dict(ScrItem.objects.values_list("id", "content_hash")) == hashes


def test_synthea_professionals_are_the_bundles_practitioners_and_care_teams():
    path = next(p for p in _synthea_files() if "Matilde468" in p.name)
    bundle = json.loads(path.read_text())
    import_paths([path], assign_nhs_numbers=True)
    kinds = Counter(
        e["resource"]["resourceType"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] in (*PROFESSIONAL_TYPES, "CareTeam")
    )
    assert ScrItem.objects.filter(section="professionals").count() == sum(kinds.values())


@pytest.mark.parametrize("folder", EXAMPLES)
def test_published_examples_import_or_are_skipped_with_a_reason(folder):
    base = fhir_data_dir() / folder
    report = import_paths([base], assign_nhs_numbers=True)

    refused = {e.split(":", 1)[0].split(" ", 1)[0]: e for e in report.errors}
    expected = {name: why for name, why in EXPECTED_REFUSALS.items() if (base / name).exists()}
    assert set(refused) == set(expected), report.errors
    for name, why in expected.items():
        assert why in refused[name]
    assert report.files_ok == len(list(base.rglob("*.json"))) - len(expected)
    # whatever was not imported was counted with its reason
    assert all(":" in reason for reason in report.skipped)
    assert sum(report.items_created.values()) + sum(report.skipped.values()) > 0
