"""A patient connects an app in a real browser: the app's request waits across login and
the second factor, the consent screen passes axe (WCAG 2.2 AA), and under the real CSP the
approval redirects back to the app (form-action must allow it); the patient then sees the
app on "Apps connected to your record" and disconnects it."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.e2e.test_pages import DEMO_TOTP_SECRET, describe, pass_code_step

try:
    from playwright.sync_api import expect
except ImportError:
    expect = None

pytestmark = pytest.mark.e2e
APP = "https://app.example.test/callback"


@pytest.fixture
def demo_patient(demo_patient):
    from django.contrib.auth import get_user_model

    from healthspace.accounts.factors.services import totp_demo_device

    totp_demo_device(get_user_model().objects.get(username=demo_patient.email), DEMO_TOTP_SECRET)
    return demo_patient


def _authorize_url(client_id: str, settings) -> str:
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return "/oauth/authorize/?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": APP,
            "scope": "launch/patient openid fhirUser patient/*.rs offline_access",
            "state": "s-1",
            "aud": settings.HEALTHSPACE_FHIR_BASE,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )


def _log_in_from(page, demo_patient) -> None:
    page.wait_for_url("**/login/**")
    page.locator("#id_username").fill(demo_patient.email)
    page.locator("#id_password").fill(demo_patient.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    pass_code_step(page)


def test_connecting_an_app_under_the_real_csp(strict_context, live_server, demo_patient, settings):
    from healthspace.smart import testing as smart_testing

    app = smart_testing.patient_app("Medicines Tracker")
    page = strict_context.new_page()
    arrived = []
    page.route(
        f"{APP}**",
        lambda route: (arrived.append(route.request.url), route.fulfill(status=200, body="app")),
    )
    page.goto(_authorize_url(app.application.client_id, settings))
    _log_in_from(page, demo_patient)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Do you want to connect Medicines Tracker to your record?"
    )
    page.get_by_role("button", name="Connect the app").click()
    page.wait_for_url(f"{APP}**")
    query = parse_qs(urlsplit(arrived[-1]).query)
    assert query["state"] == ["s-1"] and query["code"]
    # the app exchanges the code (server to server)
    from django.test import Client

    token = Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": APP,
            "client_id": app.application.client_id,
            "code_verifier": "v" * 64,
        },
    )
    assert token.status_code == 200, token.content
    page.goto("/account/apps/")
    expect(page.get_by_role("heading", name="Medicines Tracker")).to_be_visible()
    page.get_by_role("button", name="Disconnect Medicines Tracker").click()
    expect(page.get_by_text("The app is disconnected.")).to_be_visible()


def test_the_consent_screen_and_connected_apps_pass_axe(page, axe, demo_patient, settings):
    from healthspace.smart import testing as smart_testing

    app = smart_testing.patient_app("Medicines Tracker")
    page.goto(_authorize_url(app.application.client_id, settings))
    _log_in_from(page, demo_patient)
    found = {"consent": axe(page)}
    page.goto("/account/apps/")
    found["apps"] = axe(page)
    report = "\n".join(f"[{name}]\n{describe(v)}" for name, v in found.items() if v)
    assert not report, report
