"""The patient's side of corrections: "This looks wrong" on an item of their own record,
sent to the item's practice, sealed, audited; their list and answers; withdrawing. A
patient can never see or act on another patient's items or requests."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection

from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.corrections import additions, services
from healthspace.corrections.codes import Kind
from healthspace.corrections.models import CorrectionRequest
from healthspace.corrections.routing import item_ods_codes, practice_for
from healthspace.corrections.tests.conftest import item_of
from healthspace.corrections.workflow import Status
from healthspace.records.importer import item_purpose
from healthspace.records.models import Organisation, Origin, ScrItem, Section
from healthspace.staff.testing import make_staff_user, organisation_for
from healthspace.vault import services as vault

pytestmark = pytest.mark.django_db


def report(client, item, wrong="I have never been allergic to this", should_say=""):
    return client.post(
        f"/record/corrections/report/{item.pk}/", {"wrong": wrong, "should_say": should_say}
    )


def test_every_item_of_the_record_has_a_this_looks_wrong_link(me):
    text = me.client().get("/record/").content.decode()
    links = set(re.findall(r'href="/record/corrections/report/(\d+)/"', text))
    gp_items = ScrItem.objects.filter(patient=me.patient, origin=Origin.SOURCE)
    assert links == {str(i) for i in gp_items.values_list("pk", flat=True)}
    assert 'href="/record/corrections/"' in text


def test_a_patient_reports_a_wrong_allergy_and_it_goes_to_their_practice(me):
    client = me.client()
    allergy = item_of(me.patient)
    page = client.get(f"/record/corrections/report/{allergy.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "What happens next" in text and "within 1 month" in text
    assert "keep it as it is and explain why" in text
    assert "Send to Riverside Medical Practice" in text

    response = report(client, allergy, should_say="Amoxicillin, not penicillin")
    request = CorrectionRequest.objects.get()
    assert response["Location"] == f"/record/corrections/{request.id}/"
    assert (request.patient_id, request.item_id, request.item_version) == (
        me.patient.id,
        allergy.pk,
        allergy.version,
    )
    assert request.status == Status.SUBMITTED and request.practice_ods == "Y00001"
    assert request.section == Section.ALLERGIES

    # sealed under the patient's SCR key, bound to the row
    cipher = vault.cipher_for(patient_id=me.patient.id)
    words = cipher.open_json(request.words, purpose=request.words_purpose)
    assert words["wrong"] == "I have never been allergic to this"
    assert words["should_say"] == "Amoxicillin, not penicillin"
    with connection.cursor() as cursor:
        cursor.execute("SELECT words FROM corrections_correctionrequest")
        assert b"allergic" not in bytes(cursor.fetchone()[0])

    detail = client.get(response["Location"]).content.decode()
    assert "Request sent" in detail and "Amoxicillin, not penicillin" in detail
    assert "Withdraw this request" in detail
    event = AuditEvent.objects.filter(action="correction.request").get()
    assert event.detail["request"] == str(request.id) and event.detail["practice"] == "Y00001"
    assert "allergic" not in str(event.detail)
    whats = [e.what for e in access_history_for_patient(patient_id=me.patient.id, limit=10)]
    assert "Asked for something in your record to be corrected" in whats


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"wrong": ""}, "Tell us what is wrong"),
        ({"wrong": "   "}, "Tell us what is wrong"),
        ({"wrong": "x" * 1001}, "1000 characters or fewer"),
        ({"wrong": "wrong", "should_say": "y" * 1001}, "1000 characters or fewer"),
    ],
)
def test_bad_input_gets_a_clear_error_and_sends_nothing(me, data, error):
    response = me.client().post(f"/record/corrections/report/{item_of(me.patient).pk}/", data)
    assert response.status_code == 400
    text = response.content.decode()
    assert "There is a problem" in text and error in text
    assert not CorrectionRequest.objects.exists()


def test_asking_twice_about_one_item_leads_to_the_open_request(me):
    client = me.client()
    allergy = item_of(me.patient)
    report(client, allergy)
    request = CorrectionRequest.objects.get()
    assert client.get(f"/record/corrections/report/{allergy.pk}/")["Location"] == (
        f"/record/corrections/{request.id}/"
    )
    with pytest.raises(services.AlreadyAsked):
        services.correction_request(actor=me.actor, item_id=allergy.pk, wrong="again")
    assert CorrectionRequest.objects.count() == 1


def test_what_the_patient_added_is_changed_on_the_additions_page_instead(me):
    additions.addition_put(actor=me.actor, kind=Kind.ACCESS_NEEDS, option_code="braille")
    mine = ScrItem.objects.get(patient=me.patient, origin=Origin.PATIENT)
    client = me.client()
    assert client.get(f"/record/corrections/report/{mine.pk}/")["Location"] == (
        "/record/additions/"
    )
    assert report(client, mine)["Location"] == "/record/additions/"
    with pytest.raises(InvalidInput):
        services.correction_request(actor=me.actor, item_id=mine.pk, wrong="wrong")
    assert not CorrectionRequest.objects.exists()
    text = client.get("/record/").content.decode()
    assert f"/record/corrections/report/{mine.pk}/" not in text


def test_a_patient_can_never_report_another_patients_item(me, other):
    theirs = item_of(other.patient)
    client = me.client()
    for response in (
        client.get(f"/record/corrections/report/{theirs.pk}/"),
        report(client, theirs),
        client.get("/record/corrections/report/999999/"),
    ):
        assert response.status_code == 404
    with pytest.raises(NotFound):
        services.correction_request(actor=me.actor, item_id=theirs.pk, wrong="not mine")
    assert not CorrectionRequest.objects.exists()
    assert (
        other.patient.nhs_number
        not in client.get(f"/record/corrections/report/{theirs.pk}/").content.decode()
    )


def test_a_patient_can_never_see_or_withdraw_another_patients_request(me, other):
    report(other.client(), item_of(other.patient))
    theirs = CorrectionRequest.objects.get()
    client = me.client()
    for path in (
        f"/record/corrections/{theirs.id}/",
        f"/record/corrections/{theirs.id}/withdraw/",
        f"/record/corrections/{uuid.uuid4()}/",
        f"/record/corrections/{uuid.uuid4()}/withdraw/",
    ):
        assert client.get(path).status_code == 404
        if path.endswith("withdraw/"):  # the one POST among them
            assert client.post(path).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Status.SUBMITTED
    assert "I have never been allergic" not in client.get("/record/corrections/").content.decode()
    with pytest.raises(NotFound):
        services.correction_withdraw(actor=me.actor, request_id=theirs.id)


def test_the_patient_lists_their_requests_and_withdraws_one(me, django_assert_max_num_queries):
    client = me.client()
    items = list(ScrItem.objects.filter(patient=me.patient, origin=Origin.SOURCE)[:3])
    report(client, items[0])
    with django_assert_max_num_queries(30) as one:
        client.get("/record/corrections/")
    queries = len(one.captured_queries)  # before the next request resets Django's query log
    for item in items[1:]:
        report(client, item)
    with django_assert_max_num_queries(queries):
        listing = client.get("/record/corrections/").content.decode()
    assert listing.count("Sent to your GP practice") == 3

    request = CorrectionRequest.objects.filter(item=items[0]).get()
    confirm = client.get(f"/record/corrections/{request.id}/withdraw/")
    assert confirm.status_code == 200 and "Withdraw your request?" in confirm.content.decode()
    assert client.post(f"/record/corrections/{request.id}/withdraw/").status_code == 302
    request.refresh_from_db()
    assert request.status == Status.WITHDRAWN and request.withdrawn_at is not None
    again = client.post(f"/record/corrections/{request.id}/withdraw/")
    assert again.status_code == 400
    assert "You have already withdrawn this request" in again.content.decode()
    # a withdrawn request leaves the item free to be asked about again
    assert report(client, items[0]).status_code == 302
    assert CorrectionRequest.objects.filter(item=items[0]).count() == 2


def test_nothing_is_sent_when_the_record_names_no_practice_here(me):
    me.patient.registered_practice = None
    me.patient.save(update_fields=["registered_practice"])
    page = me.client().get(f"/record/corrections/report/{item_of(me.patient).pk}/")
    assert "We cannot send this request" in page.content.decode()
    response = report(me.client(), item_of(me.patient))
    assert response.status_code == 400 and "does not show a practice" in response.content.decode()
    assert not CorrectionRequest.objects.exists()


# --- routing to the practice -----------------------------------------------------------


ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


def _resource_naming(ods: str) -> dict:
    return {
        "resourceType": "Immunization",
        "performer": [
            {"actor": {"type": "Organization", "identifier": {"system": ODS, "value": ods}}}
        ],
        "location": {"identifier": {"system": ODS, "value": "X99999"}},
    }


def test_the_item_names_its_organisation_by_ods_code_but_not_its_site():
    assert item_ods_codes(_resource_naming("FA123")) == ["FA123"]


def test_an_item_from_a_known_staffed_organisation_goes_to_it(me):
    pharmacy = organisation_for("FA123", "High Street Pharmacy")
    resource = _resource_naming("FA123")
    # known, but nobody works there in HealthSpace: the patient's own practice answers
    assert practice_for(resource=resource, patient=me.patient).ods_code == "Y00001"
    make_staff_user("clinician", ods="FA123")
    assert practice_for(resource=resource, patient=me.patient) == pharmacy
    # an organisation HealthSpace does not know
    assert practice_for(resource=_resource_naming("ZZ999"), patient=me.patient).ods_code == "Y00001"


def test_the_request_records_the_item_practice_at_the_time(me):
    item = item_of(me.patient, Section.IMMUNISATIONS)
    cipher = vault.cipher_for(patient_id=me.patient.id)
    content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
    content["resource"]["performer"] = [
        {"actor": {"type": "Organization", "identifier": {"system": ODS, "value": "FA123"}}}
    ]
    item.payload = cipher.seal_json(content, purpose=item_purpose(item.identity))
    item.save(update_fields=["payload"])
    organisation_for("FA123", "High Street Pharmacy")
    make_staff_user("clinician", ods="FA123")
    request_id = services.correction_request(actor=me.actor, item_id=item.pk, wrong="Not given")
    request = CorrectionRequest.objects.get(pk=request_id)
    assert request.practice_ods == "FA123" and request.practice.name == "High Street Pharmacy"
    # a later change of registration does not move it
    me.patient.registered_practice = Organisation.objects.get(ods_code="FA123")
    me.patient.save(update_fields=["registered_practice"])
    request.refresh_from_db()
    assert request.practice_ods == "FA123"
