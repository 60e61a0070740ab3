"""Three whole user stories in headless Chromium, under the real CSP, each one continuous:

1. a patient registers online, sets up a passkey, links their record with the linkage
   details from their practice, logs in again with the passkey, reads their Summary Care
   Record and downloads their data (FHIR and PDF, prepared by the background worker);
2. a clinician outside the patient's care team logs in with a passkey, finds the patient,
   says how they are involved, records the patient's permission and reads the record; the
   patient then sees that view in "Who has looked at your record";
3. a patient shares two sections with a carer's account; the carer, emailed by the
   worker, follows the link, accepts and sees only those, under the banner; the patient
   stops sharing and the carer's next request is refused (and shows in the patient's
   trail).

The first story's order is the service's: a second factor comes before linking a record.

Every page each story loads is checked with axe-core (WCAG 2.2 AA): no serious or
critical violation, and no page left unchecked (``conftest.Journey``). Each check keeps a
full-page screenshot under ``$HEALTHSPACE_ARTIFACTS_DIR/screenshots/<journey>/``
(build/ci-artifacts by default; .ci/run prints where). See docs/testing.md.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pyotp
import pytest

from tests.e2e.test_identity_flow import RECORD_HEADING, submit_ok, virtual_authenticator
from tests.e2e.test_pages import DEMO_TOTP_SECRET, demo_patient  # noqa: F401 (fixture)
from tests.e2e.test_registration_to_record import EMAIL as NEW_PATIENT_EMAIL
from tests.e2e.test_registration_to_record import PASSWORD as NEW_PATIENT_PASSWORD
from tests.e2e.test_registration_to_record import _confirmation_path

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.py skips these tests (fails them in CI) without Playwright
    expect = None

pytestmark = pytest.mark.e2e

CARER_EMAIL = "carer.account@example.org"
CARER_PASSWORD = "harbour violet compass maple 58"


# --- steps shared by the journeys (each checks the page it lands on) ------------------


def password_step(journey: Any, page: Any, email: str, password: str, name: str) -> None:
    """The login page, checked, then the password."""
    page.goto("/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to HealthSpace")
    journey.check(page, name)
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(password)
    submit_ok(page, page.get_by_role("button", name="Log in", exact=True).click)


def log_in_with_app(journey: Any, page: Any, email: str, password: str) -> None:
    """A verified patient with the demo authenticator app: password, then a code."""
    password_step(journey, page, email, password, "log in")
    page.wait_for_url("**/account/two-factor/verify/**")
    journey.check(page, "second factor")
    page.locator("#code").fill(pyotp.TOTP(DEMO_TOTP_SECRET).now())
    submit_ok(page, page.get_by_role("button", name="Continue").click)
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)
    journey.check(page, "record")


def nav(page: Any, name: str) -> None:
    """Follow a link of the header's navigation, as a person would."""
    page.locator("header").get_by_role("link", name=name, exact=True).first.click()


def run_worker() -> None:
    """What `healthspace worker` does between the patient's requests."""
    from healthspace.notify.testing import run_due_tasks

    run_due_tasks()


