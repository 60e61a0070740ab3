"""Reading a whole SCR: constant queries, access decided and audited."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from healthspace.access.actors import Actor
from healthspace.audit.models import AuditEvent
from healthspace.core.errors import NotFound
from healthspace.records import synthetic
from healthspace.records.importer import import_paths
from healthspace.records.models import ADDITIONAL_SECTIONS, CORE_SECTIONS, Patient, ScrItem, Section
from healthspace.records.selectors import scr_for

pytestmark = pytest.mark.django_db

# savepoint + audit (lock the chain head, insert the event, move the head) + data key +
# patient + items (+ release): see scr_for
MAX_QUERIES_FOR_A_WHOLE_SCR = 8


def _me(patient: Patient) -> Actor:
    return Actor("patient", "user:1", patient_id=patient.id)


def test_whole_scr_costs_the_same_small_number_of_queries_however_big(
    synthetic_patients, write_bundles, django_assert_max_num_queries
):
    small = Patient.objects.order_by("nhs_number").first()
    # a big record: 40 extra observations for one more patient
    bundle = synthetic.patient_bundle(9)
    template = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    for n in range(40):
        extra = {**template, "resource": {**template["resource"], "id": f"extra-{n}"}}
        extra["fullUrl"] = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
        bundle["entry"].append(extra)
    import_paths([write_bundles([bundle])], source=synthetic.SOURCE)
    big = Patient.objects.get(nhs_number=bundle["entry"][2]["resource"]["identifier"][0]["value"])
    assert (
        ScrItem.objects.filter(patient=big).count()
        > 3 * ScrItem.objects.filter(patient=small).count()
    )

    counts = []
    for patient in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            scr_for(actor=_me(patient), patient_id=patient.id)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(MAX_QUERIES_FOR_A_WHOLE_SCR):
        scr_for(actor=_me(big), patient_id=big.id)


def test_scr_shows_core_sections_first_with_what_when_and_who(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    scr = scr_for(actor=_me(patient), patient_id=patient.id)

    assert [s.key for s in scr.sections[:3]] == list(CORE_SECTIONS)
    allergies = scr.section(Section.ALLERGIES).items + scr.section(Section.ADVERSE_REACTIONS).items
    assert allergies
    for row in allergies:
        assert row.view.title and row.view.code.startswith("SNOMED CT ")
        assert row.recorded_at is not None
        assert row.author.startswith("Dr ")
        assert row.source_system == "Synthetic demo data"
    meds = scr.section(Section.MEDICATIONS).items
    assert [m.current for m in meds] == sorted((m.current for m in meds), reverse=True)
    assert {dict(m.view.details)["Repeat or acute"] for m in meds} <= {"Repeat", "Acute"}
    assert scr.nhs_number == patient.nhs_number
    assert scr.practice in {name for _, name in synthetic.PRACTICES}


def test_another_patients_record_is_not_found_and_the_attempt_is_audited(synthetic_patients):
    mine, theirs = Patient.objects.order_by("nhs_number")[:2]
    with pytest.raises(NotFound):
        scr_for(actor=_me(mine), patient_id=theirs.id)
    event = AuditEvent.objects.get(outcome="denied")
    assert (event.patient_id, event.action, event.reason) == (
        theirs.id,
        "scr.view",
        "no-legitimate-relationship",
    )


@pytest.mark.parametrize(
    "actor",
    [
        Actor.anonymous(),
        Actor("staff", "user:9", roles=frozenset({"clinician"})),
        Actor("patient", "user:2"),
    ],
    ids=["anonymous", "staff-before-access-rules", "basic-account"],
)
def test_nobody_else_sees_a_record_yet(synthetic_patients, actor):
    patient = Patient.objects.first()
    with pytest.raises(NotFound):
        scr_for(actor=actor, patient_id=patient.id)


def test_a_successful_view_is_audited_in_the_same_transaction(synthetic_patients):
    patient = Patient.objects.first()
    scr_for(actor=_me(patient), patient_id=patient.id)
    event = AuditEvent.objects.get(action="scr.view")
    assert event.outcome == "success" and event.reason == "own-record"
    assert event.detail["items"] == ScrItem.objects.filter(patient=patient).count()
    assert event.detail["sections"] == [*CORE_SECTIONS, *ADDITIONAL_SECTIONS]
    assert "withheld" not in event.detail
