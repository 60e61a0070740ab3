"""Export a whole record as a FHIR Bundle; export, import elsewhere, export again: the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from fhir.resources.R4B.bundle import Bundle

from healthspace.access.actors import Actor
from healthspace.audit.models import AuditEvent
from healthspace.core.errors import NotFound
from healthspace.fhir_api import ids
from healthspace.portability.services import export_fhir_bundle, patient_id_for
from healthspace.records import fhir_map, synthetic
from healthspace.records.importer import import_paths
from healthspace.records.models import Organisation, Patient, ScrItem
from healthspace.records.tests.data import fhir_data_dir
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db
EXPORTER = Actor.system("export")


SCR_TYPES = {"Patient", *fhir_map.SUPPORTED_TYPES}


def _resources(bundle: dict) -> list[str]:
    """The SCR's resources, as canonical JSON, without what a new server assigns: its ids
    (opaque row ids, replaced by their position in the export), versions and times."""
    scr = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] in SCR_TYPES and e["resource"]["resourceType"] != "Patient"
    ]
    names = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/#{i}" for i, r in enumerate(scr)
    }
    patient = bundle["entry"][0]["resource"]
    names[f"Patient/{patient['id']}"] = "Patient/#patient"
    text = json.dumps(scr, sort_keys=True)
    for name, placeholder in names.items():
        text = text.replace(name, placeholder)
    out = []
    for resource in json.loads(text):
        resource.pop("id")
        resource.get("meta", {}).pop("versionId", None)
        resource.get("meta", {}).pop("lastUpdated", None)
        out.append(json.dumps(resource, sort_keys=True))
    return sorted(out)


def _empty_database() -> None:
    Patient.objects.all().delete()
    DataKey.objects.all().delete()
    Organisation.objects.all().delete()


def _round_trip(tmp_path: Path, nhs: str) -> tuple[dict, dict]:
    first = export_fhir_bundle(actor=EXPORTER, patient_id=patient_id_for(nhs))
    _empty_database()
    path = tmp_path / "export.json"
    path.write_text(json.dumps(first))
    report = import_paths([path])
    assert report.ok, report.errors
    second = export_fhir_bundle(actor=EXPORTER, patient_id=patient_id_for(nhs))
    return first, second


def test_export_is_a_valid_collection_bundle_with_every_item(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    bundle = export_fhir_bundle(actor=EXPORTER, patient_id=patient.id)

    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types[0] == "Patient"
    items = ScrItem.objects.filter(patient=patient)
    # the FHIR API's ids: what apps see
    served = {e["resource"]["id"] for e in bundle["entry"]}
    assert {ids.item_id(pk) for pk in items.values_list("pk", flat=True)} <= served
    assert sum(t in fhir_map.SUPPORTED_TYPES and t != "Patient" for t in types) == items.count()
    assert types.count("Consent") == 1  # implied: version 0
    nhs = bundle["entry"][0]["resource"]["identifier"][0]
    assert nhs == {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": patient.nhs_number}
    assert AuditEvent.objects.filter(action="record.export", patient_id=patient.id).count() == 1


def test_synthetic_round_trip_gives_the_same_resources(synthetic_patients, tmp_path):
    nhs = Patient.objects.order_by("nhs_number").first().nhs_number
    first, second = _round_trip(tmp_path, nhs)
    assert _resources(first) == _resources(second)
    assert len(_resources(first)) == ScrItem.objects.count() > 5


@pytest.mark.synthea
def test_synthea_round_trip_gives_the_same_resources(tmp_path):
    path = next((fhir_data_dir() / "synthea-jddamore-ips-server").glob("Matilde468*.json"))
    import_paths([path], assign_nhs_numbers=True)
    nhs = Patient.objects.get().nhs_number
    first, second = _round_trip(tmp_path, nhs)
    assert _resources(first) == _resources(second)
    assert len(_resources(first)) == ScrItem.objects.count() > 30


def test_export_finds_a_patient_by_an_identifier_in_system_value_form(synthetic_patients):
    bundle = synthetic.patient_bundle(0)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    nhs = patient["identifier"][0]["value"]
    assert patient_id_for(f"https://fhir.nhs.uk/Id/nhs-number|{nhs}") == patient_id_for(nhs)
    assert patient_id_for(f"{synthetic.SOURCE}|Patient|{patient['id']}") == patient_id_for(nhs)
    with pytest.raises(NotFound):
        patient_id_for("https://example.org/mrn|nobody")
    with pytest.raises(NotFound):
        patient_id_for("9990000018")


def test_export_command_writes_a_file_or_stdout(synthetic_patients, tmp_path, capsys):
    nhs = Patient.objects.order_by("nhs_number").first().nhs_number
    out = tmp_path / "record.json"
    call_command("export", nhs, "-o", str(out))
    assert json.loads(out.read_text())["type"] == "collection"
    assert not list(tmp_path.glob("*.partial"))

    call_command("export", nhs)
    assert json.loads(capsys.readouterr().out)["resourceType"] == "Bundle"

    with pytest.raises(CommandError, match="no patient found"):
        call_command("export", "9990000018")


def test_a_patient_may_export_only_their_own_record(synthetic_patients):
    mine, theirs = Patient.objects.order_by("nhs_number")[:2]
    me = Actor("patient", "user:1", patient_id=mine.id)
    assert export_fhir_bundle(actor=me, patient_id=mine.id)["entry"]
    with pytest.raises(NotFound):
        export_fhir_bundle(actor=me, patient_id=theirs.id)
    denied = AuditEvent.objects.get(outcome="denied")
    assert denied.patient_id == theirs.id and denied.action == "record.export"
