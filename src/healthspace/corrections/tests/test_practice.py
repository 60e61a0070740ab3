"""The practice's side: clinicians of the practice a request went to (and nobody else)
see it in their queue, open it, and answer: amend the item or keep it and explain. The
patient is told by email that there is an answer, never what it is. Every step is
audited; every refusal too, in the patient's trail."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client

from healthspace.access.context import ConsentState
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.corrections import selectors, services
from healthspace.corrections.models import CorrectionRequest
from healthspace.corrections.tests.conftest import consent, item_of, staff_client
from healthspace.corrections.workflow import Status
from healthspace.notify.testing import run_due_tasks
from healthspace.records.amend import ItemChanges
from healthspace.records.models import ScrItem, ScrItemVersion, Section
from healthspace.records.selectors import scr_for

pytestmark = pytest.mark.django_db

WRONG = "I have never been allergic to this"
SHOULD = "Amoxicillin, not penicillin"


@pytest.fixture
def asked(me):
    """An open request about my first allergy: (request, item)."""
    item = item_of(me.patient)
    request_id = services.correction_request(
        actor=me.actor, item_id=item.pk, wrong=WRONG, should_say=SHOULD
    )
    return CorrectionRequest.objects.get(pk=request_id), item


def page(client, request):
    return client.get(f"/staff/corrections/{request.id}/")


def decide(client, request, **data):
    return client.post(f"/staff/corrections/{request.id}/", data)


def test_the_queue_lists_the_practices_requests_oldest_first_without_identifiers(
    me, other, clinician, django_assert_max_num_queries
):
    user, client = clinician
    first = item_of(me.patient)
    with time_machine.travel(now() - timedelta(days=3)):
        services.correction_request(actor=me.actor, item_id=first.pk, wrong=WRONG)
    with django_assert_max_num_queries(30) as one:
        response = client.get("/staff/corrections/")
    queries = len(one.captured_queries)
    text = response.content.decode()
    assert response.status_code == 200 and "3 days waiting" in text
    for item in ScrItem.objects.filter(patient=me.patient).exclude(pk=first.pk)[:4]:
        services.correction_request(actor=me.actor, item_id=item.pk, wrong=WRONG)
    with django_assert_max_num_queries(queries):
        text = client.get("/staff/corrections/").content.decode()
    found = selectors.practice_queue(actor=user_actor(user))
    assert [r.submitted_at for r in found.rows] == sorted(r.submitted_at for r in found.rows)
    assert found.rows[0].section_label == "Allergies" and len(found.rows) == 5
    # no identifiers and no words in the list
    for private in (me.patient.nhs_number, WRONG, "Patel"):
        assert private not in text
    listed = AuditEvent.objects.filter(action="correction.view", patient_id=None).last()
    assert listed.actor == f"staff:user:{user.pk}" and listed.detail["list"] == "corrections"


def user_actor(user):
    from healthspace.accounts.actors import actor_for_user

    return actor_for_user(user)


def test_the_queue_filters_by_status(me, asked, clinician):
    request, _ = asked
    user, client = clinician
    assert selectors.practice_queue(actor=user_actor(user), status="kept").rows == []
    assert [
        r.id for r in selectors.practice_queue(actor=user_actor(user), status="submitted").rows
    ] == [request.id]
    page(client, request)
    decide(client, request, answer="keep", explanation="The hospital letter confirms it.")
    queue = selectors.practice_queue(actor=user_actor(user), status="kept")
    assert [r.id for r in queue.rows] == [request.id]
    assert queue.counts["kept"] == 1 and queue.open_count == 0
    text = client.get("/staff/corrections/?status=kept").content.decode()
    assert request.id.hex[:4].upper() in text
    assert client.get("/staff/corrections/?status=nonsense").status_code == 200


def test_opening_the_request_shows_the_item_and_the_patients_words_and_puts_it_in_review(
    me, asked, clinician
):
    request, _item = asked
    user, client = clinician
    response = page(client, request)
    assert response.status_code == 200
    text = response.content.decode()
    for expected in (WRONG, SHOULD, me.patient.nhs_number[:3], "Correct the description"):
        assert expected in text
    request.refresh_from_db()
    assert request.status == Status.IN_REVIEW
    assert request.reviewed_by == f"staff:user:{user.pk}" and request.reviewed_at
    event = AuditEvent.objects.filter(action="correction.view", patient_id=me.patient.id).last()
    assert event.outcome == "success" and event.detail["opened"] is True
    assert event.reason == "correction-requested"
    page(client, request)
    assert (
        AuditEvent.objects.filter(action="correction.view", patient_id=me.patient.id)
        .last()
        .detail["opened"]
        is False
    )
    # the patient sees that a clinician is looking at it, and who looked, in words
    assert (
        "A clinician is looking at it"
        in me.client().get(f"/record/corrections/{request.id}/").content.decode()
    )
    entry = next(
        e
        for e in access_history_for_patient(patient_id=me.patient.id, limit=20)
        if e.what == "Looked at a request to correct your record" and e.by_staff
    )
    assert entry.why == "You asked your GP practice to correct your record"


def test_keep_explains_why_and_the_patient_is_told_by_an_email_without_content(
    me, asked, clinician
):
    request, item = asked
    _, client = clinician
    page(client, request)
    mail.outbox.clear()
    response = decide(
        client, request, answer="keep", explanation="Your hospital letter of 2019 confirms it."
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == Status.KEPT and request.decided_at
    assert ScrItem.objects.get(pk=item.pk).version == item.version  # nothing changed
    assert mail.outbox == []  # queued in the decision's transaction, sent by the worker
    run_due_tasks()
    (message,) = mail.outbox
    assert message.to == [me.user.email]
    assert "/record/corrections/" in message.body
    for private in ("hospital letter", "penicillin", "allerg", WRONG, me.patient.nhs_number):
        assert private.lower() not in (message.subject + message.body).lower()
    detail = me.client().get(f"/record/corrections/{request.id}/").content.decode()
    assert "Your record has not been changed" in detail
    assert "Your hospital letter of 2019 confirms it." in detail
    assert "Asha Patel, Riverside Medical Practice" in detail
    decided = AuditEvent.objects.filter(action="correction.decide").get()
    assert decided.detail["outcome"] == "kept" and "letter" not in str(decided.detail)


def test_amend_makes_a_new_version_that_everyone_reads_with_its_reason(me, asked, clinician):
    request, item = asked
    _, client = clinician
    page(client, request)
    response = decide(
        client,
        request,
        answer="description",
        description="Allergy to amoxicillin",
        explanation="Checked your GP record: it is amoxicillin.",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    request.refresh_from_db()
    item.refresh_from_db()
    assert request.status == Status.AMENDED and request.amended_version == item.version == 2
    assert ScrItemVersion.objects.filter(item=item, version=1).exists()
    scr = scr_for(actor=me.actor, patient_id=me.patient.id)
    (row,) = [r for r in scr.section(Section.ALLERGIES).items if r.id == item.pk]
    assert row.view.title == "Allergy to amoxicillin" and row.view.code is None
    assert row.amendment["reason"] == "Checked your GP record: it is amoxicillin."
    assert row.amendment["by"] == "Asha Patel, Riverside Medical Practice"
    record = me.client().get("/record/").content.decode()
    assert "Corrected" in record and "Checked your GP record" in record
    steps = AuditEvent.objects.filter(
        patient_id=me.patient.id,
        action__in=["correction.view", "record.amend", "correction.decide"],
    ).order_by("seq")
    assert [e.action for e in steps][-3:] == [
        "correction.view",
        "record.amend",
        "correction.decide",
    ]
    whats = [e.what for e in access_history_for_patient(patient_id=me.patient.id, limit=10)]
    assert "Corrected an item in your Summary Care Record" in whats
    assert "Answered a request to correct your record" in whats


def test_entered_in_error_leaves_the_record_for_everyone(me, asked, clinician):
    request, item = asked
    _, client = clinician
    page(client, request)
    decide(client, request, answer="entered-in-error", explanation="Recorded on the wrong patient.")
    item.refresh_from_db()
    mine = scr_for(actor=me.actor, patient_id=me.patient.id)
    assert item.pk not in [r.id for r in mine.section(Section.ALLERGIES).items]
    assert "entered in error" in me.client().get(
        f"/record/corrections/{request.id}/"
    ).content.decode().replace("recorded by mistake", "entered in error")
    # the report page for it is gone too
    assert me.client().get(f"/record/corrections/report/{item.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Choose your answer"),
        ({"answer": "keep", "explanation": "short"}, "at least 10 characters"),
        ({"answer": "keep"}, "Explain your answer to the patient"),
        (
            {"answer": "description", "explanation": "Checked the GP record."},
            "Enter the corrected description",
        ),
        (
            {"answer": "status", "status": "bogus", "explanation": "Checked the GP record."},
            "Choose the new status",
        ),
        ({"answer": "delete-it", "explanation": "Checked the GP record."}, "Choose your answer"),
    ],
)
def test_a_bad_answer_gets_a_clear_error_and_changes_nothing(me, asked, clinician, data, error):
    request, item = asked
    _, client = clinician
    response = decide(client, request, **data)
    assert response.status_code == 400
    text = response.content.decode()
    assert "There is a problem" in text and error in text
    request.refresh_from_db()
    assert request.status == Status.IN_REVIEW and request.answer is None
    assert ScrItem.objects.get(pk=item.pk).version == item.version
    assert not AuditEvent.objects.filter(action__in=["correction.decide", "record.amend"]).exists()


def test_a_withdrawn_request_cannot_be_answered(me, asked, clinician):
    request, _item = asked
    _, client = clinician
    page(client, request)
    services.correction_withdraw(actor=me.actor, request_id=request.id)
    response = decide(client, request, answer="keep", explanation="Checked the GP record.")
    assert response.status_code == 400
    assert "The patient withdrew this request" in response.content.decode()
    with pytest.raises(InvalidInput):
        services.correction_decide(
            actor=user_actor(clinician[0]),
            request_id=request.id,
            amend=False,
            explanation="Checked the GP record.",
        )
    request.refresh_from_db()
    assert request.status == Status.WITHDRAWN and request.answer is None


@pytest.mark.parametrize(
    ("roles", "ods", "reason"),
    [
        (("clinician",), "RR801", "not-the-practice-asked"),
        (("clinician", "additional-information"), "Y00002", "not-the-practice-asked"),
        (("registration-clerk",), "Y00001", "role-has-no-clinical-access"),
        (("privacy-officer",), "Y00001", "role-has-no-clinical-access"),
        (("operator",), "Y00001", "role-has-no-clinical-access"),
    ],
)
def test_staff_of_another_practice_and_other_roles_get_nothing_and_are_audited(
    me, asked, roles, ods, reason
):
    request, _item = asked
    user, client = staff_client(*roles, ods=ods)
    for response in (
        page(client, request),
        decide(client, request, answer="keep", explanation="Checked the GP record."),
    ):
        assert response.status_code == 404
        assert me.patient.nhs_number not in response.content.decode()
    request.refresh_from_db()
    assert request.status == Status.SUBMITTED
    denied = AuditEvent.objects.filter(
        patient_id=me.patient.id, actor=f"staff:user:{user.pk}", outcome="denied"
    )
    assert denied.count() == 2 and {e.reason for e in denied} == {reason}
    # their own practice's queue shows nothing of it
    queue = client.get("/staff/corrections/")
    assert request.id.hex[:4].upper() not in queue.content.decode()


def test_patients_and_anonymous_visitors_are_turned_away_from_the_staff_pages(me, asked):
    request, _ = asked
    for response in (
        page(me.client(), request),
        decide(me.client(), request, answer="keep", explanation="x" * 20),
        me.client().get("/staff/corrections/"),
        page(Client(), request),
    ):
        assert response.status_code == 404
    door = AuditEvent.objects.filter(
        patient_id=me.patient.id, actor=f"patient:user:{me.user.pk}", outcome="denied"
    )
    assert door.count() == 2 and {e.reason for e in door} == {"not-a-member-of-staff"}
    request.refresh_from_db()
    assert request.status == Status.SUBMITTED


def test_a_deleted_record_leaves_the_queue_and_cannot_be_opened(me, asked, clinician):
    request, _ = asked
    user, client = clinician
    consent(me.patient, ConsentState.DELETED)
    assert selectors.practice_queue(actor=user_actor(user)).rows == []
    assert page(client, request).status_code == 404
    assert (
        AuditEvent.objects.filter(patient_id=me.patient.id, outcome="denied").last().reason
        == "record-deleted"
    )


def test_a_hidden_record_can_still_be_corrected_by_the_practice_asked(me, asked, clinician):
    # the patient asked this practice to look: no permission to view is needed
    request, _ = asked
    consent(me.patient, ConsentState.HIDDEN)
    assert page(clinician[1], request).status_code == 200


def test_services_refuse_unknown_requests(clinician):
    actor = user_actor(clinician[0])
    with pytest.raises(NotFound):
        services.correction_review(actor=actor, request_id=uuid.uuid4())
    with pytest.raises(NotFound):
        services.correction_decide(
            actor=actor, request_id=uuid.uuid4(), amend=False, explanation="Checked the record."
        )


def test_an_amendment_needs_a_change(me, asked, clinician):
    request, _ = asked
    actor = user_actor(clinician[0])
    services.correction_review(actor=actor, request_id=request.id)
    with pytest.raises(InvalidInput):
        services.correction_decide(
            actor=actor, request_id=request.id, amend=True, explanation="Checked the record."
        )
    with pytest.raises(InvalidInput):
        services.correction_decide(
            actor=actor,
            request_id=request.id,
            amend=True,
            explanation="Checked the record.",
            changes=ItemChanges(status="active"),  # it already is
        )
    request.refresh_from_db()
    assert request.status == Status.IN_REVIEW
