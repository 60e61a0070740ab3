"""Amending an SCR item (records.amend.item_amend): a validated new version with the reason,
the previous version kept, and the GP feed through the real importer: the same old content
again does not undo a correction, new content from the source supersedes it. Items
entered in error leave every SCR page."""

from __future__ import annotations

import copy
import uuid

import pytest

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState, Permission, Relationship
from healthspace.access.roles import Activity, Role
from healthspace.audit.models import AuditEvent
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.portability.services import export_fhir_bundle
from healthspace.records import fhir_map, synthetic
from healthspace.records.amend import (
    RULES,
    ItemChanges,
    amend_options,
    amended_resource,
    item_amend,
)
from healthspace.records.fhir_checks import validate_resource
from healthspace.records.importer import import_paths, item_purpose
from healthspace.records.models import Patient, ScrItem, ScrItemVersion, Section
from healthspace.records.selectors import scr_for
from healthspace.vault import services as vault

pytestmark = pytest.mark.django_db

CLINICIAN = Actor(
    "staff",
    "user:5",
    roles=frozenset({Role.CLINICIAN, Activity.ADDITIONAL_INFORMATION}),
    organisation="Y00001",
)
OF_THE_PRACTICE = AccessContext(team_member=True)
REASON = "Checked against the GP record: it is amoxicillin."


@pytest.fixture
def bundle():
    return synthetic.patient_bundle(0)


@pytest.fixture
def imported(bundle, write_bundles):
    report = import_paths([write_bundles([bundle])], source=synthetic.SOURCE)
    assert report.ok, report.errors
    return Patient.objects.get()


def allergy_of(patient) -> ScrItem:
    return ScrItem.objects.filter(patient=patient, section=Section.ALLERGIES).order_by("id")[0]


def content_of(item: ScrItem) -> dict:
    cipher = vault.cipher_for(patient_id=item.patient_id)
    return cipher.open_json(item.payload, purpose=item_purpose(item.identity))


def amend(patient, item, changes, *, reason=REASON, actor=CLINICIAN, context=OF_THE_PRACTICE):
    return item_amend(
        actor=actor,
        patient_id=patient.id,
        item_id=item.pk,
        changes=changes,
        reason=reason,
        context=context,
    )


def test_an_amendment_is_a_new_validated_version_with_its_reason(imported):
    item = allergy_of(imported)
    before = content_of(item)
    result = amend(imported, item, ItemChanges(description="Allergy to amoxicillin"))
    item.refresh_from_db()
    assert result.version == item.version == 2
    old = ScrItemVersion.objects.get(item=item)
    assert old.version == 1 and old.content_hash != item.content_hash
    cipher = vault.cipher_for(patient_id=imported.id)
    assert cipher.open_json(old.payload, purpose=item_purpose(item.identity)) == before
    after = content_of(item)
    assert after["resource"]["code"] == {"text": "Allergy to amoxicillin"}  # the old code went
    assert after["amendment"]["reason"] == REASON
    assert after["amendment"]["at"].startswith(str(item.updated_at.date()))
    assert after["author"] == before["author"]  # who recorded it stays who recorded it
    validate_resource(after["resource"], where="amended")
    # the source's hash is kept, so the feed can tell its own content from the correction
    assert item.source_hash == old.content_hash != item.content_hash
    event = AuditEvent.objects.get(action="record.amend")
    assert event.detail["changes"] == ["description"] and "amoxicillin" not in str(event.detail)


def test_the_same_old_content_from_the_feed_does_not_undo_the_correction(
    imported, bundle, write_bundles
):
    item = allergy_of(imported)
    amend(imported, item, ItemChanges(description="Allergy to amoxicillin"))
    report = import_paths([write_bundles([bundle])], source=synthetic.SOURCE)
    assert report.ok and sum(report.items_updated.values()) == 0
    item.refresh_from_db()
    assert item.version == 2
    assert content_of(item)["resource"]["code"] == {"text": "Allergy to amoxicillin"}


