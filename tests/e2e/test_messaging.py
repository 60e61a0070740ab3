"""End-to-end: a patient sends their GP practice a message with a PDF; a registration
clerk of the practice finds it in the team's inbox, assigns it to themselves and replies;
the patient sees the reply. A renamed program is refused on the way. axe-core (WCAG 2.2
AA) on every page of the journey: no serious or critical violation."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest

from tests.e2e.test_identity_flow import describe, log_in_with_password, virtual_authenticator

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SUBJECT = "Letter from the hospital"
BODY = "The hospital sent me this letter.\nCan the doctor look at it?"
REPLY = "Thank you. The doctor has read it and will call you on Friday."


@pytest.fixture
def demo_patient(demo_patient):
    from django.contrib.auth import get_user_model

    from healthspace.accounts.factors.services import totp_demo_device

    totp_demo_device(get_user_model().objects.get(username=demo_patient.email), TOTP_SECRET)
    return demo_patient


def _pdf() -> bytes:
    from healthspace.messaging.tests.files import pdf

    return pdf(text=b"Discharge summary")


def _patient_logs_in(page: Any, demo_patient) -> None:
    log_in_with_password(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/account/two-factor/verify/**")
    page.locator("#code").fill(pyotp.TOTP(TOTP_SECRET).now())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/record/")


def _serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_a_patient_messages_the_practice_and_the_clerk_assigns_and_replies(
    browser: Any, live_server: Any, axe, demo_patient
):
    from healthspace.messaging.models import Attachment, Thread
    from healthspace.ops.demo import DEMO_DOMAIN, DEMO_PASSWORD_CLINICIAN
    from tests.e2e.conftest import _new_context

    found: dict[str, list[dict[str, Any]]] = {}
    patient_context = _new_context(browser, live_server, bypass_csp=True)
    staff_context = _new_context(browser, live_server, bypass_csp=True)
    try:
        # --- the patient writes to their practice, with a PDF --------------------------
        patient = patient_context.new_page()
        _patient_logs_in(patient, demo_patient)
        patient.goto("/messages/")
        expect(patient.get_by_role("heading", level=1)).to_have_text("Your messages")
        expect(patient.get_by_text("Do not use messages for urgent problems")).to_be_visible()
        found["patient: messages"] = axe(patient)

        patient.get_by_role("button", name="Send a new message").click()
        patient.wait_for_url("**/messages/new/")
        expect(patient.get_by_text("Riverside Medical Practice")).to_be_visible()
        found["patient: new message"] = axe(patient)

        # a program renamed to look like a PDF is refused, with the words kept
        patient.get_by_label("Subject").fill(SUBJECT)
        patient.get_by_label("Your message").fill(BODY)
        patient.get_by_label("Attach a file (optional)").set_input_files(
            {
                "name": "letter.pdf",
                "mimeType": "application/pdf",
                "buffer": b"MZ\x90\x00" + b"\x00" * 200,
            }
        )
        patient.get_by_role("button", name="Send message").click()
        summary = patient.locator(".nhsuk-error-summary")
        expect(summary).to_contain_text("The selected file must be a PDF, PNG or JPEG")
        expect(patient.get_by_label("Subject")).to_have_value(SUBJECT)
        found["patient: refused file"] = axe(patient)
        assert not Thread.objects.exists()

        patient.get_by_label("Attach a file (optional)").set_input_files(
            {"name": "Discharge letter.pdf", "mimeType": "application/pdf", "buffer": _pdf()}
        )
        patient.get_by_role("button", name="Send message").click()
        patient.wait_for_url(re.compile(r"/messages/[0-9a-f-]{36}/$"))
        expect(patient.get_by_text("Your message was sent")).to_be_visible()
        expect(patient.get_by_role("heading", level=1)).to_have_text(SUBJECT)
        expect(patient.get_by_role("link", name="Discharge letter.pdf")).to_be_visible()
        found["patient: thread"] = axe(patient)
        thread = Thread.objects.get()
        assert Attachment.objects.filter(thread=thread).count() == 1

        # --- the clerk of the practice triages and answers ----------------------------
        staff = staff_context.new_page()
        virtual_authenticator(staff_context, staff)
        log_in_with_password(staff, f"clerk@{DEMO_DOMAIN}", DEMO_PASSWORD_CLINICIAN)
        staff.wait_for_url("**/account/two-factor/passkeys/add/**")
        staff.locator("#name").fill("Reception PC")
        staff.get_by_role("button", name="Create a passkey").click()
        staff.wait_for_url("**/account/two-factor/")
        staff.goto("/staff/messages/")
        expect(staff.get_by_role("heading", level=1)).to_have_text("Messages")
        expect(staff.locator("nav[aria-label='Message views']")).to_contain_text(
            "Awaiting reply (1)"
        )
        row = staff.locator("tbody tr").filter(has_text=SUBJECT)
        expect(row).to_contain_text("Unread")
        expect(row).to_contain_text("Nobody")
        found["staff: inbox"] = axe(staff)

        row.get_by_role("link", name=SUBJECT).click()
        staff.wait_for_url(f"**/staff/messages/{thread.id}/")
        expect(staff.locator(".hs-patient-banner")).to_contain_text(
            f"{demo_patient.nhs_number[:3]} {demo_patient.nhs_number[3:6]}"
        )
        expect(staff.get_by_text("Can the doctor look at it?")).to_be_visible()
        found["staff: thread"] = axe(staff)
        download = staff.request.get(
            staff.get_by_role("link", name="Discharge letter.pdf").get_attribute("href")
        )
        assert download.status == 200
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment")
        assert download.body() == _pdf()

        staff.get_by_label("Assigned to").select_option("me")
        staff.get_by_role("button", name="Assign").click()
        expect(staff.get_by_text("Assigned to you")).to_be_visible()
        staff.get_by_label("Your reply").fill(REPLY)
        staff.get_by_role("button", name="Send reply").click()
        expect(staff.get_by_text("Your reply was sent")).to_be_visible()
        found["staff: after reply"] = axe(staff)
        staff.goto("/staff/messages/?view=mine")
        expect(staff.locator("tbody tr").filter(has_text=SUBJECT)).to_contain_text(
            "Waiting for the patient"
        )

        # --- the patient reads the reply ----------------------------------------------
        patient.goto("/messages/")
        expect(patient.locator("tbody tr").filter(has_text=SUBJECT)).to_contain_text("New")
        patient.get_by_role("link", name=SUBJECT).click()
        expect(patient.get_by_text(REPLY)).to_be_visible()
        expect(patient.get_by_text("Riverside Medical Practice").first).to_be_visible()
        found["patient: reply"] = axe(patient)
    finally:
        patient_context.close()
        staff_context.close()

    serious = {name: _serious(v) for name, v in found.items()}
    assert not any(serious.values()), {k: describe(v) for k, v in serious.items() if v}
