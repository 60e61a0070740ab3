"""End-to-end: second factors in a real browser (Chromium, Chrome DevTools' virtual
WebAuthn authenticator for passkeys, pyotp for the authenticator app).

A verified patient (the demo login, linked to a record) is sent to set up a second factor
on first login, and sees the Summary Care Record only after it; the next login needs the
password and then that factor. Passkey pages run under the real CSP, so the ceremony
script is proved to load from 'self' without a nonce.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e
RECORD_HEADING = "Your Summary Care Record"


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} " + "; ".join(str(n["target"]) for n in v["nodes"])
        for v in violations
    )


def submit_ok(page: Any, action) -> None:
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        action()
    assert posted.value.status < 400, f"POST {posted.value.url} answered {posted.value.status}"


def log_in_with_password(page: Any, email: str, password: str) -> None:
    page.goto("/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(password)
    submit_ok(page, page.get_by_role("button", name="Log in", exact=True).click)


def log_out(page: Any) -> None:
    submit_ok(page, page.get_by_role("button", name="Log out").click)
    page.wait_for_url(re.compile(r"/$"))


def virtual_authenticator(context: Any, page: Any) -> tuple[Any, str]:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def continue_past_recovery_codes(page: Any) -> list[str]:
    page.wait_for_url("**/account/two-factor/recovery-codes/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator("#recovery-codes code").all_inner_texts()
    page.get_by_role("button", name="I have saved my codes, continue").click()
    return codes


def test_a_patient_sets_up_a_passkey_and_logs_in_with_it(strict_context, demo_patient):
    page = strict_context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    cdp, authenticator = virtual_authenticator(strict_context, page)

    # First login: the password, then straight to choosing a second factor.
    log_in_with_password(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/account/two-factor/set-up/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second way to log in")
    page.goto("/record/")  # the record is not reachable yet
    page.wait_for_url("**/account/two-factor/set-up/**")

    page.get_by_role("button", name="Set up a passkey").click()
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    page.locator("#name").fill("Test laptop")
    page.get_by_role("button", name="Create a passkey").click()
    codes = continue_past_recovery_codes(page)
    assert len(codes) == 10
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)

    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["rpId"] == "localhost"

    # Next login: password, then the passkey.
    log_out(page)
    log_in_with_password(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/account/two-factor/verify/**")
    page.goto("/record/")  # the password alone does not open the record
    page.wait_for_url(re.compile(r"/login/\?next=/record/$"))
    log_in_with_password(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/account/two-factor/verify/**")
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)

    signed = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert signed["credentials"][0]["signCount"] >= 1
    # The page shows no "passkey not used" error, and the script ran under the real CSP.
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_a_patient_sets_up_an_authenticator_app_and_logs_in_with_it(page, axe, demo_patient):
    import pyotp

    found: dict[str, list] = {}
    log_in_with_password(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/account/two-factor/set-up/**")
    found["set-up"] = axe(page)
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url("**/account/two-factor/totp/**")
    found["totp"] = axe(page)
    expect(page.locator("figure svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)

    page.locator("#code").fill("000000" if totp.now() != "000000" else "111111")
    submit_ok(page, page.get_by_role("button", name="Turn on").click)
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    found["totp error"] = axe(page)

    page.locator("#code").fill(totp.now())
    page.locator("#name").fill("My phone")
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url("**/account/two-factor/recovery-codes/**")
    found["recovery codes"] = axe(page)
    continue_past_recovery_codes(page)
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)

    log_out(page)
    log_in_with_password(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/account/two-factor/verify/**")
    found["verify"] = axe(page)
    # The code used at set-up is spent; the next step's code is within tolerance.
    page.locator("#code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)

    page.goto("/account/two-factor/")
    found["manage"] = axe(page)
    expect(page.get_by_role("cell", name="My phone", exact=True)).to_be_visible()
    report = "\n".join(f"[{name}]\n{describe(v)}" for name, v in found.items() if v)
    assert not report, report


def test_staff_cannot_log_in_with_an_authenticator_app(page, demo_patient):
    import pyotp
    from django.contrib.auth import get_user_model

    from healthspace.accounts.factors.services import totp_demo_device
    from healthspace.ops.demo import DEMO_DOMAIN, DEMO_PASSWORD_CLINICIAN

    email = f"clinician@{DEMO_DOMAIN}"
    secret = pyotp.random_base32()
    totp_demo_device(get_user_model().objects.get(username=email), secret)

    log_in_with_password(page, email, DEMO_PASSWORD_CLINICIAN)
    # No code field is offered: staff are sent to register a passkey instead.
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a passkey")
    page.goto("/account/two-factor/verify/")
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    page.goto("/account/two-factor/totp/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff accounts use passkeys")
    expect(page.locator("#code")).to_have_count(0)
