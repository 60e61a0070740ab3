"""End-to-end: a clinician in a real browser logs in with a passkey, finds a patient by
NHS number and date of birth, asks permission, and sees the Summary Care Record with the
sections they may not see marked withheld; the patient's trail shows the view. axe-core
(WCAG 2.2 AA) on every page of the journey."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_identity_flow import (
    describe,
    log_in_with_password,
    virtual_authenticator,
)

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e


def test_clinician_finds_a_patient_asks_permission_and_views_the_record(
    context: Any, axe, demo_patient
):
    from healthspace.audit.selectors import access_history_for_patient
    from healthspace.ops.demo import DEMO_DOMAIN, DEMO_PASSWORD_CLINICIAN
    from healthspace.records.models import Patient

    patient = Patient.objects.get(nhs_number=demo_patient.nhs_number)
    page = context.new_page()
    virtual_authenticator(context, page)
    found: dict[str, list[dict[str, Any]]] = {}

    log_in_with_password(page, f"clinician@{DEMO_DOMAIN}", DEMO_PASSWORD_CLINICIAN)
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    page.locator("#name").fill("Ward laptop")
    page.get_by_role("button", name="Create a passkey").click()
    page.wait_for_url("**/account/two-factor/")  # staff: passkeys only, no recovery codes
    page.goto("/staff/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Find a patient")
    found["find"] = axe(page)

    # A wrong date of birth finds nobody, and says so accessibly.
    page.locator("#id_nhs_number").fill(demo_patient.nhs_number)
    page.locator("#birth_date-day").fill("1")
    page.locator("#birth_date-month").fill("1")
    page.locator("#birth_date-year").fill("1900")
    page.get_by_role("button", name="Find patient").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("No patient matches")
    found["find error"] = axe(page)

    born = patient.birth_date
    page.locator("#birth_date-day").fill(str(born.day))
    page.locator("#birth_date-month").fill(str(born.month))
    page.locator("#birth_date-year").fill(str(born.year))
    page.get_by_role("button", name="Find patient").click()
    page.wait_for_url(f"**/staff/patient/{patient.id}/")
    expect(page.locator(".hs-patient-banner")).to_contain_text(
        demo_patient.nhs_number[:3] + " " + demo_patient.nhs_number[3:6]
    )
    found["patient"] = axe(page)

    page.get_by_label("Yes, the patient gave permission").check()
    page.get_by_role("button", name="Record answer").click()
    page.wait_for_url(f"**/staff/patient/{patient.id}/scr/")
    expect(page.locator("#allergies")).to_be_visible()
    for allergy in demo_patient.allergies:
        expect(page.get_by_text(allergy).first).to_be_visible()
    # implied consent: additional information is withheld, and says so
    expect(page.locator("section[aria-labelledby=problems]")).to_contain_text("Withheld")
    found["scr"] = axe(page)

    newest = access_history_for_patient(patient_id=patient.id, limit=1)[0]
    assert newest.what == "Viewed your Summary Care Record"
    assert newest.why == "You gave permission"

    serious = {
        name: [v for v in violations if v["impact"] in ("serious", "critical")]
        for name, violations in found.items()
    }
    assert not any(serious.values()), {k: describe(v) for k, v in serious.items() if v}


def test_privacy_officer_reviews_an_emergency_access_and_closes_the_case(
    context: Any, axe, demo_patient
):
    from django.contrib.auth import get_user_model

    from healthspace.access.actors import Actor
    from healthspace.access.roles import Role
    from healthspace.cases.models import PrivacyCase
    from healthspace.ops.demo import DEMO_DOMAIN, DEMO_PASSWORD_CLINICIAN
    from healthspace.records.models import Patient
    from healthspace.staff.selectors import access_context_for
    from healthspace.staff.services import emergency_access_record

    patient = Patient.objects.get(nhs_number=demo_patient.nhs_number)
    a_and_e = get_user_model().objects.get(username=f"a-and-e@{DEMO_DOMAIN}")
    actor = Actor(
        "staff", f"user:{a_and_e.pk}", roles=frozenset({Role.CLINICIAN}), organisation="RXD01"
    )
    emergency_access_record(
        actor=actor,
        user_id=a_and_e.pk,
        session_key_hash="0" * 64,
        patient_id=patient.id,
        context=access_context_for(
            actor=actor, user_id=a_and_e.pk, session_key_hash="0" * 64, patient_id=patient.id
        ),
        explanation="Unconscious after a road traffic collision",
    )

    page = context.new_page()
    virtual_authenticator(context, page)
    found: dict[str, list[dict[str, Any]]] = {}
    log_in_with_password(page, f"privacy@{DEMO_DOMAIN}", DEMO_PASSWORD_CLINICIAN)
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    page.locator("#name").fill("Office laptop")
    page.get_by_role("button", name="Create a passkey").click()
    page.wait_for_url("**/account/two-factor/")
    page.goto("/staff/privacy/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts and open cases")
    found["queue"] = axe(page)

    page.get_by_role("link", name=re.compile(r"^Review case \d+$")).click()
    expect(page.get_by_text("Unconscious after a road traffic collision")).to_be_visible()
    found["case"] = axe(page)
    page.get_by_role("button", name="Close the case with this decision").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()
    found["case error"] = axe(page)
    page.get_by_label("Appropriate: no further action").check()
    page.locator("#id_note").fill("Checked with the ED: patient arrived unconscious.")
    page.get_by_role("button", name="Close the case with this decision").click()
    page.wait_for_load_state()
    assert PrivacyCase.objects.get().status == PrivacyCase.Status.CLOSED

    serious = {
        name: [v for v in violations if v["impact"] in ("serious", "critical")]
        for name, violations in found.items()
    }
    assert not any(serious.values()), {k: describe(v) for k, v in serious.items() if v}
