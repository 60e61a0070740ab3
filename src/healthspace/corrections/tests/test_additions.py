"""Additions to the SCR: the patient adds, changes and removes communication preferences,
access needs and preferences for care; they are FHIR Flags "added by the patient" that
clinicians see under the rules of additional information (the activity and the patient's
consent, or emergency access), tested through the real staff path."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState, Permission, Relationship
from healthspace.access.roles import Activity, Role
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.corrections import additions, codes
from healthspace.corrections.codes import Kind
from healthspace.corrections.tests.conftest import consent, staff_client
from healthspace.records.importer import item_purpose
from healthspace.records.models import Origin, ScrItem, ScrItemVersion, Section
from healthspace.records.selectors import scr_for
from healthspace.staff.tests.test_clinician_flow import answer, found
from healthspace.vault import services as vault

pytestmark = pytest.mark.django_db


def flags(patient):
    return list(
        ScrItem.objects.filter(patient=patient, origin=Origin.PATIENT, resource_type="Flag")
    )


def resource_of(item):
    cipher = vault.cipher_for(patient_id=item.patient_id)
    return cipher.open_json(item.payload, purpose=item_purpose(item.identity))["resource"]


def tags(page: str) -> list[str]:
    """The "added by" tags on a record page."""
    return re.findall(r'hs-patient-recorded">([^<]+)<', page)


def add(client, kind, option, details=""):
    return client.post(f"/record/additions/add/{kind}/", {"option": option, "details": details})


def test_a_patient_adds_an_access_need_stored_as_a_validated_fhir_flag(me):
    client = me.client()
    page = client.get("/record/additions/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Who will see this" in text and "/record/consent/" in text
    assert "Staff will not usually see what you add here" in text  # implied consent

    response = add(client, "access-needs", "wheelchair", "Electric wheelchair, needs a wide door")
    assert response.status_code == 302 and response["Location"] == "/record/additions/"
    (item,) = flags(me.patient)
    assert item.section == Section.ACCESS_NEEDS
    resource = resource_of(item)
    assert resource["status"] == "active"
    assert resource["category"][0]["coding"][0] == {
        "system": codes.CATEGORY_SYSTEM,
        "code": "access-needs",
        "display": "Access needs and reasonable adjustments",
    }
    assert resource["code"]["coding"][0]["code"] == "access-needs.wheelchair"
    assert resource["code"]["text"] == "Wheelchair user: Electric wheelchair, needs a wide door"
    assert resource["subject"] == {"reference": f"Patient/{me.patient.id}"}
    assert resource["period"]["start"]
    assert resource["meta"]["tag"][0]["code"] == "patient-recorded"
    # sealed: the words are nowhere in the clear
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM records_scritem WHERE id = %s", [item.pk])
        assert b"wheelchair" not in bytes(cursor.fetchone()[0])

    text = client.get("/record/additions/").content.decode()
    assert "I use a wheelchair" in text and "Electric wheelchair, needs a wide door" in text
    change = (
        AuditEvent.objects.filter(patient_id=me.patient.id, action="scr.addition-change")
        .order_by("-seq")
        .first()
    )
    assert change.detail["section"] == "access_needs" and change.detail["change"] == "added"
    assert "wheelchair" not in str(change.detail).lower()
    entry = access_history_for_patient(patient_id=me.patient.id, limit=5)
    assert "Changed what you added to your Summary Care Record" in [e.what for e in entry]


def test_the_patients_own_record_shows_it_as_added_by_you(me):
    client = me.client()
    add(client, "communication", "no-voicemail")
    text = client.get("/record/").content.decode()
    assert "Do not leave voicemail messages" in text
    assert tags(text) == ["Added by you"]
    assert 'href="/record/additions/"' in text


def test_change_keeps_the_addition_and_its_start_and_makes_a_new_version(me):
    client = me.client()
    add(client, "communication", "interpreter", "Polish")
    (item,) = flags(me.patient)
    addition = additions.own_additions(actor=me.actor).items[0]
    started = resource_of(item)["period"]["start"]
    response = client.post(
        f"/record/additions/{addition.id}/change/", {"option": "interpreter", "details": "Czech"}
    )
    assert response.status_code == 302
    (item,) = flags(me.patient)
    assert item.version == 2 and ScrItemVersion.objects.filter(item=item).count() == 1
    changed = resource_of(item)
    assert changed["code"]["text"] == "Needs an interpreter: Czech"
    assert changed["period"]["start"] == started
    assert additions.own_additions(actor=me.actor).items[0].details == "Czech"


def test_remove_asks_first_then_removes_it_for_everyone(me):
    client = me.client()
    add(client, "care-preferences", "what-matters", "Being able to go home to my dog")
    addition = additions.own_additions(actor=me.actor).items[0]
    confirm = client.get(f"/record/additions/{addition.id}/remove/")
    assert confirm.status_code == 200 and "Being able to go home" in confirm.content.decode()
    assert flags(me.patient)
    assert client.post(f"/record/additions/{addition.id}/remove/").status_code == 302
    assert flags(me.patient) == []
    assert "Being able to go home" not in client.get("/record/").content.decode()
    removed = AuditEvent.objects.filter(action="scr.addition-change").order_by("-id").first()
    assert removed.detail["section"] == "care_preferences"
    assert removed.detail["change"] == "removed"


@pytest.mark.parametrize(
    ("kind", "data", "error"),
    [
        ("access-needs", {}, "Choose an access need"),
        ("access-needs", {"option": "jetpack"}, "Choose an access need"),
        ("communication", {"option": "interpreter"}, "tell us more in the box"),
        ("care-preferences", {"option": "what-matters", "details": "   "}, "tell us more"),
        ("communication", {"option": "contact-text", "details": "x" * 501}, "500 characters"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(me, kind, data, error):
    response = me.client().post(f"/record/additions/add/{kind}/", data)
    assert response.status_code == 400
    text = response.content.decode()
    assert "There is a problem" in text and error in text
    assert flags(me.patient) == []


def test_an_unknown_kind_is_not_found(me):
    assert me.client().get("/record/additions/add/hobbies/").status_code == 404


def test_a_patient_can_never_see_or_change_another_patients_additions(me, other):
    add(other.client(), "access-needs", "braille")
    theirs = additions.own_additions(actor=other.actor).items[0]
    client = me.client()
    for path in (
        f"/record/additions/{theirs.id}/change/",
        f"/record/additions/{theirs.id}/remove/",
    ):
        assert client.get(path).status_code == 404
        assert client.post(path, {"option": "wheelchair"}).status_code == 404
    assert len(flags(other.patient)) == 1 and flags(me.patient) == []
    assert resource_of(flags(other.patient)[0])["code"]["coding"][0]["code"].endswith("braille")
    with pytest.raises(NotFound):
        additions.addition_remove(actor=me.actor, addition_id=theirs.id)


def test_basic_accounts_and_staff_cannot_add(me):
    basic = Actor("patient", "user:999")
    with pytest.raises(NotFound):
        additions.addition_put(actor=basic, kind="access-needs", option_code="wheelchair")
    staff = Actor("staff", "user:998", roles=frozenset({Role.CLINICIAN}), organisation="Y00001")
    with pytest.raises(NotFound):
        additions.addition_put(actor=staff, kind="access-needs", option_code="wheelchair")
    assert AuditEvent.objects.filter(action="scr.addition-change", outcome="denied").count() == 2


def test_there_is_a_limit_per_kind(me, monkeypatch):
    monkeypatch.setattr(codes, "PER_KIND_MAX", 2)
    for _ in range(2):
        additions.addition_put(actor=me.actor, kind=Kind.ACCESS_NEEDS, option_code="large-print")
    with pytest.raises(InvalidInput):
        additions.addition_put(actor=me.actor, kind=Kind.ACCESS_NEEDS, option_code="braille")
    # other kinds have their own room
    additions.addition_put(actor=me.actor, kind=Kind.COMMUNICATION, option_code="contact-email")


# --- what clinicians see: the real staff path --------------------------------------------


def _clinician(*, activity: bool) -> Actor:
    roles = {Role.CLINICIAN} | ({Activity.ADDITIONAL_INFORMATION} if activity else set())
    return Actor("staff", "user:77", roles=frozenset(roles), organisation="Y00001")


def _context(state: ConsentState) -> AccessContext:
    return AccessContext(
        consent=state, relationship=Relationship.CARE_TEAM, permission=Permission.GIVEN
    )


@pytest.mark.parametrize(
    ("activity", "state", "shown", "withheld"),
    [
        (True, ConsentState.CORE_AND_ADDITIONAL, True, None),
        (False, ConsentState.CORE_AND_ADDITIONAL, False, "activity-not-held"),
        (True, ConsentState.IMPLIED, False, "no-consent-to-additional"),
        (True, ConsentState.CORE_ONLY, False, "no-consent-to-additional"),
    ],
)
def test_clinicians_see_an_access_need_only_with_the_activity_and_consent(
    me, activity, state, shown, withheld
):
    additions.addition_put(actor=me.actor, kind=Kind.ACCESS_NEEDS, option_code="hearing-loop")
    scr = scr_for(
        actor=_clinician(activity=activity), patient_id=me.patient.id, context=_context(state)
    )
    section = scr.section(Section.ACCESS_NEEDS)
    assert section.withheld == withheld
    if shown:
        (row,) = section.items
        assert row.patient_recorded and row.view.title == "Needs a hearing loop"
    else:
        assert section.items == []


def test_emergency_access_shows_what_the_patient_added_without_consent(me):
    # the activity is still needed: emergency access stands in for the consent only
    additions.addition_put(actor=me.actor, kind=Kind.ACCESS_NEEDS, option_code="bsl-interpreter")
    context = AccessContext(consent=ConsentState.IMPLIED, permission=Permission.EMERGENCY)
    scr = scr_for(actor=_clinician(activity=True), patient_id=me.patient.id, context=context)
    assert [r.patient_recorded for r in scr.section(Section.ACCESS_NEEDS).items] == [True]


def test_the_staff_record_page_marks_it_added_by_the_patient(me):
    add(me.client(), "access-needs", "assistance-dog")
    consent(me.patient, ConsentState.CORE_AND_ADDITIONAL)
    _, client = staff_client("clinician", "additional-information")
    found(client, me.patient)
    answer(client, me.patient, "given")
    text = client.get(f"/staff/patient/{me.patient.id}/scr/").content.decode()
    assert "Has a guide dog or assistance dog" in text
    assert tags(text) == ["Added by the patient"]

    _, without_activity = staff_client("clinician")
    found(without_activity, me.patient)
    answer(without_activity, me.patient, "given")
    text = without_activity.get(f"/staff/patient/{me.patient.id}/scr/").content.decode()
    assert "Has a guide dog" not in text and "Withheld" in text


def test_the_additions_page_says_who_will_see_them_for_each_choice(me):
    client = me.client()
    consent(me.patient, ConsentState.CORE_AND_ADDITIONAL)
    assert (
        "You have agreed to share additional information"
        in client.get("/record/additions/").content.decode()
    )
    consent(me.patient, ConsentState.HIDDEN)
    assert "Your record is hidden" in client.get("/record/additions/").content.decode()
