"""The login's second step: each kind of account is sent where it must go, and only a
factor it may use completes the login."""

from __future__ import annotations

import time
from urllib.parse import quote

import pyotp
import pytest
from django.test import RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthspace.accounts import login as login_flow
from healthspace.accounts.factors import guards, services
from healthspace.accounts.factors.tests.conftest import logged_in, password_step, scr_allowed
from healthspace.accounts.models import Passkey
from healthspace.core import clock

pytestmark = pytest.mark.django_db
VERIFY = reverse("accounts:two-factor-verify")


def _app(user) -> pyotp.TOTP:
    secret = pyotp.random_base32()
    services.totp_demo_device(user, secret, name="Phone")
    return pyotp.TOTP(secret)


def _passkey(user) -> None:
    Passkey.objects.create(
        user=user, name="k", credential_id=f"c{user.pk}", public_key=b"", created_at=clock.now()
    )


def test_a_basic_account_without_factors_logs_in_with_the_password_alone(client, basic_user):
    assert password_step(client, basic_user) == reverse("web:record")
    assert logged_in(client)


def test_the_password_alone_does_not_log_in_anyone_who_has_a_factor(client, basic_user):
    _app(basic_user)
    assert password_step(client, basic_user).startswith(VERIFY)
    assert not logged_in(client)
    assert client.get(reverse("web:record")).status_code == 302


def test_a_right_code_completes_the_login_and_a_wrong_one_does_not(client, patient_user):
    totp = _app(patient_user)
    password_step(client, patient_user)
    page = client.get(VERIFY)
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.content.decode()

    wrong = client.post(VERIFY, {"code": f"{(int(totp.now()) + 1) % 10**6:06d}"})
    assert wrong.status_code == 200 and "There is a problem" in wrong.content.decode()
    assert not logged_in(client)

    right = client.post(VERIFY, {"code": totp.now()})
    assert right.status_code == 302 and right["Location"] == reverse("web:record")
    assert logged_in(client)
    assert client.session[guards.SESSION_FACTOR] == "totp"


def test_a_malformed_code_is_refused_without_counting_as_a_guess(client, basic_user):
    _app(basic_user)
    password_step(client, basic_user)
    response = client.post(VERIFY, {"code": "12a456"})
    assert "The code must be 6 numbers" in response.content.decode()
    assert (
        not basic_user.authattempt_set.exists() if hasattr(basic_user, "authattempt_set") else True
    )


def test_a_verified_patient_without_a_factor_is_sent_to_set_one_up(client, patient_user):
    assert password_step(client, patient_user).startswith(VERIFY)
    response = client.get(VERIFY)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two-factor-setup"))
    # Logged in only to set one up: the record still sends them to the second-factor page.
    assert logged_in(client) and not guards.session_factor(client)
    record = client.get(reverse("web:record"))
    assert record.status_code == 302 and record["Location"] == VERIFY
    assert client.get(VERIFY)["Location"].startswith(reverse("accounts:two-factor-setup"))
    setup = client.get(reverse("accounts:two-factor-setup")).content.decode()
    assert "Set up a passkey" in setup and "Set up an authenticator app" in setup


def test_a_logged_in_patient_with_a_factor_but_no_step_up_is_asked_for_it(client, patient_user):
    # Logged in before the factor existed (for example on another device).
    password_step(client, patient_user)
    client.get(VERIFY)
    totp = _app(patient_user)
    record = client.get(reverse("web:record"))
    assert record["Location"] == VERIFY
    page = client.get(VERIFY)
    assert page.status_code == 200 and "Confirm it's you" in page.content.decode()
    assert client.post(VERIFY, {"code": totp.now()}).status_code == 302
    assert scr_allowed(client, patient_user)


def test_staff_cannot_complete_a_login_with_an_authenticator_app(client, staff_user):
    totp = _app(staff_user)  # however it came to exist, it is not accepted for staff
    _passkey(staff_user)
    password_step(client, staff_user)
    page = client.get(VERIFY).content.decode()
    assert "Use your passkey" in page and 'name="code"' not in page
    assert "ask your operator" in page

    response = client.post(VERIFY, {"code": totp.now()})
    assert response.status_code == 403
    assert "Staff accounts must log in with a passkey" in response.content.decode()
    assert not logged_in(client)
    assert TOTPDevice.objects.get(user=staff_user).last_t == -1  # not even checked


def test_staff_cannot_use_recovery_codes(client, staff_user):
    code = services.recovery_codes_generate(user=staff_user)[0]
    _passkey(staff_user)
    password_step(client, staff_user)
    url = reverse("accounts:two-factor-recovery")
    assert "ask your operator" in client.get(url).content.decode()
    assert client.post(url, {"code": code}).status_code == 403
    assert not logged_in(client)


