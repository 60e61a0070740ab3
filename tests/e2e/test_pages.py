"""End-to-end checks of the patient pages in a real browser (see conftest.py for set-up)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from tests.e2e.conftest import describe

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e

RECORD_PNG = "/tmp/record.png"
SESSION_COOKIE = "__Host-hs-session"
CSRF_COOKIE = "__Host-hs-csrf"


def is_focused(page: Any, selector: str) -> bool:
    return page.evaluate(
        "(sel) => document.activeElement !== null && document.activeElement.matches(sel)",
        selector,
    )


def focused_description(page: Any) -> str:
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return e ? e.outerHTML.slice(0, 160) : 'nothing'; }"
    )


def tab_to(page: Any, selector: str, limit: int = 40) -> int:
    """Press Tab until ``selector`` has focus; return how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if is_focused(page, selector):
            return presses
    raise AssertionError(f"{selector} never got focus in {limit} Tab presses")


def submit(page: Any, action: Callable[[], None]) -> None:
    """Run ``action``, which submits a form; fail at once, with the reason, on a refused POST."""
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        action()
    response = posted.value
    origin = response.request.all_headers().get("origin")
    assert response.status < 400, (
        f"POST {response.url} answered {response.status} (Origin header sent: {origin!r}); "
        "a 403 with Origin 'null' means Django's CSRF check refused it: "
        "Referrer-Policy: no-referrer makes browsers send Origin: null on form posts"
    )


# This module's demo patient has an authenticator app with a known secret, so logging in
# is password then a code (a verified patient sees the record only after a second factor;
# setting one up is covered by test_identity_flow.py).
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def demo_patient(demo_patient):
    from django.contrib.auth import get_user_model

    from healthspace.accounts.factors.services import totp_demo_device

    totp_demo_device(get_user_model().objects.get(username=demo_patient.email), DEMO_TOTP_SECRET)
    return demo_patient


def pass_code_step(page: Any, *, keyboard: bool = False) -> None:
    page.wait_for_url("**/account/two-factor/verify/**")
    code = pyotp.TOTP(DEMO_TOTP_SECRET).now()
    if keyboard:
        tab_to(page, "#code")
        page.keyboard.type(code)
        submit(page, lambda: page.keyboard.press("Enter"))
    else:
        page.locator("#code").fill(code)
        submit(page, page.get_by_role("button", name="Continue").click)


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(password)
    submit(page, page.get_by_role("button", name="Log in", exact=True).click)
    if "/account/two-factor/verify/" in page.url:
        pass_code_step(page)


def test_keyboard_only_login_shows_the_record(page, demo_patient):
    assert demo_patient.allergies, "the demo patient should have an allergy to show"
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your health record online")

    tab_to(page, "main a[href='/login/']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/")

    tab_to(page, "#id_username")
    page.keyboard.type(demo_patient.email)
    page.keyboard.press("Tab")
    assert is_focused(page, "#id_password"), focused_description(page)
    page.keyboard.type(demo_patient.password)
    submit(page, lambda: page.keyboard.press("Enter"))
    pass_code_step(page, keyboard=True)

    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Summary Care Record")
    expect(page).to_have_title("Your Summary Care Record - HealthSpace - NHS")
    for name in ("Medications", "Allergies", "Adverse reactions"):
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()

    allergies = page.get_by_role("region", name="Allergies", exact=True)
    titles = allergies.locator("tbody tr td:first-child strong:not(.nhsuk-tag)").all_inner_texts()
    assert titles, "no allergy rows shown"
    assert set(titles) <= set(demo_patient.allergies), (titles, demo_patient.allergies)
    assert set(demo_patient.allergies) <= set(titles), (titles, demo_patient.allergies)

    medications = page.get_by_role("region", name="Medications", exact=True)
    shown = medications.locator("tbody tr td:first-child strong:not(.nhsuk-tag)").all_inner_texts()
    assert sorted(shown) == sorted(demo_patient.medications)

    page.screenshot(path=RECORD_PNG, full_page=True)


