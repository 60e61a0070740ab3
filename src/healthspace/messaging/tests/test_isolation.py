"""Required: a patient can never read another patient's thread or attachment, ids tried.

Another patient, a basic account, nobody signed in, clinicians of another organisation,
the practice's privacy officer and an operator try every thread, attachment and message
route, patient and staff side, with the owner's real ids, by GET and by POST. Each gets
the same 404 as a made-up id, sees nothing of the owner's (subject, body, file name,
NHS number, name), changes nothing, and, when signed in, is recorded in the owner's trail
as refused."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from healthspace.accounts.models import Account
from healthspace.audit.models import AuditEvent
from healthspace.core.nhs_numbers import format_spaced
from healthspace.messaging import selectors, services
from healthspace.messaging.attachments import attachment_check
from healthspace.messaging.models import Attachment, Message, Thread
from healthspace.messaging.tests import files
from healthspace.messaging.tests.conftest import Person, open_thread
from healthspace.records.models import Patient

pytestmark = pytest.mark.django_db

SUBJECT = "Owner subject 7f3a"
BODY = "Owner body 9c1e"
FILE_NAME = "owner-file-4b2d.pdf"

ROUTES = [
    "/messages/{t}/",
    "/messages/{t}/reply/",
    "/messages/{t}/close/",
    "/messages/{t}/reopen/",
    "/messages/{t}/attachments/{a}/",
    "/staff/messages/{t}/",
    "/staff/messages/{t}/reply/",
    "/staff/messages/{t}/assign/",
    "/staff/messages/{t}/close/",
    "/staff/messages/{t}/reopen/",
    "/staff/messages/{t}/attachments/{a}/",
]
POST_DATA = {"body": "Intruder's words", "assignee": "me"}


@pytest.fixture
def owned(people):
    owner = people["owner"]
    attachment = attachment_check(name=FILE_NAME, data=files.pdf(), max_bytes=10**6)
    sent = open_thread(owner, SUBJECT, BODY, attachment=attachment)
    patient = Patient.objects.get(pk=owner.patient_id)
    name = selectors.thread_for(
        actor=people["clinician"].actor,
        user_id=people["clinician"].user.pk,
        thread_id=sent.thread_id,
    ).patient.name
    return {
        "thread": sent.thread_id,
        "attachment": Attachment.objects.get().id,
        "secrets": [
            SUBJECT,
            BODY,
            FILE_NAME,
            patient.nhs_number,
            format_spaced(patient.nhs_number),
            name,
        ],
    }


def _basic(people) -> Person:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="basic@example.test")
    Account.objects.create(user=user, kind=Account.Kind.PATIENT)
    return Person(user)


INTRUDERS = ["other", "basic", "anonymous", "elsewhere", "privacy", "operator"]


def _state():
    thread = Thread.objects.get()
    return (
        Message.objects.count(),
        Attachment.objects.count(),
        thread.status,
        thread.assigned_to_id,
        thread.unread_by_team,
        thread.unread_by_patient,
    )


@pytest.mark.parametrize("intruder", INTRUDERS)
def test_nobody_but_the_owner_and_their_team_reads_or_changes_the_owners_thread(
    people, owned, intruder
):
    person = _basic(people) if intruder == "basic" else people.get(intruder)
    client = Client() if intruder == "anonymous" else person.client()
    label = None if intruder == "anonymous" else person.actor.audit_label()
    owner_patient = people["owner"].patient_id
    before = _state()
    wrong = []
    for template in ROUTES:
        for method in ("GET", "POST"):
            path = template.format(t=owned["thread"], a=owned["attachment"])
            refusals = AuditEvent.objects.filter(
                patient_id=owner_patient, outcome="denied", actor=label or "-"
            ).count()
            response = client.post(path, POST_DATA) if method == "POST" else client.get(path)
            body = response.content.decode(errors="replace")
            if response.status_code != 404:
                wrong.append(f"{method} {path}: {response.status_code}, not 404")
            for secret in owned["secrets"]:
                if secret and secret in body:
                    wrong.append(f"{method} {path}: shows {secret!r}")
            if label is not None:
                now_refused = AuditEvent.objects.filter(
                    patient_id=owner_patient, outcome="denied", actor=label
                ).count()
                if now_refused != refusals + 1:
                    wrong.append(
                        f"{method} {path}: the refusal was not audited in the owner's trail"
                    )
            if _state() != before:
                wrong.append(f"{method} {path}: changed the thread")
    assert not wrong, "\n".join(wrong)
    # nothing was read for them: no successful event by the intruder about the owner
    assert not AuditEvent.objects.filter(
        patient_id=owner_patient, outcome="success", actor=label or "-"
    ).exists()


@pytest.mark.parametrize("intruder", ["other", "elsewhere"])
def test_a_real_id_looks_exactly_like_a_made_up_one(people, owned, intruder):
    client = people[intruder].client()
    prefix = "/messages" if intruder == "other" else "/staff/messages"
    real = client.get(f"{prefix}/{owned['thread']}/")
    made_up = client.get(f"{prefix}/{uuid.uuid4()}/")
    assert real.status_code == made_up.status_code == 404

    def page(response) -> bytes:  # the same page, but for its per-response nonces
        return re.sub(rb'(nonce|value)="[^"]*"', b"", response.content)

    assert page(real) == page(made_up)


def test_the_owners_attachment_cannot_be_reached_through_the_intruders_own_thread(people, owned):
    other = people["other"]
    own = open_thread(other, "Mine")
    client = other.client()
    response = client.get(f"/messages/{own.thread_id}/attachments/{owned['attachment']}/")
    assert response.status_code == 404 and FILE_NAME.encode() not in response.content
    response = client.get(f"/messages/{owned['thread']}/attachments/{owned['attachment']}/")
    assert response.status_code == 404


def test_the_owner_and_the_practice_do_reach_it(people, owned):
    """The control: the same routes work for those who may use them."""
    t, a = owned["thread"], owned["attachment"]
    owner = people["owner"].client()
    assert SUBJECT in owner.get(f"/messages/{t}/").content.decode()
    assert owner.get(f"/messages/{t}/attachments/{a}/").status_code == 200
    for who in ("clinician", "clerk"):
        staff = people[who].client()
        assert BODY in staff.get(f"/staff/messages/{t}/").content.decode()
        assert staff.get(f"/staff/messages/{t}/attachments/{a}/").status_code == 200


def test_staff_of_the_practice_cannot_use_the_patients_own_pages_either(people, owned):
    response = people["clinician"].client().get(f"/messages/{owned['thread']}/")
    assert response.status_code == 404 and SUBJECT not in response.content.decode()


def test_a_thread_of_an_earlier_account_of_the_same_patient_stays_closed(people, owned):
    """A record relinked to a new account (the old one closed): the old account's
    conversations are sealed under its destroyed key and are not the new one's."""
    from django.contrib.auth import get_user_model

    from healthspace.accounts.models import PatientLink

    owner = people["owner"]
    link = PatientLink.objects.get(user=owner.user)
    new_user = get_user_model().objects.create(username="new-account@example.test")
    Account.objects.create(user=new_user, kind=Account.Kind.PATIENT)
    link.user = new_user
    link.save()
    newcomer = Person(new_user)
    response = newcomer.client().get(f"/messages/{owned['thread']}/")
    assert response.status_code == 404 and SUBJECT not in response.content.decode()
    assert SUBJECT not in newcomer.client().get("/messages/").content.decode()
    with pytest.raises(services.NotFound):
        services.message_send(
            actor=newcomer.actor, user_id=new_user.pk, thread_id=owned["thread"], body="Hi"
        )


@pytest.mark.parametrize(
    ("intruder", "prefix"), [("other", "/messages"), ("elsewhere", "/staff/messages")]
)
def test_an_intruders_upload_is_refused_before_the_file_is_even_checked(
    people, owned, monkeypatch, intruder, prefix
):
    from healthspace.messaging import forms

    def checked(**kwargs):
        raise AssertionError("a file was parsed for someone who may not post here")

    monkeypatch.setattr(forms.attachments, "attachment_check", checked)
    upload = {"body": "Hi", "attachment": SimpleUploadedFile("x.pdf", files.pdf())}
    response = people[intruder].client().post(f"{prefix}/{owned['thread']}/reply/", upload)
    assert response.status_code == 404
