"""The Communicator's services: who may open, reply, assign and close, what the queue
fields say afterwards, that content is sealed under the patient account's portal key,
and that every change is decided and audited with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django_tasks_db.models import DBTaskResult

from healthspace.access.context import AccessContext, Relationship
from healthspace.accounts.models import Account, PatientLink
from healthspace.audit.models import AuditEvent
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.messaging import selectors, services
from healthspace.messaging.attachments import attachment_check
from healthspace.messaging.models import Attachment, Message, Side, Thread
from healthspace.messaging.tests import files
from healthspace.messaging.tests.conftest import open_thread
from healthspace.records.models import Patient
from healthspace.vault import services as vault
from healthspace.vault.crypto import CannotDecrypt

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def reply(person, thread_id, body="Thank you.", attachment=None):
    return services.message_send(
        actor=person.actor,
        user_id=person.user.pk,
        thread_id=thread_id,
        body=body,
        attachment=attachment,
    )


def read(person, thread_id):
    return selectors.thread_for(actor=person.actor, user_id=person.user.pk, thread_id=thread_id)


def pdf_attachment(name="hospital letter.pdf"):
    return attachment_check(name=name, data=files.pdf(), max_bytes=10**6)


# --- opening a thread -------------------------------------------------------------------


def test_a_patient_opens_a_thread_to_their_practice_and_the_team_replies(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(owner, "Blood test", "When are my results due?")
    thread = Thread.objects.get(pk=sent.thread_id)
    assert thread.team.ods_code == "Y00001"
    assert thread.owner_id == owner.user.pk
    assert (thread.opened_by, thread.last_sender, thread.message_count) == ("patient", "patient", 1)
    assert thread.waiting_since is not None and thread.unread_by_team
    reply(clinician, thread.id, "Next week.")
    thread.refresh_from_db()
    assert thread.waiting_since is None and thread.unread_by_patient and not thread.unread_by_team
    view = read(owner, thread.id)
    assert [m.sender_name for m in view.messages] == [
        "You",
        "Asha Patel, Riverside Medical Practice",
    ]
    assert view.messages[1].paragraphs == [["Next week."]]
    assert view.thread.subject == "Blood test"


def test_a_patient_without_a_registered_practice_is_told_and_nothing_is_saved(people):
    owner = people["owner"]
    Patient.objects.filter(pk=owner.patient_id).update(registered_practice=None)
    with pytest.raises(InvalidInput, match="does not show a GP practice"):
        open_thread(owner)
    assert not Thread.objects.exists()


def test_a_basic_account_cannot_open_a_thread(people):
    owner = people["owner"]
    PatientLink.objects.filter(user=owner.user).delete()
    with pytest.raises(NotFound):
        open_thread(owner)
    assert not Thread.objects.exists()


def _staff_open(person, patient_id, relationship=Relationship.CARE_TEAM, **kw):
    return services.thread_open_by_staff(
        actor=person.actor,
        user_id=person.user.pk,
        patient_id=patient_id,
        context=AccessContext(relationship=relationship),
        subject=kw.get("subject", "Your blood test"),
        body=kw.get("body", "Please book a follow-up appointment."),
    )


def test_a_clinician_of_the_care_team_opens_a_thread_and_the_patient_is_emailed(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = _staff_open(clinician, owner.patient_id)
    thread = Thread.objects.get(pk=sent.thread_id)
    assert (thread.team.ods_code, thread.opened_by, thread.owner_id) == (
        "Y00001",
        "team",
        owner.user.pk,
    )
    assert thread.unread_by_patient and thread.waiting_since is None
    assert DBTaskResult.objects.count() == 1  # the "new message" notice, queued with it


def test_a_clinician_with_a_claimed_relationship_opens_a_thread_for_their_own_team(people):
    owner, elsewhere = people["owner"], people["elsewhere"]
    sent = _staff_open(elsewhere, owner.patient_id, Relationship.SELF_CLAIMED)
    assert Thread.objects.get(pk=sent.thread_id).team.ods_code == "RR801"


@pytest.mark.parametrize(
    ("who", "relationship"),
    [
        ("elsewhere", Relationship.NONE),  # no legitimate relationship
        ("clerk", Relationship.CARE_TEAM),  # opening is a clinician's
        ("privacy", Relationship.CARE_TEAM),
        ("operator", Relationship.CARE_TEAM),
    ],
)
def test_staff_without_a_reason_to_message_the_patient_cannot_open_a_thread(
    people, who, relationship
):
    with pytest.raises(NotFound):
        _staff_open(people[who], people["owner"].patient_id, relationship)
    assert not Thread.objects.exists()
    assert AuditEvent.objects.filter(
        action="message.thread-open", outcome="denied", patient_id=people["owner"].patient_id
    ).exists()


def test_a_patient_without_an_account_cannot_be_messaged_and_is_said_so(people):
    owner, clinician = people["owner"], people["clinician"]
    PatientLink.objects.filter(user=owner.user).delete()
    with pytest.raises(services.NoAccount, match="does not have a HealthSpace account"):
        _staff_open(clinician, owner.patient_id)
    assert not Thread.objects.exists()


# --- replies, read markers and who is waiting ----------------------------------------


def test_waiting_since_is_the_patients_oldest_unanswered_message(people):
    owner, clerk = people["owner"], people["clerk"]
    with time_machine.travel(T0, tick=False):
        sent = open_thread(owner)
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        reply(owner, sent.thread_id, "Also, my address changed.")
    thread = Thread.objects.get(pk=sent.thread_id)
    assert thread.waiting_since == T0
    assert thread.last_message_at == T0 + timedelta(hours=3)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        reply(clerk, sent.thread_id, "Done.")
    thread.refresh_from_db()
    assert thread.waiting_since is None and thread.last_sender == Side.TEAM
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        reply(owner, sent.thread_id, "Thanks")
    thread.refresh_from_db()
    assert thread.waiting_since == T0 + timedelta(days=2)


def test_reading_a_thread_moves_only_the_readers_sides_marker(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(owner)
    reply(clinician, sent.thread_id, "Hello")
    thread = Thread.objects.get(pk=sent.thread_id)
    assert thread.unread_by_patient and not thread.unread_by_team
    read(owner, sent.thread_id)
    thread.refresh_from_db()
    assert not thread.unread_by_patient and thread.patient_read_at is not None
    reply(owner, sent.thread_id, "Question")
    thread.refresh_from_db()
    assert thread.unread_by_team
    read(people["clerk"], sent.thread_id)  # anyone in the team reads it for the team
    thread.refresh_from_db()
    assert not thread.unread_by_team and thread.team_read_at is not None
    assert read(owner, sent.thread_id).other_side_read_at == thread.team_read_at


def test_a_closed_thread_takes_no_messages_until_it_is_reopened(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(owner)
    services.thread_close(
        actor=clinician.actor, user_id=clinician.user.pk, thread_id=sent.thread_id
    )
    for person in (owner, clinician):
        with pytest.raises(InvalidInput, match="closed"):
            reply(person, sent.thread_id)
    assert Message.objects.count() == 1
    view = read(owner, sent.thread_id)
    assert view.thread.closed and view.closed_by == "team" and view.closed_by_name == "Asha Patel"
    services.thread_reopen(actor=owner.actor, user_id=owner.user.pk, thread_id=sent.thread_id)
    reply(owner, sent.thread_id, "One more thing")
    assert Message.objects.count() == 2


def test_who_closed_it_is_kept_and_closing_answers_what_was_waiting(people):
    owner = people["owner"]
    sent = open_thread(owner)
    services.thread_close(actor=owner.actor, user_id=owner.user.pk, thread_id=sent.thread_id)
    thread = Thread.objects.get(pk=sent.thread_id)
    assert (thread.status, thread.closed_by, thread.closed_by_user_id) == (
        "closed",
        "patient",
        owner.user.pk,
    )
    assert thread.waiting_since is None
    assert read(people["clerk"], sent.thread_id).closed_by == "patient"
    services.thread_reopen(
        actor=people["clerk"].actor, user_id=people["clerk"].user.pk, thread_id=sent.thread_id
    )
    thread.refresh_from_db()
    assert (thread.status, thread.closed_by, thread.closed_at, thread.waiting_since) == (
        "open",
        "",
        None,
        None,
    )


# --- assignment -------------------------------------------------------------------------


def test_a_thread_is_assigned_to_me_to_a_colleague_and_to_nobody(people):
    owner, clinician, clerk = people["owner"], people["clinician"], people["clerk"]
    sent = open_thread(owner)

    def assign(assignee):
        services.thread_assign(
            actor=clinician.actor,
            user_id=clinician.user.pk,
            thread_id=sent.thread_id,
            assignee_id=assignee,
        )
        return Thread.objects.get(pk=sent.thread_id).assigned_to_id

    assert assign(clinician.user.pk) == clinician.user.pk
    assert assign(clerk.user.pk) == clerk.user.pk
    assert assign(None) is None
    changes = AuditEvent.objects.filter(action="message.manage", patient_id=owner.patient_id)
    assert [e.detail["assignee"] for e in changes.order_by("seq")] == [
        f"user:{clinician.user.pk}",
        f"user:{clerk.user.pk}",
        None,
    ]


@pytest.mark.parametrize("assignee", ["elsewhere", "privacy", "owner"])
def test_a_thread_is_assigned_only_to_someone_who_answers_messages_in_the_team(people, assignee):
    sent = open_thread(people["owner"])
    with pytest.raises(InvalidInput, match="Choose someone in your team"):
        services.thread_assign(
            actor=people["clinician"].actor,
            user_id=people["clinician"].user.pk,
            thread_id=sent.thread_id,
            assignee_id=people[assignee].user.pk,
        )
    assert Thread.objects.get(pk=sent.thread_id).assigned_to_id is None


def test_a_patient_cannot_assign_their_thread(people):
    owner = people["owner"]
    sent = open_thread(owner)
    with pytest.raises(NotFound):
        services.thread_assign(
            actor=owner.actor, user_id=owner.user.pk, thread_id=sent.thread_id, assignee_id=None
        )


def test_the_team_colleagues_are_the_clinicians_and_clerks_of_the_organisation(people):
    names = [c.name for c in selectors.team_colleagues(actor=people["clinician"].actor)]
    assert names.index("Ben Okafor") < names.index("Asha Patel")  # by surname
    # not the privacy officer or the operator of the practice, nor anyone elsewhere
    assert not {"Dev Shah", "Eve Long", "Cara Jones"} & set(names)


# --- access: only the patient and the thread's team ----------------------------------


@pytest.mark.parametrize("who", ["other", "elsewhere", "privacy", "operator"])
def test_nobody_but_the_patient_and_the_team_reads_or_writes_a_thread(people, who):
    owner, person = people["owner"], people[who]
    sent = open_thread(owner, "Private subject", "Private body", attachment=pdf_attachment())
    attachment_id = Attachment.objects.get().id
    attempts = [
        lambda: read(person, sent.thread_id),
        lambda: reply(person, sent.thread_id, "Sneaky"),
        lambda: services.thread_close(
            actor=person.actor, user_id=person.user.pk, thread_id=sent.thread_id
        ),
        lambda: services.thread_reopen(
            actor=person.actor, user_id=person.user.pk, thread_id=sent.thread_id
        ),
        lambda: services.thread_assign(
            actor=person.actor, user_id=person.user.pk, thread_id=sent.thread_id, assignee_id=None
        ),
        lambda: selectors.attachment_file(
            actor=person.actor,
            user_id=person.user.pk,
            thread_id=sent.thread_id,
            attachment_id=attachment_id,
        ),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as refused:
            attempt()
        assert str(refused.value) == "There is no conversation here."
    assert Message.objects.count() == 1 and Thread.objects.get().status == "open"
    denied = AuditEvent.objects.filter(
        patient_id=owner.patient_id, outcome="denied", actor=person.actor.audit_label()
    )
    assert denied.count() == len(attempts)


def test_a_made_up_thread_id_looks_the_same_and_is_audited_in_the_askers_trail(people):
    import uuid

    other = people["other"]
    made_up = uuid.uuid4()
    with pytest.raises(NotFound, match=r"There is no conversation here\."):
        read(other, made_up)
    event = AuditEvent.objects.get(outcome="not-found")
    assert event.patient_id is None and event.actor == other.actor.audit_label()
    assert event.detail["thread"] == str(made_up)


def test_an_attachment_is_found_only_through_its_own_thread(people):
    owner = people["owner"]
    first = open_thread(owner, attachment=pdf_attachment())
    second = open_thread(owner, "Second")
    attachment_id = Attachment.objects.get(thread_id=first.thread_id).id
    with pytest.raises(NotFound):
        selectors.attachment_file(
            actor=owner.actor,
            user_id=owner.user.pk,
            thread_id=second.thread_id,
            attachment_id=attachment_id,
        )
    file = selectors.attachment_file(
        actor=owner.actor,
        user_id=owner.user.pk,
        thread_id=first.thread_id,
        attachment_id=attachment_id,
    )
    assert (file.name, file.content_type, file.data) == (
        "hospital letter.pdf",
        "application/pdf",
        files.pdf(),
    )


# --- sealed under the portal key ----------------------------------------------------------


def _raw_tables() -> bytes:
    dump = bytearray()
    with connection.cursor() as cursor:
        for table in (
            "messaging_thread",
            "messaging_message",
            "messaging_attachment",
            "audit_event",
            "django_tasks_database_dbtaskresult",
        ):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed table names)
            for row in cursor.fetchall():
                for value in row:
                    dump += (
                        bytes(value)
                        if isinstance(value, (bytes, memoryview))
                        else str(value).encode()
                    )
    return bytes(dump)


def test_subjects_bodies_file_names_and_bytes_are_sealed_at_rest(people):
    owner, clinician = people["owner"], people["clinician"]
    marker = files.pdf(text=b"UNIQUE-PDF-TEXT")
    attachment = attachment_check(name="unique-file-name.pdf", data=marker, max_bytes=10**6)
    sent = open_thread(owner, "Unique subject words", "Unique body words", attachment=attachment)
    reply(clinician, sent.thread_id, "Unique reply words")
    read(clinician, sent.thread_id)
    raw = _raw_tables()
    for secret in (
        b"Unique subject",
        b"Unique body",
        b"Unique reply",
        b"unique-file-name",
        b"UNIQUE-PDF-TEXT",
    ):
        assert secret not in raw, secret


def test_content_is_bound_to_its_row_and_opens_only_with_the_owners_portal_key(people):
    from healthspace.accounts.portal import portal_cipher_for

    owner, other = people["owner"], people["other"]
    first = open_thread(owner, "First")
    second = open_thread(owner, "Second")
    a, b = Thread.objects.get(pk=first.thread_id), Thread.objects.get(pk=second.thread_id)
    with pytest.raises(CannotDecrypt):
        portal_cipher_for(user_id=other.user.pk).open(
            a.subject, purpose=selectors.subject_purpose(a.id)
        )
    # a ciphertext copied into another row does not open there
    Thread.objects.filter(pk=b.id).update(subject=a.subject)
    with pytest.raises(CannotDecrypt):
        read(owner, b.id)


def test_closing_the_account_crypto_shreds_its_messages(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(owner, "Soon gone", "Soon gone too", attachment=pdf_attachment())
    subject = Account.objects.get(user=owner.user).portal_subject
    vault.datakey_destroy(patient_id=subject)
    view = read(clinician, sent.thread_id)
    assert not view.readable and view.thread.subject is None
    assert all(not m.paragraphs and not m.attachments for m in view.messages)
    with pytest.raises(InvalidInput, match="closed their account"):
        reply(clinician, sent.thread_id)
    inbox = selectors.team_inbox(
        actor=clinician.actor, user_id=clinician.user.pk, view=selectors.InboxView.OPEN
    )
    assert [r.subject for r in inbox.rows] == [None]


# --- audit: every action, in its transaction, with ids and counts only -----------------


def test_every_action_is_audited_with_ids_and_counts_never_text(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(
        owner, "Secret subject", "Secret body", attachment=pdf_attachment("secret-name.pdf")
    )
    attachment_id = Attachment.objects.get().id
    read(clinician, sent.thread_id)
    reply(clinician, sent.thread_id, "Secret reply")
    services.thread_assign(
        actor=clinician.actor,
        user_id=clinician.user.pk,
        thread_id=sent.thread_id,
        assignee_id=clinician.user.pk,
    )
    selectors.attachment_file(
        actor=owner.actor,
        user_id=owner.user.pk,
        thread_id=sent.thread_id,
        attachment_id=attachment_id,
    )
    services.thread_close(actor=owner.actor, user_id=owner.user.pk, thread_id=sent.thread_id)
    events = AuditEvent.objects.filter(
        patient_id=owner.patient_id, action__startswith="message."
    ).order_by("seq")
    assert [(e.action, e.actor.split(":")[0]) for e in events] == [
        ("message.thread-open", "patient"),
        ("message.view", "staff"),
        ("message.send", "staff"),
        ("message.manage", "staff"),
        ("message.view", "patient"),
        ("message.manage", "patient"),
    ]
    assert all(e.outcome == "success" and e.detail["thread"] == str(sent.thread_id) for e in events)
    assert events[4].detail["attachment"] == str(attachment_id)
    text = json.dumps([e.detail for e in events])
    for secret in ("Secret", "secret-name"):
        assert secret not in text


def test_a_message_whose_notice_cannot_be_queued_is_not_sent_nor_audited(people):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(owner)
    before = AuditEvent.objects.count()
    with (
        mock.patch(
            "healthspace.messaging.services.notice_send", side_effect=RuntimeError("queue down")
        ),
        pytest.raises(RuntimeError),
    ):
        reply(clinician, sent.thread_id, "Lost?")
    assert Message.objects.count() == 1
    assert AuditEvent.objects.count() == before
    assert Thread.objects.get().last_sender == Side.PATIENT
