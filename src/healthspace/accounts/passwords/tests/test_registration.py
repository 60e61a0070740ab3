"""Registration: a basic account, confirmed by an emailed link before it can be used."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from healthspace.accounts.models import Account
from healthspace.accounts.passwords import services
from healthspace.accounts.passwords.tests.conftest import PASSWORD, link_in, log_in
from healthspace.accounts.sessions import throttle
from healthspace.core.clock import now

pytestmark = pytest.mark.django_db


def _register(client, email: str, password: str = PASSWORD):
    return client.post(reverse("accounts:register"), {"email": email, "password": password})


def test_registration_page_offers_a_password_field_that_can_be_pasted_into_and_shown(client):
    html = client.get(reverse("accounts:register")).content.decode()
    assert 'autocomplete="new-password"' in html
    assert 'autocomplete="off"' not in html and "onpaste" not in html
    assert "nhsuk-password-input" in html  # show/hide button (works as a plain field without JS)
    assert "does not show your Summary Care Record" in html


def test_registering_creates_an_unconfirmed_patient_account_and_emails_a_link(client):
    response = _register(client, "  New.Person@Example.org ")
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:register-sent")
    page = client.get(response["Location"]).content.decode()
    assert "Check your email" in page and "new.person@example.org" in page

    user = get_user_model().objects.get(username="new.person@example.org")
    assert user.email == "new.person@example.org"
    assert user.check_password(PASSWORD)
    assert user.account.kind == Account.Kind.PATIENT
    assert user.account.email_confirmed_at is None
    assert not services.email_confirmed(user)
    assert "_auth_user_id" not in client.session  # registering logs nobody in

    (message,) = mail.outbox
    assert message.to == ["new.person@example.org"]
    assert "Confirm your email address" in message.subject
    path = link_in(message)

    look = client.get(path)  # what a mail scanner does: must not confirm
    assert look.status_code == 200 and "Confirm email address" in look.content.decode()
    assert not services.email_confirmed(user)

    done = client.post(path)
    assert done.status_code == 200 and "Email address confirmed" in done.content.decode()
    assert services.email_confirmed(user)
    assert "_auth_user_id" not in client.session

    again = client.post(path)  # opening it twice is harmless
    assert again.status_code == 200 and "Email address confirmed" in again.content.decode()


def test_a_password_that_breaks_a_rule_is_refused_with_the_nhs_error_pattern(client):
    response = _register(client, "someone@example.org", "sunshine1")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Error: Create a HealthSpace account" in html
    assert "nhsuk-error-summary" in html and 'href="#id_password"' in html
    assert "This is a very common password" in html
    assert not get_user_model().objects.filter(username="someone@example.org").exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Enter your email address"),
        ("not-an-address", "Enter an email address in the correct format"),
        ("a" * 140 + "@example.org", "Email address must be 150 characters or fewer"),
    ],
)
def test_email_address_errors(client, email, message):
    html = _register(client, email).content.decode()
    assert message in html
    assert mail.outbox == []


def test_an_expired_confirmation_link_is_refused_with_a_clear_page(client):
    _register(client, "late@example.org")
    path = link_in(mail.outbox[0])
    day_later = time.time() + 24 * 3600 + 5
    with mock.patch("django.core.signing.time.time", return_value=day_later):
        for response in (client.get(path), client.post(path)):
            assert response.status_code == 400
            assert "This link has expired" in response.content.decode()
    assert not services.email_confirmed(get_user_model().objects.get(username="late@example.org"))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature
        lambda token: "e30" + token[3:],  # payload
        lambda token: "not-a-token",
    ],
    ids=["signature", "payload", "garbage"],
)
def test_a_forged_confirmation_link_is_refused_with_a_clear_page(client, tamper):
    _register(client, "forged@example.org")
    token = link_in(mail.outbox[0]).rstrip("/").rsplit("/", 1)[1]
    path = reverse("accounts:confirm-email", args=[tamper(token)])
    response = client.post(path)
    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    user = get_user_model().objects.get(username="forged@example.org")
    assert not services.email_confirmed(user)


def test_a_confirmation_link_stops_working_once_the_password_is_changed(client):
    _register(client, "changed@example.org")
    path = link_in(mail.outbox[0])
    user = get_user_model().objects.get(username="changed@example.org")
    user.set_password("lantern pebble violin harbour")
    user.save()
    assert client.post(path).status_code == 400
    assert not services.email_confirmed(user)


@pytest.mark.parametrize(
    ("kind", "confirmed", "expected"),
    [
        (None, False, True),  # no Account row: made by an operator (createsuperuser, admin)
        (Account.Kind.PATIENT, False, False),  # registered, link not opened yet
        (Account.Kind.PATIENT, True, True),
        (Account.Kind.STAFF, False, True),  # made by an operator with `createstaff`
    ],
)
def test_email_confirmed(kind, confirmed, expected):
    user = get_user_model().objects.create(username="x@example.org", email="x@example.org")
    if kind is not None:
        Account.objects.create(
            user=user, kind=kind, email_confirmed_at=now() if confirmed else None
        )
    assert services.email_confirmed(user) is expected


def test_registration_requests_are_throttled_like_reset_requests(client, throttle_calls):
    _register(client, "Counted@Example.org")
    assert ("check", {"kind": "reset", "identifier": "counted@example.org"}) in throttle_calls
    records = [kw for what, kw in throttle_calls if what == "record"]
    assert records == [
        {
            "kind": "reset",
            "identifier": "counted@example.org",
            "success": False,
            "reason": "register",
        }
    ]


def test_a_throttled_registration_creates_nothing_and_sends_nothing(client, monkeypatch):
    monkeypatch.setattr(throttle, "check", lambda request, **kw: throttle.Verdict(False, 90))
    response = _register(client, "flood@example.org")
    assert response.status_code == 429
    assert "Try again in 2 minutes" in response.content.decode()
    assert not get_user_model().objects.filter(username="flood@example.org").exists()
    assert mail.outbox == []


def test_a_logged_in_person_is_not_offered_registration(client, owner):
    log_in(client, owner.username)
    response = client.get(reverse("accounts:register"))
    assert response.status_code == 302
    assert response["Location"] == reverse("web:record")
