"""End-to-end checks of the patient pages in a real browser (see conftest.py for set-up)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

RECORD_PNG = "/tmp/record.png"
SESSION_COOKIE = "__Host-hs-session"
CSRF_COOKIE = "__Host-hs-csrf"


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        lines.extend(f"    {n['target']}: {n['failureSummary']}" for n in v["nodes"][:5])
    return "\n".join(lines)


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


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


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
    page.keyboard.press("Enter")

    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Summary Care Record")
    expect(page).to_have_title("Your Summary Care Record - HealthSpace - NHS")
    for name in ("Medications", "Allergies", "Adverse reactions"):
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()

    allergies = page.get_by_role("region", name="Allergies", exact=True)
    titles = allergies.locator("tbody tr td:first-child strong").all_inner_texts()
    assert titles, "no allergy rows shown"
    assert set(titles) <= set(demo_patient.allergies), (titles, demo_patient.allergies)
    assert set(demo_patient.allergies) <= set(titles), (titles, demo_patient.allergies)

    medications = page.get_by_role("region", name="Medications", exact=True)
    shown = medications.locator("tbody tr td:first-child strong").all_inner_texts()
    assert sorted(shown) == sorted(demo_patient.medications)

    page.screenshot(path=RECORD_PNG, full_page=True)


def test_wrong_password_shows_focused_error_summary(page, axe, demo_patient):
    log_in(page, demo_patient.email, "not-the-password")

    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Error: Log in"))
    assert page.context.cookies() and not any(
        c["name"] == SESSION_COOKIE for c in page.context.cookies()
    )
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
    page.keyboard.press("Enter")
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


def test_pages_work_under_the_real_csp(strict_context, demo_patient):
    page = strict_context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.add_init_script(CSP_WATCH)

    page.goto("/login/")
    body_class = page.locator("body").get_attribute("class") or ""
    assert {"js-enabled", "nhsuk-frontend-supported"} <= set(body_class.split()), body_class
    # The stylesheet applied (served from 'self').
    assert "Frutiger" in page.evaluate("getComputedStyle(document.body).fontFamily")
    # NHS.UK JS initialised the password input: its Show button appears and works.
    toggle = page.get_by_role("button", name=re.compile("^Show"))
    expect(toggle).to_be_visible()
    toggle.click()
    expect(page.locator("#id_password")).to_have_attribute("type", "text")
    assert page.evaluate("window.__cspViolations") == []

    # Error summary focus is done by NHS.UK JS too.
    log_in(page, demo_patient.email, "not-the-password")
    expect(page.locator(".nhsuk-error-summary")).to_be_focused()
    assert page.evaluate("window.__cspViolations") == []

    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Summary Care Record")
    assert page.evaluate("window.__cspViolations") == []

    assert not problems, "\n".join(problems)
