"""End-to-end: a patient adds an access need and reports a wrong allergy; a clinician of
their practice opens the request and amends the allergy; the patient sees the outcome
(and is emailed that there is one, without what it is). axe-core (WCAG 2.2 AA) on every
page of the journey: no serious or critical violation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_identity_flow import describe, log_in_with_password, virtual_authenticator
from tests.e2e.test_pages import DEMO_TOTP_SECRET, pass_code_step

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_patient(demo_patient):
    from django.contrib.auth import get_user_model

    from healthspace.accounts.factors.services import totp_demo_device

    totp_demo_device(get_user_model().objects.get(username=demo_patient.email), DEMO_TOTP_SECRET)
    return demo_patient


def _second_context(browser: Any, live_server: Any) -> Any:
    context = browser.new_context(
        base_url=live_server.url,
        bypass_csp=True,  # for axe-core, as the ``context`` fixture
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
        timezone_id="Europe/London",
    )
    context.set_default_timeout(10_000)
    return context


def test_patient_reports_a_wrong_allergy_and_the_practice_amends_it(
    context: Any, browser: Any, live_server: Any, axe, demo_patient
):
    from django.core import mail

    from healthspace.corrections.models import CorrectionRequest
    from healthspace.notify.testing import run_due_tasks
    from healthspace.ops.demo import DEMO_DOMAIN, DEMO_PASSWORD_CLINICIAN

    assert demo_patient.allergies, "the demo patient should have an allergy to report"
    allergy = demo_patient.allergies[0]
    found: dict[str, list[dict[str, Any]]] = {}

    # --- the patient adds an access need -------------------------------------------------
    patient = context.new_page()
    log_in_with_password(patient, demo_patient.email, demo_patient.password)
    pass_code_step(patient)
    patient.wait_for_url("**/record/")
    patient.get_by_role("link", name="What you have added to your record").click()
    expect(patient.get_by_role("heading", level=1)).to_have_text(
        "What you have added to your record"
    )
    expect(patient.get_by_text("Staff will not usually see what you add here")).to_be_visible()
    found["additions"] = axe(patient)
    patient.get_by_role("link", name="Add an access need").click()
    patient.get_by_role("button", name="Save").click()
    expect(patient.locator(".nhsuk-error-summary")).to_contain_text("Choose an access need")
    found["addition error"] = axe(patient)
    patient.get_by_label("I use a wheelchair").check()
    patient.locator("#id_details").fill("I need a wide door and a ramp")
    patient.get_by_role("button", name="Save").click()
    patient.wait_for_url("**/record/additions/")
    expect(patient.get_by_text("I need a wide door and a ramp")).to_be_visible()

    patient.goto("/record/")
    needs = patient.locator("section[aria-labelledby=access_needs]")
    expect(needs).to_contain_text("Wheelchair user: I need a wide door and a ramp")
    expect(needs.locator(".hs-patient-recorded")).to_have_text("Added by you")
    found["record"] = axe(patient)

    # --- ... and reports a wrong allergy ------------------------------------------------
    patient.get_by_role("link", name=f"This looks wrong ({allergy})").click()
    expect(patient.get_by_role("heading", level=1)).to_have_text("Tell us what looks wrong")
    expect(patient.get_by_role("heading", name="What happens next")).to_be_visible()
    found["report"] = axe(patient)
    patient.get_by_role("button", name=re.compile(r"^Send to ")).click()
    expect(patient.locator(".nhsuk-error-summary")).to_contain_text("Tell us what is wrong")
    found["report error"] = axe(patient)
    patient.locator("#id_wrong").fill("It was amoxicillin, not this.")
    patient.locator("#id_should_say").fill("Allergy to amoxicillin")
    patient.get_by_role("button", name="Send to Riverside Medical Practice").click()
    expect(patient.locator(".nhsuk-panel")).to_contain_text("Request sent")
    expect(patient.get_by_text("Sent to your GP practice")).to_be_visible()
    found["sent"] = axe(patient)
    request = CorrectionRequest.objects.get()

    # --- a clinician of the practice amends it ------------------------------------------
    staff_context = _second_context(browser, live_server)
    clinician = staff_context.new_page()
    virtual_authenticator(staff_context, clinician)
    log_in_with_password(clinician, f"clinician@{DEMO_DOMAIN}", DEMO_PASSWORD_CLINICIAN)
    clinician.wait_for_url("**/account/two-factor/passkeys/add/**")
    clinician.locator("#name").fill("Surgery desktop")
    clinician.get_by_role("button", name="Create a passkey").click()
    clinician.wait_for_url("**/account/two-factor/")
    clinician.goto("/staff/corrections/")
    expect(clinician.get_by_role("heading", level=1)).to_have_text("Correction requests")
    found["queue"] = axe(clinician)
    clinician.get_by_role("link", name=re.compile(r"^Review request ")).click()
    expect(clinician.get_by_text("It was amoxicillin, not this.")).to_be_visible()
    found["request"] = axe(clinician)
    clinician.get_by_role("button", name="Send your answer").click()
    expect(clinician.locator(".nhsuk-error-summary")).to_contain_text("Choose your answer")
    found["request error"] = axe(clinician)
    clinician.get_by_role("radio", name="Correct the description").check()
    clinician.locator("#id_description").fill("Allergy to amoxicillin")
    clinician.locator("#id_explanation").fill(
        "Checked your GP record and the hospital letter: it is amoxicillin."
    )
    mail.outbox.clear()
    clinician.get_by_role("button", name="Send your answer").click()
    expect(clinician.get_by_text("The item was amended.")).to_be_visible()
    found["answered"] = axe(clinician)
    staff_context.close()
    request.refresh_from_db()
    assert request.status == "amended"

    # --- the patient is told, and sees the outcome ---------------------------------------
    run_due_tasks()
    (message,) = mail.outbox
    assert "amoxicillin" not in message.body.lower() and allergy.lower() not in message.body.lower()
    patient.goto("/record/corrections/")
    expect(patient.get_by_text("Corrected", exact=True)).to_be_visible()
    found["requests"] = axe(patient)
    patient.get_by_role("link", name=allergy).click()
    expect(patient.get_by_text("Your record has been corrected.")).to_be_visible()
    expect(patient.get_by_text("it is amoxicillin.", exact=False)).to_be_visible()
    found["answer"] = axe(patient)
    patient.goto("/record/")
    allergies = patient.locator("section[aria-labelledby=allergies]")
    expect(allergies).to_contain_text("Allergy to amoxicillin")
    expect(allergies.locator(".hs-amended")).to_contain_text("Corrected")
    # the trail says who did what, in words
    patient.goto("/record/access/who-has-looked/")
    expect(
        patient.get_by_role(
            "cell", name="Corrected an item in your Summary Care Record", exact=True
        )
    ).to_be_visible()

    serious = {
        name: [v for v in violations if v["impact"] in ("serious", "critical")]
        for name, violations in found.items()
    }
    assert not any(serious.values()), {k: describe(v) for k, v in serious.items() if v}
