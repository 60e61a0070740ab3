"""The patient's message pages over HTTP: lists, a new message with an attachment, a
thread with its reply form; text shown escaped; hostile uploads refused with a clear
error and nothing saved; downloads that a browser never renders."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from healthspace.audit.models import AuditEvent
from healthspace.messaging.models import Attachment, Message, Thread
from healthspace.messaging.tests import files
from healthspace.messaging.tests.conftest import open_thread

pytestmark = pytest.mark.django_db


def upload(name: str, data: bytes, content_type: str = "application/pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def new_message(client, *, subject="Rash on my arm", body="It is itchy.", attachment=None):
    data = {"subject": subject, "body": body}
    if attachment is not None:
        data["attachment"] = attachment
    return client.post("/messages/new/", data)


def test_the_list_shows_the_patients_threads_with_unread_markers_and_help(people):
    owner, clinician = people["owner"], people["clinician"]
    from healthspace.messaging import services

    sent = open_thread(owner, "Question about my inhaler")
    services.message_send(
        actor=clinician.actor, user_id=clinician.user.pk, thread_id=sent.thread_id, body="Hi"
    )
    body = owner.client().get("/messages/").content.decode()
    assert "Question about my inhaler" in body
    assert "Riverside Medical Practice" in body
    assert ">New<" in body.replace("\n", "").replace(" ", "") or "New" in body
    assert "call 111" in body and "999" in body
    assert "usually replies within 2 working days" in body
    assert "You have 1 conversation with new messages." in body


def test_the_list_of_another_patient_shows_none_of_the_owners_threads(people):
    open_thread(people["owner"], "Owner's own subject")
    body = people["other"].client().get("/messages/").content.decode()
    assert "Owner&#39;s own subject" not in body and "Owner's own subject" not in body
    assert "You have not sent or received any messages yet." in body


def test_a_patient_sends_a_message_with_a_pdf_and_reads_it_back(people):
    client = people["owner"].client()
    assert "Riverside Medical Practice" in client.get("/messages/new/").content.decode()
    response = new_message(client, attachment=upload("Hospital letter.PDF", files.pdf()))
    thread = Thread.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/messages/{thread.id}/"
    page = client.get(response["Location"]).content.decode()
    assert "Your message was sent" in page
    assert "Rash on my arm" in page and "It is itchy." in page
    assert "Hospital letter.pdf" in page and "(PDF, 1 KB)" in page


def test_script_in_a_message_is_shown_escaped_with_its_line_breaks(people):
    client = people["owner"].client()
    new_message(
        client, subject="<img src=x onerror=alert(1)>", body="Line one\n<script>alert('x')</script>"
    )
    page = client.get(f"/messages/{Thread.objects.get().id}/").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "Line one<br>&lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"subject": "", "body": "Hello"}, "subject", "Enter a subject"),
        ({"subject": "Hi", "body": "   \n  "}, "body", "Enter your message"),
        (
            {"subject": "x" * 101, "body": "Hello"},
            "subject",
            "The subject must be 100 characters or fewer",
        ),
        (
            {"subject": "Hi", "body": "x" * 5001},
            "body",
            "Your message must be 5,000 characters or fewer",
        ),
    ],
)
def test_an_empty_or_too_long_message_is_refused_and_nothing_is_saved(people, data, field, message):
    response = people["owner"].client().post("/messages/new/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "There is a problem" in body and f'href="#id_{field}"' in body
    assert body.count(message) >= 2  # error summary and the field's own message
    assert (
        not Thread.objects.exists()
        and not AuditEvent.objects.filter(action="message.thread-open").exists()
    )


# Required: uploads of a renamed executable, an oversize file and a polyglot are refused.
@pytest.mark.parametrize(
    ("what", "name", "data", "content_type", "message"),
    [
        ("renamed executable", "report.pdf", files.WINDOWS_EXECUTABLE, "application/pdf", "must be a PDF, PNG or JPEG"),
        ("renamed Linux executable", "scan.jpg", files.LINUX_EXECUTABLE, "image/jpeg", "must be a PDF, PNG or JPEG"),
        ("polyglot: PNG with a ZIP appended", "photo.png", files.png() + files.zip_archive(), "image/png", "contains something other than a document or picture"),
        ("polyglot: JPEG and PDF", "photo.jpg", files.jpeg() + files.pdf(), "image/jpeg", "contains something other than a document or picture"),
        ("PDF with JavaScript", "letter.pdf", files.pdf(b"/OpenAction 5 0 R ", (b"<< /S /JavaScript /JS (x) >>",)), "application/pdf", "contains scripts, actions or attached files"),
        ("SVG named .png", "chart.png", files.SVG, "image/png", "must be a PDF, PNG or JPEG"),
        ("HTML named .jpg", "photo.jpg", files.HTML, "image/jpeg", "must be a PDF, PNG or JPEG"),
        ("empty file", "empty.pdf", b"", "application/pdf", "The selected file is empty"),
        ("truncated PNG", "photo.png", files.png()[:-20], "image/png", "damaged or incomplete"),
        ("decompression bomb", "bomb.png", files.png_bomb(), "image/png", "The selected picture is too large"),
    ],
)  # fmt: skip
def test_a_hostile_upload_is_refused_with_a_field_error_and_nothing_is_saved(
    people, what, name, data, content_type, message
):
    client = people["owner"].client()
    response = new_message(client, attachment=upload(name, data, content_type))
    assert response.status_code == 400, what
    body = response.content.decode()
    assert 'href="#id_attachment"' in body and message in body
    assert "Rash on my arm" in body  # what they typed is kept for them
    assert (
        not Thread.objects.exists()
        and not Message.objects.exists()
        and not Attachment.objects.exists()
    )

    sent = open_thread(people["owner"])
    response = client.post(
        f"/messages/{sent.thread_id}/reply/",
        {"body": "Here it is", "attachment": upload(name, data, content_type)},
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert Message.objects.count() == 1 and not Attachment.objects.exists()


def test_an_oversize_upload_within_the_request_limit_gets_a_clear_form_error(people, settings):
    settings.HEALTHSPACE_ATTACHMENT_MAX_BYTES = 1024
    big = files.pdf() + b" " * 2000  # a valid PDF, just too big
    response = new_message(people["owner"].client(), attachment=upload("big.pdf", big))
    assert response.status_code == 400
    assert "The selected file must be smaller than 1 KB" in response.content.decode()
    assert not Thread.objects.exists()


def test_a_body_above_the_request_limit_is_refused_before_it_is_read(people, settings):
    settings.HEALTHSPACE_MAX_REQUEST_BYTES = 4096
    response = new_message(
        people["owner"].client(), attachment=upload("big.pdf", files.pdf() + b" " * 8000)
    )
    assert response.status_code == 413
    assert not Thread.objects.exists()


def test_an_upload_is_never_written_to_a_temporary_file(people, settings, monkeypatch):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # Django would spool anything larger to disk

    def spooled(*args, **kwargs):
        raise AssertionError("an attachment was written to a temporary file")

    monkeypatch.setattr(TemporaryFileUploadHandler, "new_file", spooled)
    response = new_message(people["owner"].client(), attachment=upload("letter.pdf", files.pdf()))
    assert response.status_code == 302
    assert Attachment.objects.count() == 1


def test_a_post_without_a_csrf_token_is_refused_even_with_the_upload_handlers(people):
    client = people["owner"].client()
    client.handler.enforce_csrf_checks = True
    response = new_message(client, attachment=upload("letter.pdf", files.pdf()))
    assert response.status_code == 403
    assert not Thread.objects.exists()


def test_a_download_is_an_attachment_of_the_detected_type_never_rendered_or_cached(people):
    owner = people["owner"]
    client = owner.client()
    new_message(client, attachment=upload("photo.png", files.jpeg(), "image/png"))
    a = Attachment.objects.get()
    response = client.get(f"/messages/{a.thread_id}/attachments/{a.id}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"  # the content, not the name or browser
    assert response["Content-Disposition"] == 'attachment; filename="photo.jpg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert "no-store" in response["Cache-Control"]
    assert response.content.startswith(b"\xff\xd8\xff")
    event = AuditEvent.objects.filter(action="message.view", patient_id=owner.patient_id).latest(
        "seq"
    )
    expected = {"thread": str(a.thread_id), "attachment": str(a.id), "download": True}
    assert expected.items() <= event.detail.items()


def test_a_non_ascii_file_name_is_offered_in_rfc_6266_form(people):
    client = people["owner"].client()
    new_message(client, attachment=upload("résumé médical.pdf", files.pdf()))
    a = Attachment.objects.get()
    response = client.get(f"/messages/{a.thread_id}/attachments/{a.id}/")
    assert (
        response["Content-Disposition"]
        == "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20m%C3%A9dical.pdf"
    )


def test_a_patient_closes_and_reopens_a_thread(people):
    owner = people["owner"]
    client = owner.client()
    sent = open_thread(owner)
    assert client.post(f"/messages/{sent.thread_id}/close/").status_code == 302
    page = client.get(f"/messages/{sent.thread_id}/").content.decode()
    assert "You closed this conversation" in page and "Reopen conversation" in page
    assert "Send reply" not in page
    response = client.post(f"/messages/{sent.thread_id}/reply/", {"body": "Still there?"})
    assert (
        response.status_code == 400 and "This conversation is closed" in response.content.decode()
    )
    client.post(f"/messages/{sent.thread_id}/reopen/")
    assert (
        client.post(f"/messages/{sent.thread_id}/reply/", {"body": "Still there?"}).status_code
        == 302
    )


def test_a_basic_account_is_told_it_has_no_record_and_staff_find_nothing_here(people):
    from healthspace.accounts.models import PatientLink

    owner = people["owner"]
    PatientLink.objects.filter(user=owner.user).delete()
    response = owner.client().get("/messages/")
    assert response.status_code == 404 and "not yet linked" in response.content.decode()
    assert people["clinician"].client().get("/messages/").status_code == 404


def test_signing_in_with_a_second_factor_is_needed(people):
    from django.test import Client

    open_thread(people["owner"], "Behind the second factor")
    assert Client().get("/messages/")["Location"].startswith("/login/?next=/messages/")
    client = Client()
    client.force_login(people["owner"].user)  # a password alone
    response = client.get("/messages/")
    assert (
        response.status_code == 302 and "Behind the second factor" not in response.content.decode()
    )


def test_the_list_page_costs_the_same_queries_for_two_threads_or_twenty(
    people, django_assert_max_num_queries
):
    owner = people["owner"]
    client = owner.client()
    for i in range(2):
        open_thread(owner, f"Thread {i}")
    with django_assert_max_num_queries(22) as few:
        client.get("/messages/")
    for i in range(18):
        open_thread(owner, f"More {i}")
    with django_assert_max_num_queries(22) as many:
        assert client.get("/messages/").content.decode().count('href="/messages/') >= 20
    assert len(many) == len(few)


def test_a_thread_page_costs_the_same_queries_for_one_message_or_twenty(
    people, django_assert_max_num_queries
):
    from healthspace.messaging import services
    from healthspace.messaging.attachments import attachment_check

    owner = people["owner"]
    client = owner.client()
    sent = open_thread(owner)
    with django_assert_max_num_queries(26) as few:
        client.get(f"/messages/{sent.thread_id}/")
    for i in range(19):
        services.message_send(
            actor=owner.actor,
            user_id=owner.user.pk,
            thread_id=sent.thread_id,
            body=f"Message {i}",
            attachment=attachment_check(name="a.pdf", data=files.pdf(), max_bytes=10**6)
            if i % 2
            else None,
        )
    with django_assert_max_num_queries(26) as many:
        client.get(f"/messages/{sent.thread_id}/")
    assert len(many) == len(few)