def test_new_content_from_the_feed_supersedes_the_correction(imported, bundle, write_bundles):
    item = allergy_of(imported)
    amend(imported, item, ItemChanges(description="Allergy to amoxicillin"))
    changed = copy.deepcopy(bundle)
    source_id = next(
        e["resource"]["id"]
        for e in changed["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
        and e["resource"]["type"] == "allergy"
    )
    for entry in changed["entry"]:
        if entry["resource"]["id"] == source_id:
            entry["resource"]["code"] = {
                "coding": [
                    {
                        "system": synthetic.SNOMED,
                        "code": "294505008",
                        "display": "Amoxicillin allergy",
                    }
                ],
                "text": "Amoxicillin allergy",
            }
    report = import_paths([write_bundles([changed])], source=synthetic.SOURCE)
    assert report.ok and report.items_updated[Section.ALLERGIES] == 1
    item.refresh_from_db()
    assert item.version == 3 and item.content_hash == item.source_hash
    content = content_of(item)
    assert content["resource"]["code"]["text"] == "Amoxicillin allergy"
    assert "amendment" not in content  # the source's own content: no HealthSpace correction
    assert ScrItemVersion.objects.filter(item=item).count() == 2


def test_entered_in_error_follows_each_resources_fhir_rule(imported):
    allergy = allergy_of(imported)
    amend(imported, allergy, ItemChanges(entered_in_error=True))
    resource = content_of(ScrItem.objects.get(pk=allergy.pk))["resource"]
    assert resource["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in resource  # FHIR ait-2
    medicine = ScrItem.objects.filter(patient=imported, section=Section.MEDICATIONS)[0]
    amend(imported, medicine, ItemChanges(entered_in_error=True))
    assert content_of(ScrItem.objects.get(pk=medicine.pk))["resource"]["status"] == (
        "entered-in-error"
    )


def _viewers(patient):
    staff = AccessContext(
        consent=ConsentState.CORE_AND_ADDITIONAL,
        relationship=Relationship.CARE_TEAM,
        permission=Permission.GIVEN,
    )
    return [
        (Actor("patient", "user:1", patient_id=patient.id), None),
        (CLINICIAN, staff),
        (CLINICIAN, AccessContext(permission=Permission.EMERGENCY)),
    ]


def test_items_entered_in_error_are_shown_to_nobody(imported):
    allergy = allergy_of(imported)
    problem = ScrItem.objects.filter(patient=imported, section=Section.PROBLEMS)[0]
    for item in (allergy, problem):
        amend(imported, item, ItemChanges(entered_in_error=True))
    for actor, context in _viewers(imported):
        scr = scr_for(actor=actor, patient_id=imported.id, context=context)
        shown = {row.id for s in scr.sections for row in s.items}
        assert allergy.pk not in shown and problem.pk not in shown
        assert shown  # the rest of the record is still there


def test_an_item_the_gp_system_sends_entered_in_error_is_not_shown_either(
    imported, bundle, write_bundles
):
    changed = copy.deepcopy(bundle)
    meds = [e for e in changed["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    meds[0]["resource"]["status"] = "entered-in-error"
    import_paths([write_bundles([changed])], source=synthetic.SOURCE)
    me = Actor("patient", "user:1", patient_id=imported.id)
    titles = [
        r.view.title
        for r in scr_for(actor=me, patient_id=imported.id).section(Section.MEDICATIONS).items
    ]
    assert meds[0]["resource"]["medicationCodeableConcept"]["text"] not in titles
    assert len(titles) == len(meds) - 1


def test_an_export_keeps_the_item_with_its_entered_in_error_status(imported):
    allergy = allergy_of(imported)
    amend(imported, allergy, ItemChanges(entered_in_error=True))
    exported = export_fhir_bundle(actor=Actor.system("export"), patient_id=imported.id)
    statuses = [
        e["resource"].get("verificationStatus")
        for e in exported["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
    ]
    assert any(fhir_map.entered_in_error({"verificationStatus": s}) for s in statuses if s)


def test_a_status_change_uses_the_resources_own_code_system(imported):
    allergy = allergy_of(imported)
    amend(imported, allergy, ItemChanges(status="resolved"))
    status = content_of(ScrItem.objects.get(pk=allergy.pk))["resource"]["clinicalStatus"]
    assert status["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        "code": "resolved",
    }
    with pytest.raises(InvalidInput, match="already has this status"):
        amend(imported, ScrItem.objects.get(pk=allergy.pk), ItemChanges(status="resolved"))


@pytest.mark.parametrize(
    "changes",
    [
        ItemChanges(),
        ItemChanges(status="made-up"),
        ItemChanges(description="   "),
        ItemChanges(description="x" * 301),
        ItemChanges(description="Amoxicillin", entered_in_error=True),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(imported, changes):
    item = allergy_of(imported)
    with pytest.raises(InvalidInput):
        amend(imported, item, changes)
    item.refresh_from_db()
    assert item.version == 1 and not ScrItemVersion.objects.exists()
    assert not AuditEvent.objects.filter(action="record.amend").exists()


def test_a_reason_is_needed(imported):
    with pytest.raises(InvalidInput, match="reason"):
        amend(imported, allergy_of(imported), ItemChanges(status="resolved"), reason="oops")


@pytest.mark.parametrize(
    ("actor", "context", "reason"),
    [
        (CLINICIAN, AccessContext(team_member=False), "not-the-practice-asked"),
        (
            CLINICIAN,
            AccessContext(team_member=True, consent=ConsentState.DELETED),
            "record-deleted",
        ),
        (
            Actor(
                "staff", "user:6", roles=frozenset({Role.REGISTRATION_CLERK}), organisation="Y00001"
            ),
            OF_THE_PRACTICE,
            "role-has-no-clinical-access",
        ),
        (
            Actor("patient", "user:7", patient_id=uuid.uuid4()),
            OF_THE_PRACTICE,
            "not-permitted-for-patients",
        ),
    ],
)
def test_only_a_clinician_of_the_practice_asked_may_amend(imported, actor, context, reason):
    item = allergy_of(imported)
    with pytest.raises(NotFound):
        amend(imported, item, ItemChanges(status="resolved"), actor=actor, context=context)
    assert ScrItem.objects.get(pk=item.pk).version == 1
    denied = AuditEvent.objects.get(action="record.amend")
    assert (denied.outcome, denied.reason, denied.patient_id) == ("denied", reason, imported.id)


def test_what_the_patient_added_is_not_amended_by_staff(imported):
    from healthspace.corrections.additions import addition_put

    me = Actor("patient", "user:1", patient_id=imported.id)
    addition_put(actor=me, kind="access-needs", option_code="braille")
    theirs = ScrItem.objects.get(patient=imported, resource_type="Flag")
    with pytest.raises(NotFound):
        amend(imported, theirs, ItemChanges(entered_in_error=True))


P = {"reference": "Patient/p"}
# One minimal valid resource of each amendable type, as a GP feed could send it.
MINIMAL = {
    "AllergyIntolerance": {"code": {"text": "Penicillin"}, "patient": P, "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]}},
    "Condition": {"code": {"text": "Asthma"}, "subject": P},
    "MedicationRequest": {"status": "active", "intent": "order", "medicationCodeableConcept": {"text": "A medicine"}, "subject": P},
    "MedicationStatement": {"status": "active", "medicationCodeableConcept": {"text": "A medicine"}, "subject": P},
    "Immunization": {"status": "completed", "vaccineCode": {"text": "A vaccine"}, "patient": P, "occurrenceDateTime": "2026-01-01"},
    "Procedure": {"status": "completed", "code": {"text": "A procedure"}, "subject": P},
    "Observation": {"status": "final", "code": {"text": "Blood pressure"}, "subject": P},
    "DiagnosticReport": {"status": "final", "code": {"text": "Blood count"}, "subject": P},
    "Encounter": {"status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "type": [{"text": "A visit"}], "subject": P},
    "CarePlan": {"status": "active", "intent": "plan", "category": [{"text": "A plan"}], "subject": P},
    "CareTeam": {"status": "active", "name": "Diabetes team", "subject": P},
    "AdverseEvent": {"actuality": "actual", "event": {"text": "Rash"}, "subject": P},
}  # fmt: skip


def test_every_amendable_type_has_an_example():
    assert set(MINIMAL) == set(RULES)


@pytest.mark.parametrize("resource_type", sorted(RULES))
def test_every_amendable_type_gives_valid_fhir_for_every_option(resource_type):
    base = {"resourceType": resource_type, "id": "x", **MINIMAL[resource_type]}
    validate_resource(base, where="example")
    options = amend_options(resource_type)
    attempts = []
    if options.description:
        attempts.append(ItemChanges(description="Corrected words"))
    current = {base.get("status"), "active"}
    attempts += [ItemChanges(status=code) for code, _ in options.statuses if code not in current]
    if options.entered_in_error:
        attempts.append(ItemChanges(entered_in_error=True))
    assert attempts
    for changes in attempts:
        amended = amended_resource(base, changes)
        validate_resource(amended, where=f"{resource_type} {changes}")
        assert amended != base
        if changes.entered_in_error:
            assert fhir_map.entered_in_error(amended)
        if changes.description:
            assert fhir_map.describe(amended).title == "Corrected words"


def test_practitioners_are_not_amendable_here():
    assert not amend_options("Practitioner").any and not amend_options("PractitionerRole").any
