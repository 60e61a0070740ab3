"""End to end, as a new patient would: register online, confirm the email, set up a
passkey (Chromium's virtual authenticator), enter the linkage details from the practice,
and see the Summary Care Record; then log in again with password and passkey."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_identity_flow import (
    RECORD_HEADING,
    continue_past_recovery_codes,
    log_in_with_password,
    log_out,
    submit_ok,
    virtual_authenticator,
)

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e
EMAIL = "new.patient@example.org"
PASSWORD = "plum orchard lantern ribbon 31"


def _unlinked_patient_details() -> dict[str, str]:
    """What the practice knows and the patient knows: issue linkage details for a patient
    with no account, and read their surname and date of birth as the patient would know them."""
    from healthspace.access.actors import Actor
    from healthspace.accounts.linkage.services import linkage_key_issue_for_nhs_number
    from healthspace.records.models import Patient
    from healthspace.vault.services import cipher_for

    patient = Patient.objects.filter(account_link__isnull=True).order_by("nhs_number").first()
    issued = linkage_key_issue_for_nhs_number(
        actor=Actor.system("linkage"), nhs_number=patient.nhs_number
    )
    resource = cipher_for(patient_id=patient.id).open_json(patient.resource, purpose="patient")
    year, month, day = resource["birthDate"].split("-")
    return {
        "account_id": issued.account_id,
        "linkage_key": issued.linkage_key,
        "practice_ods": issued.practice_ods,
        "surname": resource["name"][0]["family"],
        "day": str(int(day)),
        "month": str(int(month)),
        "year": year,
    }


def _confirmation_path() -> str:
    from django.core import mail

    body = mail.outbox[-1].body
    return re.search(r"https?://[^/\s]+(/account/confirm/\S+/)", body).group(1)


def test_register_confirm_set_up_passkey_verify_and_see_the_record(strict_context, demo_patient):
    page = strict_context.new_page()
    cdp, authenticator = virtual_authenticator(strict_context, page)

    # 1. Register: an email address and a password, nothing else.
    page.goto("/login/")
    page.get_by_role("link", name="Create an account").click()
    page.locator("#id_email").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    submit_ok(page, page.get_by_role("button", name="Create account").click)
    expect(page.get_by_role("heading", level=1)).to_contain_text("email")

    # 2. Confirm the address from the emailed link (a button, so link scanners don't confirm).
    page.goto(_confirmation_path())
    submit_ok(page, page.get_by_role("button", name="Confirm email address").click)

    # 3. Log in: a basic account has no record yet.
    log_in_with_password(page, EMAIL, PASSWORD)
    page.goto("/account/verify/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second way to log in first")

    # 4. A passkey first, then the linkage details.
    page.get_by_role("button", name="Set up a second factor").click()
    page.wait_for_url("**/account/two-factor/set-up/**")
    page.get_by_role("button", name="Set up a passkey").click()
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    page.locator("#name").fill("My laptop")
    page.get_by_role("button", name="Create a passkey").click()
    assert len(continue_past_recovery_codes(page)) == 10

    details = _unlinked_patient_details()
    page.goto("/account/verify/")
    page.locator("#id_account_id").fill(details["account_id"])
    page.locator("#id_linkage_key").fill(details["linkage_key"].lower())  # as people type it
    page.locator("#id_practice_ods").fill(details["practice_ods"])
    page.locator("#birth_date-day").fill(details["day"])
    page.locator("#birth_date-month").fill(details["month"])
    page.locator("#birth_date-year").fill(details["year"])
    page.locator("#id_surname").fill(details["surname"].upper())
    submit_ok(page, page.get_by_role("button", name="Link my account").click)

    # 5. The record.
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)

    # 6. Next time: password, then the passkey.
    log_out(page)
    log_in_with_password(page, EMAIL, PASSWORD)
    page.wait_for_url("**/account/two-factor/verify/**")
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)
    used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert used["credentials"][0]["signCount"] >= 1