@pytest.mark.parametrize("has_app", [False, True])
def test_staff_without_a_passkey_are_sent_to_register_one(client, staff_user, has_app):
    if has_app:
        _app(staff_user)  # an app is no factor for staff: it changes nothing
    password_step(client, staff_user)
    response = client.get(VERIFY, follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("accounts:passkey-add"))
    assert response.status_code == 200 and "Set up a passkey" in response.content.decode()
    assert logged_in(client)
    # ... and that session is not a staff session until a passkey is used.
    request = RequestFactory().get("/")
    request.user, request.session = staff_user, client.session
    assert not guards.staff_allowed_for_session(request)


def test_a_recovery_code_completes_the_login_once(client, patient_user):
    _app(patient_user)
    codes = services.recovery_codes_generate(user=patient_user)
    url = reverse("accounts:two-factor-recovery")
    password_step(client, patient_user)
    response = client.post(url, {"code": codes[0]})
    assert response.status_code == 302 and logged_in(client)
    assert client.session[guards.SESSION_FACTOR] == "recovery"

    client.post(reverse("web:logout"))
    password_step(client, patient_user)
    again = client.post(url, {"code": codes[0]})
    assert again.status_code == 200 and not logged_in(client)
    assert "Enter a recovery code you have not used before" in again.content.decode()


def test_the_second_step_expires_with_the_password_step(client, patient_user):
    _app(patient_user)
    password_step(client, patient_user)
    session = client.session
    session[login_flow.PENDING_AT] = time.time() - login_flow.PENDING_MAX_SECONDS - 1
    session.save()
    response = client.get(VERIFY)
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))


def test_without_a_password_step_there_is_no_second_step(client):
    assert client.get(VERIFY)["Location"].startswith(reverse("web:login"))
    assert client.post(reverse("accounts:passkey-login-options")).status_code == 401


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("/account/two-factor/", "/account/two-factor/"),
        ("https://evil.example/", "/record/"),
        ("//evil.example/", "/record/"),
    ],
)
def test_the_login_returns_to_a_page_on_this_site_only(client, basic_user, next_url, lands_on):
    totp = _app(basic_user)
    password_step(client, basic_user, next_url=next_url)
    response = client.post(VERIFY, {"code": totp.now(), "next": next_url})
    assert response["Location"] == lands_on


@pytest.mark.parametrize(
    "next_url",
    [
        "/messages/?view=unread&page=2",
        "/oauth/authorize/?response_type=code&scope=patient%2F*.rs&state=a?b&redirect_uri=x",
    ],
)
def test_a_next_page_with_its_own_query_arrives_whole(client, basic_user, next_url):
    """The password step sends the browser to the second step with ``next`` encoded, the
    second step's form carries it, and the login lands exactly there."""
    import html
    import re
    from urllib.parse import parse_qs, urlsplit

    totp = _app(basic_user)
    location = password_step(client, basic_user, next_url=next_url)
    parts = urlsplit(location)
    assert parts.path == VERIFY and parse_qs(parts.query) == {"next": [next_url]}
    page = client.get(location).content.decode()
    carried = html.unescape(re.search(r'name="next" value="([^"]*)"', page).group(1))
    assert carried == next_url
    response = client.post(VERIFY, {"code": totp.now(), "next": carried})
    assert response.status_code == 302 and response["Location"] == next_url


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/?a=1&b=2", "//evil.example/x?y", "/\\evil.example/"]
)
def test_an_encoded_next_still_never_leaves_the_site(client, basic_user, next_url):
    totp = _app(basic_user)
    location = password_step(client, basic_user, next_url=next_url)
    assert location == VERIFY  # dropped at the password step
    response = client.post(f"{VERIFY}?next={quote(next_url)}", {"code": totp.now()})
    assert response["Location"] == reverse("web:record")


def test_passkey_button_without_javascript_explains_what_to_do(client, patient_user):
    _app(patient_user)
    _passkey(patient_user)
    password_step(client, patient_user)
    response = client.post(VERIFY, {"passkey": "1"})
    html = response.content.decode()
    assert response.status_code == 400 and "needs JavaScript" in html
    assert 'name="code"' in html  # the app is offered instead


def test_a_demo_patient_sees_the_record_only_after_a_second_factor(client, synthetic_patients):
    from django.contrib.auth import get_user_model

    from healthspace.ops.demo import ensure_demo_logins

    demo = next(d for d in ensure_demo_logins(1) if d.role == "patient")
    user = get_user_model().objects.get(username=demo.email)
    first = client.post(
        reverse("web:login"), {"username": demo.email, "password": demo.password}, follow=True
    )
    assert first.redirect_chain[-1][0].startswith(reverse("accounts:two-factor-setup"))
    assert client.get(reverse("web:record"))["Location"] == VERIFY  # set-up first
    totp = _app(user)
    client.post(reverse("web:logout"))

    client.post(reverse("web:login"), {"username": demo.email, "password": demo.password})
    assert client.get(reverse("web:record"))["Location"].startswith(reverse("web:login"))
    assert client.post(VERIFY, {"code": totp.now()})["Location"] == reverse("web:record")
    record = client.get(reverse("web:record"))
    assert record.status_code == 200
    assert "Your Summary Care Record" in record.content.decode()