def test_wrong_password_shows_focused_error_summary(page, axe, demo_patient):
    log_in(page, demo_patient.email, "not-the-password")

    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Error: Log in"))
    assert SESSION_COOKIE not in {c["name"] for c in page.context.cookies()}
    violations = axe(page)
    assert not violations, describe(violations)

    # The summary's link takes the user to the field to correct.
    summary.get_by_role("link").click()
    expect(page.locator("#id_username")).to_be_focused()


def test_pages_have_no_wcag22_aa_violations(page, axe, demo_patient):
    found = {}
    page.goto("/")
    found["home"] = axe(page)
    page.goto("/login/")
    found["login"] = axe(page)
    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    found["record"] = axe(page)
    report = "\n".join(f"[{name}]\n{describe(v)}" for name, v in found.items() if v)
    assert not report, report


@pytest.mark.parametrize("path", ["/", "/login/"])
def test_skip_link_is_first_tab_stop_and_focuses_main(page, path):
    page.goto(path)
    page.keyboard.press("Tab")
    skip = page.locator(".nhsuk-skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # visible when focused
    expect(skip).to_have_text("Skip to main content")
    page.keyboard.press("Enter")
    expect(page.locator("main#maincontent")).to_be_focused()


def test_logout_ends_the_session(page, demo_patient):
    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    before = {c["name"]: c["value"] for c in page.context.cookies()}
    assert SESSION_COOKIE in before

    logout = page.get_by_role("button", name="Log out")
    logout.focus()
    submit(page, lambda: page.keyboard.press("Enter"))
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    after = {c["name"]: c["value"] for c in page.context.cookies()}
    assert after.get(SESSION_COOKIE) != before[SESSION_COOKIE]

    # Back to the record (no-store: the browser asks the server again) lands on the login page.
    page.go_back()
    page.wait_for_url(re.compile(r"/login/\?next=/record/$"))
    page.goto("/record/")
    page.wait_for_url(re.compile(r"/login/\?next=/record/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to HealthSpace")


def test_secure_host_cookies_are_accepted_on_localhost(page, live_server, demo_patient):
    assert live_server.url.startswith("http://localhost:")
    page.goto("/login/")
    csrf = next(c for c in page.context.cookies() if c["name"] == CSRF_COOKIE)
    assert csrf["secure"] and csrf["httpOnly"] and csrf["sameSite"] == "Strict"
    assert (csrf["path"], csrf["domain"]) == ("/", "localhost")

    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
    # __Host- cookies are host-only (no Domain attribute) with Path=/.
    assert (session["path"], session["domain"]) == ("/", "localhost")
    assert session["expires"] == -1  # a browser-session cookie
    # The cookie is sent back: the record page is reachable again without logging in.
    page.goto("/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Summary Care Record")


CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def test_pages_work_under_the_real_csp(strict_context, live_server, demo_patient):
    page = strict_context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"console: {message.text}")

    def on_response(response: Any) -> None:
        if response.url.startswith(live_server.url) and response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("response", on_response)
    page.on(
        "requestfailed",
        lambda r: (
            problems.append(f"failed: {r.url} {r.failure}")
            if r.url.startswith(live_server.url)
            else None
        ),
    )
    page.add_init_script(CSP_WATCH)

    def no_violations() -> None:
        found = page.evaluate("window.__cspViolations")
        assert not found, "CSP violations on " + page.url + ":\n" + "\n".join(found)

    page.goto("/login/")
    body_class = page.locator("body").get_attribute("class") or ""
    assert {"js-enabled", "nhsuk-frontend-supported"} <= set(body_class.split()), body_class
    # The stylesheet applied (served from 'self').
    expect(page.locator("header.nhsuk-header")).to_have_css("background-color", "rgb(0, 94, 184)")
    # NHS.UK JS initialised the password input: its Show button appears and works.
    toggle = page.get_by_role("button", name=re.compile("^Show"))
    expect(toggle).to_be_visible()
    toggle.click()
    expect(page.locator("#id_password")).to_have_attribute("type", "text")
    no_violations()

    # Moving focus to the error summary is done by NHS.UK JS too.
    log_in(page, demo_patient.email, "not-the-password")
    expect(page.locator(".nhsuk-error-summary")).to_be_focused()
    no_violations()

    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Summary Care Record")
    no_violations()

    assert not problems, "\n".join(problems)
