"""Items the patient contributed: stored beside the GP's, validated as strictly, versioned,
marked as the patient's wherever the SCR is read, and never touched by a feed."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.records.fhir_checks import FhirInputError
from healthspace.records.models import Origin, Patient, ScrItem, ScrItemVersion, Section
from healthspace.records.patient_items import (
    PATIENT_SOURCE,
    patient_item_put,
    patient_item_remove,
    patient_subject,
)
from healthspace.records.selectors import scr_for

pytestmark = pytest.mark.django_db


def _flag(patient: Patient, text: str) -> dict:
    return {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": text},
        "subject": patient_subject(patient.id),
    }


def test_a_contributed_item_is_stored_sealed_and_shown_as_the_patients(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    with transaction.atomic():
        result = patient_item_put(
            patient_id=patient.id,
            key="addition:1",
            section=Section.ACCESS_NEEDS,
            resource=_flag(patient, "Wheelchair user"),
        )
    assert result.created
    item = ScrItem.objects.get(pk=result.item_id)
    assert item.origin == Origin.PATIENT and item.source_system == PATIENT_SOURCE
    assert b"Wheelchair" not in bytes(item.payload)

    scr = scr_for(actor=Actor("patient", "user:1", patient_id=patient.id), patient_id=patient.id)
    (row,) = scr.section(Section.ACCESS_NEEDS).items
    assert row.patient_recorded and row.view.title == "Wheelchair user"
    assert row.resource["meta"]["tag"][0]["code"] == "patient-recorded"
    gp_rows = [r for s in scr.sections for r in s.items if s.key != Section.ACCESS_NEEDS]
    assert gp_rows and not any(r.patient_recorded for r in gp_rows)


def test_a_change_keeps_the_old_version_and_the_same_content_writes_nothing(
    synthetic_patients,
):
    patient = Patient.objects.order_by("nhs_number").first()
    with transaction.atomic():
        first = patient_item_put(
            patient_id=patient.id,
            key="addition:1",
            section=Section.ACCESS_NEEDS,
            resource=_flag(patient, "Large print"),
        )
        same = patient_item_put(
            patient_id=patient.id,
            key="addition:1",
            section=Section.ACCESS_NEEDS,
            resource=_flag(patient, "Large print"),
        )
        changed = patient_item_put(
            patient_id=patient.id,
            key="addition:1",
            section=Section.ACCESS_NEEDS,
            resource=_flag(patient, "Large print, 16 point"),
        )
    assert first.item_id == same.item_id == changed.item_id
    assert not same.changed and changed.changed
    assert ScrItem.objects.get(pk=first.item_id).version == 2
    assert ScrItemVersion.objects.filter(item_id=first.item_id).count() == 1


def test_an_invalid_resource_is_refused_and_nothing_is_written(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    before = ScrItem.objects.count()
    bad = {**_flag(patient, "x"), "status": "sort-of"}  # not a Flag status
    with pytest.raises(FhirInputError), transaction.atomic():
        patient_item_put(
            patient_id=patient.id, key="addition:2", section=Section.ACCESS_NEEDS, resource=bad
        )
    assert ScrItem.objects.count() == before


def test_removing_takes_the_item_and_its_versions_and_only_the_patients_own(
    synthetic_patients,
):
    patient = Patient.objects.order_by("nhs_number").first()
    with transaction.atomic():
        for text in ("Easy read", "Easy read, with pictures"):
            result = patient_item_put(
                patient_id=patient.id,
                key="addition:3",
                section=Section.ACCESS_NEEDS,
                resource=_flag(patient, text),
            )
    gp_items = ScrItem.objects.filter(patient=patient, origin=Origin.SOURCE).count()
    with transaction.atomic():
        assert patient_item_remove(patient_id=patient.id, key="addition:3", resource_type="Flag")
        assert not patient_item_remove(
            patient_id=patient.id, key="addition:3", resource_type="Flag"
        )
    assert not ScrItem.objects.filter(pk=result.item_id).exists()
    assert not ScrItemVersion.objects.filter(item_id=result.item_id).exists()
    assert ScrItem.objects.filter(patient=patient, origin=Origin.SOURCE).count() == gp_items


@pytest.mark.django_db(transaction=True)
def test_it_must_run_inside_the_callers_transaction():
    # its audit event is the caller's, in the same transaction: alone it would be unaudited
    patient = Patient(id=uuid.uuid4())
    with pytest.raises(RuntimeError):
        patient_item_put(
            patient_id=patient.id,
            key="addition:4",
            section=Section.ACCESS_NEEDS,
            resource=_flag(patient, "Hearing loop"),
        )
