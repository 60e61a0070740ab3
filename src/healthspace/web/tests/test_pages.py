"""Pages: log in, see your own SCR and nobody else's."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from healthspace.access.actors import Actor
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.ops.demo import DEMO_PASSWORD_PATIENT, ensure_demo_logins
from healthspace.records.models import Patient, Section
from healthspace.records.selectors import scr_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(synthetic_patients):
    return ensure_demo_logins(count=2)


def _login(client, email: str) -> None:
    """Password step through the real form, then the second factor completed as the factors
    step would (the factor pages have their own tests and the browser tests drive them)."""
    response = client.post(
        reverse("web:login"), {"username": email, "password": DEMO_PASSWORD_PATIENT}
    )
    assert response.status_code == 302, response.content[:500]
    user = get_user_model().objects.get(username=email)
    signed_in = signed_in_client(user)
    client.cookies = signed_in.cookies


def test_home_and_login_pages_render_with_the_nhs_frontend(client):
    for name in ("web:home", "web:login"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        html = response.content.decode()
        assert "nhsuk-header" in html and 'id="maincontent"' in html
        assert "/static/healthspace.css" in html
        assert "no-store" in response["Cache-Control"]
        assert "script-src 'self' 'nonce-" in response["Content-Security-Policy"]


def test_record_needs_a_login(client):
    response = client.get(reverse("web:record"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_wrong_password_shows_an_error_and_no_session(client, demo):
    response = client.post(
        reverse("web:login"), {"username": demo[0].email, "password": "wrong-password-1"}
    )
    assert response.status_code == 200
    assert "There is a problem" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_patient_sees_their_summary_care_record_with_allergies_and_medications(client, demo):
    _login(client, demo[0].email)
    response = client.get(reverse("web:record"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Your Summary Care Record" in html

    patient = Patient.objects.get(nhs_number=demo[0].nhs_number)
    scr = scr_for(actor=Actor("patient", "t", patient_id=patient.id), patient_id=patient.id)
    assert f"{patient.nhs_number[:3]} {patient.nhs_number[3:6]} {patient.nhs_number[6:]}" in html
    for key in (Section.ALLERGIES, Section.MEDICATIONS):
        assert scr.section(key).label in html
    shown = scr.section(Section.ALLERGIES).items + scr.section(Section.MEDICATIONS).items
    assert shown
    for row in shown:
        assert row.view.title in html
    assert html.index("Core information") < html.index("Additional information")
    assert "<caption" in html


def test_another_patients_record_is_never_reachable_by_changing_the_url(client, demo):
    _login(client, demo[0].email)
    other = Patient.objects.get(nhs_number=demo[1].nhs_number)
    mine = client.get(reverse("web:record")).content.decode()
    for attempt in (
        f"{reverse('web:record')}?patient={other.id}",
        f"{reverse('web:record')}?patient_id={other.id}&nhs_number={other.nhs_number}",
        f"/record/{other.id}/",
        f"/record/{other.nhs_number}/",
    ):
        response = client.get(attempt)
        html = response.content.decode()
        assert other.nhs_number[6:] not in html.replace(mine, "") or response.status_code == 404
        assert f"{other.nhs_number[:3]} {other.nhs_number[3:6]} {other.nhs_number[6:]}" not in html


def _patterns(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


# URL parameters that name something of the signed-in user's own (a session, a passkey) or
# carry a signed token. Never a patient or record id: adding a name here needs a reason.
ALLOWED_URL_PARAMETERS = {"token", "uidb64", "session_id", "passkey_id", "device_id"}
# Things inside the signed-in patient's own record (an item, their correction request, what
# they added; "kind" is a fixed word): each is looked up only within the record of the
# session, so another patient's id is "not found" (corrections/tests/test_requests.py,
# test_additions.py); the record itself still never comes from the URL.
OWN_RECORD_PARTS = {"item_id", "request_id", "addition_id", "kind"}


def test_no_patient_page_takes_a_record_id_from_the_url():
    # The record shown comes from the session's verified account, never the request (IDOR).
    import re

    for route, _ in _patterns(get_resolver()):
        if route.startswith("operator/admin/"):
            continue
        names = set(re.findall(r"<(?:\w+:)?(\w+)>", route))
        if route.startswith(("messages/", "staff/messages/")):
            # A message thread (and its attachments) is decided against the session's own
            # patient or team, never trusted from the URL; another's id is the same 404 as
            # a made-up one (messaging/tests/test_isolation.py).
            names -= {"thread_id", "attachment_id"}
        elif route.startswith("staff/privacy/"):
            # A privacy officer acts on any record: each page decides and audits its id.
            names -= {"case_id", "request_id", "record_id"}
        elif route.startswith("staff/corrections/"):
            # A request sent to a practice: access.decide answers for its clinicians only,
            # and audits every refusal in the patient's trail (corrections/tests).
            names -= {"request_id"}
        elif route.startswith(("record/sharing/", "shared/", "staff/proxies/")):
            # A grant or share code is looked up within the session's own record (the
            # patient's), the session's own grants (the grantee, checked live on every
            # request) or the staff member's own practice (decide() with care team), so
            # another's id is the same 404 as a made-up one (consent/sharing/tests).
            names -= {"grant_id", "code_id"}
        elif route.startswith(("record/corrections/", "record/additions/")):
            names -= OWN_RECORD_PARTS
        elif route.startswith("staff/"):
            # Staff pages name the patient, but open only for one found by NHS number and
            # date of birth in the same session (staff/tests/test_clinician_flow.py).
            names -= {"patient_id"}
        elif route.startswith("organiser/"):
            # Rows of the signed-in account's own organiser, looked up within its own rows
            # only: another account's id is "not found" (organiser/tests/
            # test_export_and_isolation.py tries every such route with them); ``measure``
            # names a kind of reading, not a row.
            names -= {"reading_id", "appointment_id", "note_id", "medicine_id", "measure"}
        elif route.startswith("account/your-data/"):
            # The signed-in account's own downloads, looked up within its own rows only:
            # another account's id is "not found" (portability/tests/test_pages.py).
            names -= {"download_id"}
        elif route.startswith("fhir/R4/"):
            # FHIR names resources by id by design: every id is resolved for the token's
            # actor through access.decide, absent and forbidden alike 404
            # (fhir_api/tests/test_isolation.py, tests/fuzz/test_api_fuzz.py).
            names -= {"rtype", "fhir_id", "vid", "job_id", "name", "group_id"}
        assert names <= ALLOWED_URL_PARAMETERS, f"{route} takes {names - ALLOWED_URL_PARAMETERS}"


def test_a_login_without_a_linked_record_sees_no_record(client, db):
    get_user_model().objects.create_user(
        username="basic@example.org", password="a-long-enough-pass"
    )
    client.post(
        reverse("web:login"), {"username": "basic@example.org", "password": "a-long-enough-pass"}
    )
    response = client.get(reverse("web:record"))
    assert response.status_code == 404
    body = response.content.decode()
    assert "There is no record here that you can see" in body
    # a carer with a basic account is told where records shared with them are
    assert f'href="{reverse("shared:list")}"' in body


def test_logout_is_a_post_and_ends_the_session(client, demo):
    _login(client, demo[0].email)
    assert client.get(reverse("web:logout")).status_code == 405
    client.post(reverse("web:logout"))
    assert client.get(reverse("web:record")).status_code == 302


def _header_links(html: str) -> str:
    return html.split('<nav class="nhsuk-header__navigation"', 1)[-1].split("</nav>", 1)[0]


def test_staff_see_the_staff_navigation_on_their_account_pages_too(demo):
    from healthspace.staff.testing import make_staff_user

    staff = signed_in_client(make_staff_user("clinician"), second_factor="passkey")
    nav = _header_links(staff.get(reverse("accounts:home")).content.decode())
    assert "Find a patient" in nav
    assert "Your Summary Care Record" not in nav and "Health organiser" not in nav


def test_patients_see_the_patient_navigation_on_their_account_pages(client, demo):
    _login(client, demo[0].email)
    nav = _header_links(client.get(reverse("accounts:home")).content.decode())
    assert "Your Summary Care Record" in nav and "Health organiser" in nav
    assert "Find a patient" not in nav


def _logout_token(html: str) -> str:
    form = html.split('class="nhsuk-header__account-form"', 1)[1].split("</form>", 1)[0]
    return form.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]


def test_the_kept_header_carries_each_requests_own_csrf_token(demo):
    """The header is rendered once per navigation variant and kept (config.jinja2.once);
    its log-out form must still carry the token of the session that asked, and work."""
    from django.test import Client

    from healthspace.config.jinja2 import CSRF_SLOT

    clients = [signed_in_client(get_user_model().objects.get(username=d.email)) for d in demo]
    pages = [c.get(reverse("accounts:home")).content.decode() for c in clients]
    tokens = [_logout_token(html) for html in pages]
    assert all(CSRF_SLOT not in html for html in pages)
    assert tokens[0] and tokens[1] and tokens[0] != tokens[1]
    # same variant (two patients): the same header apart from the token
    assert _header_links(pages[0]) == _header_links(pages[1])
    # the token works with Django's CSRF check (enforced here, as in production)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = clients[0].cookies
    page = strict.get(reverse("accounts:home")).content.decode()
    response = strict.post(reverse("web:logout"), {"csrfmiddlewaretoken": _logout_token(page)})
    assert response.status_code == 302
    assert strict.get(reverse("web:record")).status_code == 302  # logged out
    signed_out = Client().get(reverse("web:home")).content.decode()
    assert "nhsuk-header__account-form" not in signed_out  # a variant of its own


def test_kept_plain_urls_follow_the_prefix_and_the_urlconf(settings):
    """config.jinja2.url keeps reverse() of names without arguments: the kept answer is
    the one reverse() gives, under each URL prefix, and forgotten when the URLs change."""
    import uuid

    from django.urls import get_script_prefix, set_script_prefix

    from healthspace.config import jinja2

    assert jinja2.url("web:record") == reverse("web:record")
    assert jinja2.url("web:record") == reverse("web:record")  # the kept one
    pid = uuid.uuid4()
    assert jinja2.url("staff:patient", patient_id=pid) == reverse("staff:patient", args=[pid])
    plain = reverse("web:record")
    before = get_script_prefix()
    try:
        set_script_prefix("/healthspace/")
        assert jinja2.url("web:record") == reverse("web:record") == "/healthspace" + plain
    finally:
        set_script_prefix(before)
    assert jinja2.url("web:record") == plain
    assert jinja2._PLAIN_URLS
    settings.ROOT_URLCONF = "healthspace.cases.urls"  # a swap, as some tests do
    assert not jinja2._PLAIN_URLS