def download_ready(journey: Any, page: Any, fmt: str, title: str) -> tuple[bytes, str]:
    """From "Download your data": ask for ``fmt``, let the worker prepare it, download it."""
    page.get_by_label(title).check()
    submit_ok(page, page.get_by_role("button", name="Prepare my download").click)
    page.wait_for_url(re.compile(r"/account/your-data/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_role("status")).to_contain_text("0% done")
    journey.check(page, f"{fmt} queued")

    run_worker()
    page.get_by_role("link", name="Check again").click()
    page.wait_for_load_state()
    expect(page.get_by_text("Your download is ready.")).to_be_visible()
    journey.check(page, f"{fmt} ready")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the file").click()
    with open(download.value.path(), "rb") as handle:
        return handle.read(), download.value.suggested_filename


# --- 1. the patient --------------------------------------------------------------------


def test_patient_registers_verifies_sets_up_a_passkey_views_and_exports(
    axe_strict_contexts,
    journey,
    demo_patient,  # noqa: F811
):
    from django.core import mail
    from django.core.management import call_command
    from fhir.resources.R4B.bundle import Bundle
    from pypdf import PdfReader

    from healthspace.records.models import Patient
    from healthspace.vault.services import cipher_for

    j = journey("1-patient")
    context = axe_strict_contexts()
    page = j.watch(context.new_page(), "patient")
    cdp, authenticator = virtual_authenticator(context, page)

    # Register: an email address and a password.
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your health record online")
    j.check(page, "home")
    page.locator("main a[href='/login/']").click()
    page.wait_for_url("**/login/")
    j.check(page, "log in")
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url("**/register/**")
    j.check(page, "create an account")
    page.locator("#id_email").fill(NEW_PATIENT_EMAIL)
    page.locator("#id_password").fill(NEW_PATIENT_PASSWORD)
    mail.outbox.clear()
    submit_ok(page, page.get_by_role("button", name="Create account").click)
    expect(page.get_by_role("heading", level=1)).to_contain_text("email")
    j.check(page, "check your email")

    # Confirm the address from the emailed link.
    page.goto(_confirmation_path())
    j.check(page, "confirm email")
    submit_ok(page, page.get_by_role("button", name="Confirm email address").click)
    page.wait_for_load_state()
    j.check(page, "email confirmed")

    password_step(j, page, NEW_PATIENT_EMAIL, NEW_PATIENT_PASSWORD, "first log in")
    page.wait_for_load_state()
    j.check(page, "logged in, basic account")

    # Linking the record needs a second way to log in first: a passkey.
    page.get_by_role("link", name="enter the linkage details from your GP practice").click()
    page.wait_for_url("**/account/verify/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second way to log in first")
    j.check(page, "verify needs a second factor")
    page.get_by_role("button", name="Set up a second factor").click()
    page.wait_for_url("**/account/two-factor/set-up/**")
    j.check(page, "choose a second factor")
    page.get_by_role("button", name="Set up a passkey").click()
    page.wait_for_url("**/account/two-factor/passkeys/add/**")
    j.check(page, "add a passkey")
    page.locator("#name").fill("My laptop")
    page.get_by_role("button", name="Create a passkey").click()
    page.wait_for_url("**/account/two-factor/recovery-codes/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    assert page.locator("#recovery-codes code").count() == 10
    j.check(page, "recovery codes")
    page.get_by_role("button", name="I have saved my codes, continue").click()
    page.wait_for_load_state()
    j.check(page, "after recovery codes")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1

    # The practice issues linkage details (the operator's command prints them once).
    patient = Patient.objects.filter(account_link__isnull=True).order_by("nhs_number").first()
    printed = io.StringIO()
    call_command("linkage-key", patient.nhs_number, stdout=printed)
    details = dict(
        re.findall(
            r"^\s+(Account ID|Linkage key|Practice ODS code):\s+(\S+)$",
            printed.getvalue(),
            re.MULTILINE,
        )
    )
    resource = cipher_for(patient_id=patient.id).open_json(patient.resource, purpose="patient")
    surname = resource["name"][0]["family"]
    born = patient.birth_date

    page.get_by_role("link", name="enter the linkage details from your GP practice").click()
    page.wait_for_url("**/account/verify/")
    j.check(page, "link your record")
    page.locator("#id_account_id").fill(details["Account ID"])
    page.locator("#id_linkage_key").fill(details["Linkage key"].lower())  # as people type it
    page.locator("#id_practice_ods").fill(details["Practice ODS code"])
    page.locator("#birth_date-day").fill(str(born.day))
    page.locator("#birth_date-month").fill(str(born.month))
    page.locator("#birth_date-year").fill(str(born.year))
    page.locator("#id_surname").fill(surname.upper())
    submit_ok(page, page.get_by_role("button", name="Link my account").click)
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)
    j.check(page, "record after linking")

    # Log out; log in again with the password and the passkey.
    submit_ok(page, page.get_by_role("button", name="Log out").click)
    page.wait_for_url(re.compile(r"/$"))
    j.check(page, "logged out")
    password_step(j, page, NEW_PATIENT_EMAIL, NEW_PATIENT_PASSWORD, "log in again")
    page.wait_for_url("**/account/two-factor/verify/**")
    j.check(page, "passkey step")
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url("**/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text(RECORD_HEADING)
    banner = page.locator("main")
    expect(banner).to_contain_text(patient.nhs_number[:3] + " " + patient.nhs_number[3:6])
    j.check(page, "record")
    used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert used["credentials"][0]["signCount"] >= 1

    # Download their data: the whole record as FHIR, then the printout as a PDF.
    nav(page, "Your account")
    page.wait_for_url("**/account/")
    j.check(page, "your account")
    page.get_by_role("link", name="Download your data").first.click()
    page.wait_for_url("**/account/your-data/")
    j.check(page, "download your data")

    body, filename = download_ready(
        j, page, "fhir", "Everything, for another health app or service (FHIR R4)"
    )
    bundle = json.loads(body)
    Bundle.model_validate(bundle)  # a valid FHIR R4 Bundle, as its schema says
    assert bundle["type"] == "collection"
    exported = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert any(i["value"] == patient.nhs_number for i in exported["identifier"])
    assert re.fullmatch(r"healthspace-record-\d{4}-\d{2}-\d{2}\.json", filename)

    page.get_by_role("link", name="Back to download your data").click()
    page.wait_for_url("**/account/your-data/")
    expect(page.get_by_role("heading", name="Your downloads")).to_be_visible()
    j.check(page, "download your data again")
    body, filename = download_ready(j, page, "pdf", "A printout of your Summary Care Record (PDF)")
    assert body.startswith(b"%PDF-")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    spaced = f"{patient.nhs_number[:3]} {patient.nhs_number[3:6]} {patient.nhs_number[6:]}"
    assert spaced in text or patient.nhs_number in text, text[:400]
    assert re.fullmatch(r"healthspace-scr-\d{4}-\d{2}-\d{2}\.pdf", filename)

    j.finish()


# --- 2. the clinician, then the patient --------------------------------------------------


def test_clinician_finds_the_patient_gets_permission_views_and_the_patient_sees_it(
    axe_strict_contexts,
    journey,
    demo_patient,  # noqa: F811
):
    from healthspace.ops.demo import DEMO_DOMAIN, DEMO_PASSWORD_CLINICIAN
    from healthspace.records.models import Patient

    patient = Patient.objects.get(nhs_number=demo_patient.nhs_number)
    j = journey("2-clinician")

    # An emergency department clinician: outside the patient's care team (their practice).
    staff_context = axe_strict_contexts()
    clinician = j.watch(staff_context.new_page(), "clinician")
    virtual_authenticator(staff_context, clinician)
    password_step(j, clinician, f"a-and-e@{DEMO_DOMAIN}", DEMO_PASSWORD_CLINICIAN, "staff log in")
    clinician.wait_for_url("**/account/two-factor/passkeys/add/**")  # staff: passkeys only
    j.check(clinician, "staff passkey")
    clinician.locator("#name").fill("Ward laptop")
    clinician.get_by_role("button", name="Create a passkey").click()
    clinician.wait_for_url("**/account/two-factor/")
    j.check(clinician, "staff second factors")

    # The account pages show the patients' navigation even to staff, so the staff start
    # page is typed (bookmarked), as test_clinician_flow.py does.
    clinician.goto("/staff/")
    expect(clinician.get_by_role("heading", level=1)).to_have_text("Find a patient")
    j.check(clinician, "find a patient")
    clinician.locator("#id_nhs_number").fill(demo_patient.nhs_number)
    born = patient.birth_date
    clinician.locator("#birth_date-day").fill(str(born.day))
    clinician.locator("#birth_date-month").fill(str(born.month))
    clinician.locator("#birth_date-year").fill(str(born.year))
    submit_ok(clinician, clinician.get_by_role("button", name="Find patient").click)
    clinician.wait_for_url(f"**/staff/patient/{patient.id}/")
    expect(clinician.locator(".hs-patient-banner")).to_contain_text(
        demo_patient.nhs_number[:3] + " " + demo_patient.nhs_number[3:6]
    )
    expect(
        clinician.get_by_role("heading", name="You are not part of this patient's care team")
    ).to_be_visible()
    j.check(clinician, "patient, no relationship")

    # A legitimate relationship, said and recorded; then the patient's permission.
    clinician.get_by_role("link", name="Say how you are involved in this patient's care").click()
    clinician.wait_for_url(f"**/staff/patient/{patient.id}/relationship/**")
    j.check(clinician, "relationship")
    clinician.get_by_label("Treating the patient in urgent or emergency care").check()
    submit_ok(clinician, clinician.get_by_role("button", name="Continue").click)
    clinician.wait_for_url(f"**/staff/patient/{patient.id}/")
    expect(
        clinician.get_by_text("You said you are involved in this patient's care.")
    ).to_be_visible()
    j.check(clinician, "patient, ask permission")
    clinician.get_by_label("Yes, the patient gave permission").check()
    submit_ok(clinician, clinician.get_by_role("button", name="Record answer").click)
    clinician.wait_for_url(f"**/staff/patient/{patient.id}/scr/")
    for allergy in demo_patient.allergies:
        expect(clinician.locator("#allergies").locator("..")).to_contain_text(allergy)
    # Their role has no additional-information activity: withheld, and it says so.
    expect(clinician.locator("section[aria-labelledby=problems]")).to_contain_text("Withheld")
    j.check(clinician, "summary care record")

    # The patient, in their own browser, sees who looked, where from and why.
    own = j.watch(axe_strict_contexts().new_page(), "patient")
    log_in_with_app(j, own, demo_patient.email, demo_patient.password)
    nav(own, "Who has looked at it")
    own.wait_for_url("**/record/access/who-has-looked/")
    rows = own.locator("table tbody tr")
    view = rows.filter(has_text="Viewed your Summary Care Record").filter(
        has_text="Riverside Hospital Emergency Department"
    )
    expect(view.first).to_contain_text("You gave permission")
    expect(view.first).to_contain_text("Clinician")
    j.check(own, "who has looked")

    j.finish()


# --- 3. the carer ----------------------------------------------------------------------


def _carer_account() -> None:
    """A carer with their own HealthSpace account (basic: no record of their own)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from healthspace.accounts.models import Account

    user = get_user_model().objects.create_user(
        username=CARER_EMAIL,
        email=CARER_EMAIL,
        password=CARER_PASSWORD,
        first_name="Carys",
        last_name="Carer",
    )
    Account.objects.create(user=user, kind=Account.Kind.PATIENT, email_confirmed_at=timezone.now())


def test_carer_is_granted_sections_views_them_and_is_refused_after_revocation(
    axe_strict_contexts,
    journey,
    demo_patient,  # noqa: F811
):
    from django.core import mail
    from django.utils import timezone

    from healthspace.records.models import Patient
    from healthspace.vault.services import cipher_for

    patient = Patient.objects.get(nhs_number=demo_patient.nhs_number)
    resource = cipher_for(patient_id=patient.id).open_json(patient.resource, purpose="patient")
    owner_name = resource["name"][0]["family"]
    _carer_account()
    j = journey("3-carer")
    owner = j.watch(axe_strict_contexts().new_page(), "patient")

    # The patient shares allergies and medications, for a month.
    log_in_with_app(j, owner, demo_patient.email, demo_patient.password)
    nav(owner, "Sharing")
    owner.wait_for_url("**/record/sharing/")
    expect(owner.get_by_role("heading", level=1)).to_have_text("Sharing your record")
    j.check(owner, "sharing")
    owner.get_by_role("link", name="Share with someone").click()
    owner.wait_for_url("**/record/sharing/new/")
    j.check(owner, "share with someone")
    owner.get_by_label("Their email address").fill(CARER_EMAIL)
    owner.get_by_label("Allergies", exact=True).check()
    owner.get_by_label("Medications", exact=True).check()
    until = timezone.localdate() + timedelta(days=30)
    owner.locator("input#day").fill(str(until.day))
    owner.locator("#month").fill(str(until.month))
    owner.locator("#year").fill(str(until.year))
    submit_ok(owner, owner.get_by_role("button", name="Send invitation").click)
    owner.wait_for_url("**/record/sharing/")
    expect(owner.locator("table")).to_contain_text("waiting for them to accept")
    j.check(owner, "sharing, invitation sent")

    # The carer is told by email (whose record and what stay out of it), follows the link
    # in their own browser, accepts, and reads what was shared, and only that.
    mail.outbox.clear()
    run_worker()
    (notice,) = [m for m in mail.outbox if m.to == [CARER_EMAIL]]
    for private in [owner_name, *demo_patient.allergies, *demo_patient.medications]:
        assert private.lower() not in (notice.subject + notice.body).lower(), private
    link = re.search(r"https?://[^/\s]+(/\S*)", notice.body).group(1)

    carer = j.watch(axe_strict_contexts().new_page(), "carer")
    carer.goto(link)
    carer.wait_for_url(re.compile(r"/login/\?next="))
    j.check(carer, "carer log in")
    carer.locator("#id_username").fill(CARER_EMAIL)
    carer.locator("#id_password").fill(CARER_PASSWORD)
    submit_ok(carer, carer.get_by_role("button", name="Log in", exact=True).click)
    carer.wait_for_url("**/shared/")
    expect(carer.get_by_role("heading", level=1)).to_have_text("Records shared with you")
    j.check(carer, "carer invitation")
    submit_ok(carer, carer.get_by_role("button", name=re.compile("^Accept")).click)
    carer.wait_for_url("**/shared/")
    expect(carer.get_by_text("Accepted.")).to_be_visible()
    j.check(carer, "carer accepted")
    carer.get_by_role("link", name=re.compile("'s record$")).click()
    carer.wait_for_url(re.compile(r"/shared/[0-9a-f-]{36}/$"))
    record_url = carer.url
    banner = carer.locator("#shared-banner")
    expect(banner).to_contain_text("You are viewing")
    expect(banner).to_contain_text("Medications, allergies")
    headings = carer.locator("main section h2").all_inner_texts()
    assert sorted(headings) == ["Allergies", "Medications"], headings
    main = carer.locator("main")
    for allergy in demo_patient.allergies:
        expect(main).to_contain_text(allergy)
    for medication in demo_patient.medications:
        expect(main).to_contain_text(medication)
    j.check(carer, "carer views the record")

    # The patient stops sharing; the carer's next request is refused.
    owner.goto("/record/sharing/")
    j.check(owner, "sharing, active")
    submit_ok(owner, owner.get_by_role("button", name=re.compile("^Stop sharing")).click)
    owner.wait_for_url("**/record/sharing/")
    expect(owner.get_by_text("You are not sharing your record with anyone.")).to_be_visible()
    j.check(owner, "sharing stopped")

    with carer.expect_response(record_url) as refused:
        carer.reload()
    assert refused.value.status == 404
    expect(carer.get_by_role("heading", level=1)).to_have_text("This is not shared with you")
    expect(carer.locator("#shared-banner")).to_have_count(0)
    for allergy in demo_patient.allergies:
        expect(carer.locator("main")).not_to_contain_text(allergy)
    j.check(carer, "carer refused")

    # Both the carer's view and the refused attempt are in the patient's trail.
    nav(owner, "Who has looked at it")
    owner.wait_for_url("**/record/access/who-has-looked/")
    trail = owner.locator("table tbody")
    expect(trail).to_contain_text("Carys Carer")
    expect(trail).to_contain_text("Tried to view your record and was refused")
    j.check(owner, "who has looked")

    j.finish()


# --- the checker itself ------------------------------------------------------------------


def test_a_journey_fails_on_a_serious_violation_and_on_a_page_left_unchecked(
    axe_strict_contexts, journey, live_server: Any, tmp_path, monkeypatch
):
    """The journeys above pass only because their pages are accessible, not because the
    check cannot fail: an image with no text alternative (critical in axe-core) and a page
    nobody checked each make ``finish`` fail, saying which and where."""
    monkeypatch.setenv("HEALTHSPACE_ARTIFACTS_DIR", str(tmp_path))
    context = axe_strict_contexts()
    context.route(
        "**/not-a-healthspace-page/",
        lambda route: route.fulfill(
            content_type="text/html",
            body='<!doctype html><html lang="en"><title>Broken</title>'
            '<main><h1>Broken</h1><img src="/static/missing.png"></main></html>',
        ),
    )
    j = journey("harness")
    page = j.watch(context.new_page(), "someone")
    page.goto("/not-a-healthspace-page/")
    violations = j.check(page, "broken")
    assert "image-alt" in {v["id"] for v in violations}
    page.goto("/")  # loaded, never checked

    with pytest.raises(AssertionError) as failed:
        j.finish()
    message = str(failed.value)
    assert "image-alt (critical)" in message and "not-a-healthspace-page" in message
    unchecked = re.escape(f"someone: {live_server.url}/") + r"\s"
    assert re.search(r"pages loaded but never checked with axe:\s+" + unchecked, message)
    assert (tmp_path / "screenshots" / "harness" / "01-broken.png").is_file()
