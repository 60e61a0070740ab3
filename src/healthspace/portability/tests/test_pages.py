"""The pages: "Download your data" (queued, progress, a link only the account can use,
gone when it expires) and "Close your account" (password and the box, then the receipt)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from pypdf import PdfReader

from healthspace.accounts.models import Account
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.core.clock import now
from healthspace.core.nhs_numbers import format_spaced
from healthspace.notify.testing import run_due_tasks
from healthspace.ops.lifecycle import allowed_when_read_only  # noqa: F401 (the marker)
from healthspace.portability import receipts, views
from healthspace.portability.models import Download
from healthspace.portability.tests.conftest import READING_NOTE

pytestmark = pytest.mark.django_db


def test_export_views_keep_working_when_read_only():
    for view in (views.your_data, views.download, views.download_file):
        assert getattr(view, "allowed_when_read_only", False), view.__name__
    assert not getattr(views.close, "allowed_when_read_only", False)


def test_a_download_is_queued_shows_progress_and_is_only_the_accounts(person):
    client = signed_in_client(person.user)
    page = client.get("/account/your-data/")
    assert page.status_code == 200 and "Download your data" in page.content.decode()
    response = client.post("/account/your-data/", {"format": "pdf"})
    assert response.status_code == 302
    row = Download.objects.get()
    status = client.get(response["Location"]).content.decode()
    assert "Waiting to start" in status and "<progress" in status
    assert client.get(f"/account/your-data/{row.id}/file/").status_code == 404
    run_due_tasks()
    row.refresh_from_db()
    assert row.status == "ready" and row.progress == 100
    assert b"%PDF" not in bytes(row.payload)  # sealed
    assert "Download the file" in client.get(response["Location"]).content.decode()
    got = client.get(f"/account/your-data/{row.id}/file/")
    assert got.status_code == 200 and got["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(got.content)).pages[0].extract_text()
    assert format_spaced(person.patient.nhs_number) in text
    # another account: not found, and no NHS number
    other = get_user_model().objects.create(username="other@example.test")
    Account.objects.create(user=other)
    stranger = signed_in_client(other)
    for path in (f"/account/your-data/{row.id}/", f"/account/your-data/{row.id}/file/"):
        refused = stranger.get(path)
        assert refused.status_code == 404
        assert format_spaced(person.patient.nhs_number) not in refused.content.decode()
    # after 24 hours the worker deletes it, and the link is gone
    with time_machine.travel(now() + timedelta(hours=24, seconds=5)):
        run_due_tasks()
        assert not Download.objects.exists()
        assert client.get(f"/account/your-data/{row.id}/file/").status_code != 200


def test_a_basic_account_downloads_its_readings_only(person):
    from healthspace.accounts.actors import actor_for_user
    from healthspace.organiser.measures import Measure
    from healthspace.organiser.services import reading_add

    basic = get_user_model().objects.create(username="basic@example.test")
    Account.objects.create(user=basic)
    reading_add(
        actor=actor_for_user(basic),
        owner_id=basic.pk,
        measure=Measure.WEIGHT,
        taken_at=now() - timedelta(hours=1),
        values={"kg": 80},
        entered={"unit": "kg"},
        note="BASIC-NOTE",
    )
    client = signed_in_client(basic)
    assert client.post("/account/your-data/", {"format": "fhir"}).status_code == 400
    assert not Download.objects.exists()
    response = client.post("/account/your-data/", {"format": "csv"})
    run_due_tasks()
    row = Download.objects.get()
    body = client.get(f"/account/your-data/{row.id}/file/").content.decode("utf-8-sig")
    assert "BASIC-NOTE" in body and READING_NOTE not in body
    assert response.status_code == 302


def test_closing_needs_the_password_and_the_box(person):
    client = signed_in_client(person.user)
    page = client.get("/account/close/").content.decode()
    assert "stays with the NHS" in page
    for data in (
        {"password": person.user.password_text},
        {"understood": "yes", "password": "wrong"},
    ):
        response = client.post("/account/close/", data)
        assert response.status_code == 400 and "There is a problem" in response.content.decode()
    assert get_user_model().objects.get(pk=person.user_id).is_active

    response = client.post(
        "/account/close/", {"understood": "yes", "password": person.user.password_text}
    )
    assert response.status_code == 302 and response["Location"] == "/account/closed/"
    assert "Your account is closed" in client.get("/account/closed/").content.decode()
    receipt = receipts.verify(client.get("/account/closed/receipt.json").content)
    assert receipt["kind"] == "account-closure"
    # logged out, and the login is disabled
    assert client.get("/account/your-data/").status_code == 302
    assert not client.login(username=person.user.username, password=person.user.password_text)
    assert not get_user_model().objects.get(pk=person.user_id).is_active
    # nobody else sees a receipt
    from django.test import Client

    assert Client().get("/account/closed/receipt.json").status_code == 404
    json.loads(receipts.dumps(receipt))


def test_the_record_page_prints_in_one_click(person):
    client = signed_in_client(person.user)
    page = client.get("/record/").content.decode()
    assert "Print or save your record (PDF)" in page
    assert 'name="format" value="pdf"' in page
    response = client.post("/account/your-data/", {"format": "pdf"})
    assert response.status_code == 302 and Download.objects.get().format == "pdf"
