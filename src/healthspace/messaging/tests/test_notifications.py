"""Required: notification emails contain no message text. The patient is emailed "You
have a new message in HealthSpace" when their care team writes, and nothing else: not
the subject, the body, a file name, the team's or the patient's name. Run through the
worker (``run_due_tasks``) and read from Django's outbox, as a mail server would get it.

Staff get no email: the team's inbox (with its counts) is where they work."""

from __future__ import annotations

import pytest
from django.core import mail

from healthspace.core.nhs_numbers import format_spaced
from healthspace.messaging import selectors, services
from healthspace.messaging.attachments import attachment_check
from healthspace.messaging.tests import files
from healthspace.messaging.tests.conftest import open_thread
from healthspace.notify.testing import run_due_tasks
from healthspace.records.models import Patient

pytestmark = pytest.mark.django_db

SUBJECT = "Results of my liver function test"
BODY = "I am worried about my alcohol intake"
REPLY = "Your ALT was raised; please book a review"
FILE_NAME = "gastroenterology-letter.pdf"


def _reply(person, thread_id, body=REPLY, attachment=None):
    return services.message_send(
        actor=person.actor,
        user_id=person.user.pk,
        thread_id=thread_id,
        body=body,
        attachment=attachment,
    )


def _forbidden(people, thread_id) -> list[str]:
    patient = Patient.objects.get(pk=people["owner"].patient_id)
    view = selectors.thread_for(
        actor=people["clerk"].actor, user_id=people["clerk"].user.pk, thread_id=thread_id
    )
    return [
        SUBJECT,
        BODY,
        REPLY,
        FILE_NAME,
        "gastroenterology",
        "liver",
        "Riverside",  # the team
        "Asha",
        "Patel",  # the member of staff
        view.patient.name,
        *[part for part in view.patient.name.split() if len(part) > 2],
        patient.nhs_number,
        format_spaced(patient.nhs_number),
    ]


def test_a_reply_from_the_team_emails_the_patient_that_a_message_is_waiting_and_nothing_else(
    people,
):
    owner, clinician = people["owner"], people["clinician"]
    sent = open_thread(owner, SUBJECT, BODY)
    run_due_tasks()
    assert mail.outbox == []  # the patient's own message: no email, and none to staff

    attachment = attachment_check(name=FILE_NAME, data=files.pdf(), max_bytes=10**6)
    _reply(clinician, sent.thread_id, attachment=attachment)
    run_due_tasks()
    (email,) = mail.outbox
    assert email.to == [owner.user.email]
    assert email.subject == "You have a new message in HealthSpace"
    assert "You have a new message in HealthSpace." in email.body
    assert "/messages/" in email.body
    everything = " ".join([email.subject, email.body, *email.to, str(email.extra_headers)])
    for words in _forbidden(people, sent.thread_id):
        assert words.lower() not in everything.lower(), words
    assert not email.attachments and not getattr(email, "alternatives", None)


def test_a_conversation_started_by_a_clinician_emails_the_patient_the_same_words(people):
    from healthspace.access.context import AccessContext, Relationship

    owner, clinician = people["owner"], people["clinician"]
    sent = services.thread_open_by_staff(
        actor=clinician.actor,
        user_id=clinician.user.pk,
        patient_id=owner.patient_id,
        context=AccessContext(relationship=Relationship.CARE_TEAM),
        subject=SUBJECT,
        body=REPLY,
    )
    run_due_tasks()
    (email,) = mail.outbox
    assert email.subject == "You have a new message in HealthSpace"
    for words in _forbidden(people, sent.thread_id):
        assert words.lower() not in (email.subject + email.body).lower(), words


def test_one_email_per_unread_spell_not_one_per_message(people):
    owner, clinician, clerk = people["owner"], people["clinician"], people["clerk"]
    sent = open_thread(owner, SUBJECT, BODY)
    _reply(clinician, sent.thread_id, "First")
    _reply(clerk, sent.thread_id, "Second, before the patient has looked")
    run_due_tasks()
    assert len(mail.outbox) == 1
    selectors.thread_for(actor=owner.actor, user_id=owner.user.pk, thread_id=sent.thread_id)
    _reply(clinician, sent.thread_id, "Third, after they read the others")
    run_due_tasks()
    assert len(mail.outbox) == 2


def test_patients_messages_email_nobody(people):
    owner = people["owner"]
    sent = open_thread(owner, SUBJECT, BODY)
    _reply(owner, sent.thread_id, "And another thing")
    services.thread_close(actor=owner.actor, user_id=owner.user.pk, thread_id=sent.thread_id)
    run_due_tasks()
    assert mail.outbox == []
