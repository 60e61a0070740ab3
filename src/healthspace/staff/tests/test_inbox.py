"""The care team's inbox: its triage views and counts, the patient waiting longest first,
assignment, replies and closing from the thread page, a constant number of queries
whatever the number of threads, and "Message the patient" from the staff patient page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from healthspace.accounts.models import PatientLink
from healthspace.audit.models import AuditEvent
from healthspace.core.nhs_numbers import format_spaced
from healthspace.messaging import selectors, services
from healthspace.messaging.models import Thread
from healthspace.messaging.tests import conftest as messaging_fixtures
from healthspace.messaging.tests.conftest import open_thread
from healthspace.records.models import Patient

pytestmark = pytest.mark.django_db
people = messaging_fixtures.people  # the Communicator's people: patients, the practice's staff
_fast_hasher = messaging_fixtures._fast_hasher

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def reply(person, thread_id, body="Reply"):
    services.message_send(
        actor=person.actor, user_id=person.user.pk, thread_id=thread_id, body=body
    )


def assign(person, thread_id, assignee):
    services.thread_assign(
        actor=person.actor, user_id=person.user.pk, thread_id=thread_id, assignee_id=assignee
    )


@pytest.fixture
def queue(people):
    """Five threads of the practice, made an hour apart (the oldest first):
    waiting-a  the patient waits (oldest), unassigned, unread
    answered   the team replied: waits for the patient
    waiting-b  the patient waits, assigned to the clinician, read by the team
    closed     closed by the team
    waiting-c  the patient waits (newest), assigned to the clerk
    """
    owner, other = people["owner"], people["other"]
    clinician, clerk = people["clinician"], people["clerk"]
    made = {}
    for hour, (name, who) in enumerate(
        [
            ("waiting-a", other),
            ("answered", owner),
            ("waiting-b", owner),
            ("closed", other),
            ("waiting-c", owner),
        ]
    ):
        with time_machine.travel(T0 + timedelta(hours=hour), tick=False):
            made[name] = open_thread(who, f"Subject {name}", f"Body {name}").thread_id
    with time_machine.travel(T0 + timedelta(hours=6), tick=False):
        reply(clinician, made["answered"])
        assign(clinician, made["waiting-b"], clinician.user.pk)
        selectors.thread_for(
            actor=clinician.actor, user_id=clinician.user.pk, thread_id=made["waiting-b"]
        )
        services.thread_close(actor=clerk.actor, user_id=clerk.user.pk, thread_id=made["closed"])
        assign(clinician, made["waiting-c"], clerk.user.pk)
    return made


def _subjects(inbox) -> list[str]:
    return [row.subject.removeprefix("Subject ") for row in inbox.rows]


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("awaiting", ["waiting-a", "waiting-b", "waiting-c"]),
        ("unread", ["waiting-a", "waiting-c"]),
        ("mine", ["waiting-b"]),
        ("unassigned", ["waiting-a", "answered"]),
        ("open", ["waiting-a", "waiting-b", "waiting-c", "answered"]),
        ("closed", ["closed"]),
    ],
)
def test_each_triage_view_holds_its_threads_the_longest_wait_first(people, queue, view, expected):
    clinician = people["clinician"]
    inbox = selectors.team_inbox(
        actor=clinician.actor, user_id=clinician.user.pk, view=selectors.InboxView(view)
    )
    assert _subjects(inbox) == expected
    assert inbox.counts[view] == len(expected)
    assert inbox.team_name == "Riverside Medical Practice"


def test_the_inbox_page_shows_patients_subjects_waits_and_assignees(people, queue):
    body = people["clerk"].client().get("/staff/messages/").content.decode()
    assert "Awaiting reply (3)" in body and "Closed (1)" in body
    order = [body.index(f"Subject waiting-{x}") for x in "abc"]
    assert order == sorted(order)
    owner_patient = Patient.objects.get(pk=people["owner"].patient_id)
    assert format_spaced(owner_patient.nhs_number) in body
    assert "Asha Patel" in body and ">You<" in body.replace("\n", "").replace(" ", "")
    assert "Subject closed" not in body  # not in this view
    closed = people["clerk"].client().get("/staff/messages/?view=closed").content.decode()
    assert "Subject closed" in closed and 'aria-current="page">Closed (1)' in closed


def test_an_unknown_view_falls_back_to_awaiting_reply(people, queue):
    body = people["clerk"].client().get("/staff/messages/?view=everything").content.decode()
    assert 'aria-current="page">Awaiting reply (3)' in body


def test_listing_is_audited_once_in_the_staff_members_own_trail_with_the_ids_shown(people, queue):
    clerk = people["clerk"]
    before = AuditEvent.objects.filter(action="message.view").count()
    clerk.client().get("/staff/messages/")
    (event,) = AuditEvent.objects.filter(action="message.view").order_by("-id")[:1]
    assert AuditEvent.objects.filter(action="message.view").count() == before + 1
    assert event.patient_id is None and event.actor == clerk.actor.audit_label()
    assert event.detail["threads"] == [
        str(queue[n]) for n in ("waiting-a", "waiting-b", "waiting-c")
    ]
    assert "Subject" not in str(event.detail)


def test_staff_elsewhere_see_only_their_own_teams_inbox_and_others_none(people, queue):
    body = people["elsewhere"].client().get("/staff/messages/").content.decode()
    assert "There are no conversations in this view." in body and "Subject" not in body
    for who in ("privacy", "operator"):
        response = people[who].client().get("/staff/messages/")
        assert response.status_code == 404 and b"Subject" not in response.content
        assert AuditEvent.objects.filter(
            actor=people[who].actor.audit_label(), action="message.view", outcome="denied"
        ).exists()
    for who in ("owner", "other"):
        assert people[who].client().get("/staff/messages/").status_code == 404


def test_the_inbox_costs_the_same_queries_for_three_threads_or_thirty(
    people, django_assert_max_num_queries
):
    owner, other, clinician = people["owner"], people["other"], people["clinician"]
    client = clinician.client()
    for i in range(3):
        open_thread(owner if i % 2 else other, f"Few {i}")
    client.get("/staff/messages/?view=open")  # the first look starts their audit chain
    with django_assert_max_num_queries(20) as few:
        client.get("/staff/messages/?view=open")
    for i in range(27):
        sent = open_thread(owner if i % 2 else other, f"Many {i}")
        if i % 3 == 0:
            assign(clinician, sent.thread_id, clinician.user.pk)
    with django_assert_max_num_queries(20) as many:
        body = client.get("/staff/messages/?view=open").content.decode()
    # one link per thread on the page (25 a page), not counting the navigation
    assert len(re.findall(r'href="/staff/messages/[0-9a-f-]{36}/"', body)) == 25
    assert "Next page" in body
    assert len(many) == len(few), [q["sql"][:80] for q in many.captured_queries]


def test_the_second_page_holds_the_rest(people):
    owner, clinician = people["owner"], people["clinician"]
    for i in range(27):
        with time_machine.travel(T0 + timedelta(minutes=i), tick=False):
            open_thread(owner, f"Thread {i:02d}")
    inbox = selectors.team_inbox(
        actor=clinician.actor, user_id=clinician.user.pk, view=selectors.InboxView.AWAITING, page=2
    )
    assert (inbox.page, inbox.pages) == (2, 2)
    assert _subjects(inbox) == ["Thread 25", "Thread 26"]


# --- the thread page ----------------------------------------------------------------------


def test_the_thread_page_shows_the_patient_the_messages_and_who_it_is_assigned_to(people, queue):
    page = (
        people["clinician"].client().get(f"/staff/messages/{queue['waiting-b']}/").content.decode()
    )
    owner_patient = Patient.objects.get(pk=people["owner"].patient_id)
    assert "Subject waiting-b" in page and "Body waiting-b" in page
    assert format_spaced(owner_patient.nhs_number) in page
    assert "Awaiting a reply from the team" in page
    assert re.search(r'<option value="me" selected\s*>You</option>', page)


def test_a_clerk_assigns_to_themselves_then_to_a_colleague_then_to_nobody(people, queue):
    clerk, clinician = people["clerk"], people["clinician"]
    client = clerk.client()
    thread_id = queue["waiting-a"]
    for choice, expected, words in [
        ("me", clerk.user.pk, "Assigned to you"),
        (str(clinician.user.pk), clinician.user.pk, "Assigned to Asha Patel"),
        ("nobody", None, "Unassigned"),
    ]:
        response = client.post(f"/staff/messages/{thread_id}/assign/", {"assignee": choice})
        assert response.status_code == 302
        assert Thread.objects.get(pk=thread_id).assigned_to_id == expected
        assert words in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("who", ["elsewhere", "privacy", "owner"])
def test_assigning_to_someone_outside_the_team_is_refused_with_a_field_error(people, queue, who):
    response = (
        people["clerk"]
        .client()
        .post(
            f"/staff/messages/{queue['waiting-a']}/assign/", {"assignee": str(people[who].user.pk)}
        )
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose someone in your team" in body and 'href="#id_assignee"' in body
    assert Thread.objects.get(pk=queue["waiting-a"]).assigned_to_id is None


def test_a_reply_from_the_thread_page_answers_the_patient_and_leaves_the_queue(people, queue):
    clinician = people["clinician"]
    client = clinician.client()
    response = client.post(
        f"/staff/messages/{queue['waiting-a']}/reply/", {"body": "Please call us."}
    )
    assert response.status_code == 302
    thread = Thread.objects.get(pk=queue["waiting-a"])
    assert thread.waiting_since is None and thread.unread_by_patient
    awaiting = selectors.team_inbox(
        actor=clinician.actor, user_id=clinician.user.pk, view=selectors.InboxView.AWAITING
    )
    assert _subjects(awaiting) == ["waiting-b", "waiting-c"]
    empty = client.post(f"/staff/messages/{queue['waiting-b']}/reply/", {"body": ""})
    assert empty.status_code == 400 and "Enter your message" in empty.content.decode()


def test_the_team_closes_and_reopens_a_thread_and_says_who_closed_it(people, queue):
    clinician = people["clinician"]
    client = clinician.client()
    thread_id = queue["waiting-a"]
    client.post(f"/staff/messages/{thread_id}/close/")
    page = client.get(f"/staff/messages/{thread_id}/").content.decode()
    assert "Closed by you" in page and "Reopen conversation" in page and "Send reply" not in page
    clerk_page = people["clerk"].client().get(f"/staff/messages/{thread_id}/").content.decode()
    assert "Closed by Asha Patel" in clerk_page
    patient_page = people["other"].client().get(f"/messages/{thread_id}/").content.decode()
    assert "Asha Patel at Riverside Medical Practice closed this conversation" in patient_page
    client.post(f"/staff/messages/{thread_id}/reopen/")
    assert Thread.objects.get(pk=thread_id).status == "open"


def test_opening_a_thread_marks_it_read_for_the_team(people, queue):
    people["clerk"].client().get(f"/staff/messages/{queue['waiting-a']}/")
    assert not Thread.objects.get(pk=queue["waiting-a"]).unread_by_team
    assert (
        selectors.inbox_counts(
            actor=people["clinician"].actor, user_id=people["clinician"].user.pk
        )["unread"]
        == 1
    )


def test_the_thread_page_costs_the_same_queries_for_one_message_or_twenty(
    people, django_assert_max_num_queries
):
    owner, clinician = people["owner"], people["clinician"]
    client = clinician.client()
    sent = open_thread(owner)
    with django_assert_max_num_queries(30) as few:
        client.get(f"/staff/messages/{sent.thread_id}/")
    for i in range(19):
        reply(owner if i % 2 else clinician, sent.thread_id, f"Message {i}")
    with django_assert_max_num_queries(30) as many:
        client.get(f"/staff/messages/{sent.thread_id}/")
    assert len(many) == len(few)


# --- "Message the patient" from the staff patient page --------------------------------


def _found(client, patient_id):
    patient = Patient.objects.get(pk=patient_id)
    born = patient.birth_date
    response = client.post(
        "/staff/",
        {
            "nhs_number": format_spaced(patient.nhs_number),
            "birth_day": born.day,
            "birth_month": born.month,
            "birth_year": born.year,
        },
    )
    assert response.status_code == 302
    return client


def test_a_clinician_of_the_care_team_messages_the_patient_from_the_patient_page(people):
    owner, clinician = people["owner"], people["clinician"]
    client = _found(clinician.client(), owner.patient_id)
    page = client.get(f"/staff/patient/{owner.patient_id}/").content.decode()
    assert f'href="/staff/patient/{owner.patient_id}/message/"' in page
    form = client.get(f"/staff/patient/{owner.patient_id}/message/")
    assert form.status_code == 200 and "Message the patient" in form.content.decode()
    response = client.post(
        f"/staff/patient/{owner.patient_id}/message/",
        {"subject": "Your blood pressure", "body": "Please book a check."},
    )
    thread = Thread.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/messages/{thread.id}/"
    assert (thread.opened_by, thread.team.ods_code, thread.owner_id) == (
        "team",
        "Y00001",
        owner.user.pk,
    )
    assert "Your blood pressure" in owner.client().get("/messages/").content.decode()


def test_an_empty_message_to_the_patient_is_refused_and_nothing_is_saved(people):
    owner, clinician = people["owner"], people["clinician"]
    client = _found(clinician.client(), owner.patient_id)
    response = client.post(
        f"/staff/patient/{owner.patient_id}/message/", {"subject": "", "body": ""}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a subject" in body and "Enter your message" in body
    assert not Thread.objects.exists()


def test_a_patient_without_a_healthspace_account_is_said_so_plainly(people):
    patient_id, clinician = people["owner"].patient_id, people["clinician"]
    PatientLink.objects.filter(patient_id=patient_id).delete()
    client = _found(clinician.client(), patient_id)
    page = client.get(f"/staff/patient/{patient_id}/message/").content.decode()
    assert "This patient does not have a HealthSpace account" in page
    assert 'name="body"' not in page
    client.post(f"/staff/patient/{patient_id}/message/", {"subject": "S", "body": "B"})
    assert not Thread.objects.exists()


@pytest.mark.parametrize("who", ["clerk", "elsewhere", "privacy"])
def test_staff_who_may_not_open_a_thread_go_back_to_the_patient_page(people, who):
    owner = people["owner"]
    client = _found(people[who].client(), owner.patient_id)
    page = client.get(f"/staff/patient/{owner.patient_id}/").content.decode()
    assert "Message the patient" not in page
    response = client.post(
        f"/staff/patient/{owner.patient_id}/message/", {"subject": "S", "body": "B"}
    )
    assert (
        response.status_code == 302
        and response["Location"] == f"/staff/patient/{owner.patient_id}/"
    )
    assert not Thread.objects.exists()
    assert AuditEvent.objects.filter(
        patient_id=owner.patient_id, action="message.thread-open", outcome="denied"
    ).exists()


def test_the_message_page_needs_the_patient_found_in_this_session(people):
    owner = people["owner"]
    response = people["clinician"].client().get(f"/staff/patient/{owner.patient_id}/message/")
    assert response.status_code == 404
