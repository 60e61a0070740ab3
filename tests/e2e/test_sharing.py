"""End-to-end: a patient makes a share code and sees its QR code; a pharmacist, in
another browser with the real CSP, types it with their name and organisation and sees
the summary; the patient sees them in "Who has looked". axe-core on every page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_pages import demo_patient, describe, log_in, submit  # noqa: F401 (fixture)

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e
SERIOUS = ("serious", "critical")


def test_a_share_code_from_the_patient_to_a_pharmacist(
    page: Any,
    strict_context: Any,
    axe,
    demo_patient,  # noqa: F811
):
    found: dict[str, list[dict[str, Any]]] = {}
    log_in(page, demo_patient.email, demo_patient.password)
    page.wait_for_url("**/record/")
    page.get_by_role("link", name="Sharing", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sharing your record")
    found["sharing"] = axe(page)
    page.get_by_role("link", name="Make a share code").click()
    found["code form"] = axe(page)
    page.get_by_label("Pharmacist").check()
    page.get_by_label("30 minutes").check()
    submit(page, page.get_by_role("button", name="Make the code").click)
    code = page.locator("#share-code").inner_text().strip()
    assert len(code) == 11 and code[5] == "-"
    qr = page.get_by_role("img", name=f"QR code for the share code {code}")
    expect(qr).to_be_visible()
    # visible is its box; the picture itself may still be decoding: wait until it is, and
    # fail (timeout) if it never is, as a broken image stays complete with no width
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=qr.element_handle(), timeout=10_000
    )
    found["code made"] = axe(page)
    page.goto("/record/sharing/settings/")
    found["settings"] = axe(page)

    pharmacist = strict_context.new_page()  # another browser, the real CSP
    pharmacist.goto("/share/")
    pharmacist.get_by_label("Share code").fill(code.lower().replace("-", " "))
    pharmacist.get_by_label("Your full name").fill("Priya Patel")
    pharmacist.get_by_label("Your organisation").fill("Riverside Pharmacy")
    submit(pharmacist, pharmacist.get_by_role("button", name="View the record").click)
    pharmacist.wait_for_url("**/share/summary/")
    expect(pharmacist.locator(".nhsuk-warning-callout")).to_contain_text("as Priya Patel")
    for allergy in demo_patient.allergies[:1]:
        expect(pharmacist.locator("main")).to_contain_text(allergy)

    page.goto("/record/access/who-has-looked/")
    expect(page.locator("table")).to_contain_text("Priya Patel")
    expect(page.locator("table")).to_contain_text("Using a share code you made")
    found["who has looked"] = axe(page)
    serious = {k: [v for v in vs if v["impact"] in SERIOUS] for k, vs in found.items()}
    assert not any(serious.values()), {k: describe(v) for k, v in serious.items() if v}
