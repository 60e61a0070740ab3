"""Reset by email: a single-use link that expires, never logs anyone in, and ends every
session of the account."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse

from healthspace.accounts.factors import guards
from healthspace.accounts.models import Account, UserSession
from healthspace.accounts.passwords import services, tokens
from healthspace.accounts.passwords.tests.conftest import NEW_PASSWORD, PASSWORD, link_in, log_in
from healthspace.accounts.sessions import throttle

pytestmark = pytest.mark.django_db


def _ask(client, email: str):
    return client.post(reverse("accounts:password-reset"), {"email": email})


def _reset_link(client, email: str) -> str:
    mail.outbox.clear()
    assert _ask(client, email)["Location"] == reverse("accounts:password-reset-sent")
    (message,) = mail.outbox
    assert message.subject == "Reset your HealthSpace password"
    return link_in(message)


def test_the_emailed_link_sets_a_new_password_and_logs_nobody_in(client, owner):
    Account.objects.filter(user=owner).update(password_change_required=True)
    path = _reset_link(client, "Owner@Example.org ")

    opened = client.get(path)
    # the token leaves the address bar for a plain address; it is kept in the session
    assert opened.status_code == 302
    assert opened["Location"] == reverse("accounts:password-reset-new")
    form = client.get(opened["Location"])
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()

    mail.outbox.clear()
    done = client.post(opened["Location"], {"password": NEW_PASSWORD})
    assert done["Location"] == reverse("accounts:password-reset-done")
    assert "Log in" in client.get(done["Location"]).content.decode()

    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD) and not owner.check_password(PASSWORD)
    assert not Account.objects.get(user=owner).password_change_required
    assert "_auth_user_id" not in client.session
    assert [m.subject for m in mail.outbox] == ["Your HealthSpace password has been changed"]


def test_the_link_works_once(client, owner):
    path = _reset_link(client, owner.email)
    client.get(path)
    client.post(reverse("accounts:password-reset-new"), {"password": NEW_PASSWORD})

    for browser in (client, Client()):
        reused = browser.get(path)
        assert reused.status_code == 400
        assert "This link does not work" in reused.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


@override_settings(PASSWORD_RESET_TIMEOUT=3600)
@pytest.mark.parametrize(("age_seconds", "works"), [(3599, True), (3601, False)])
def test_the_link_expires_after_an_hour(client, owner, monkeypatch, age_seconds, works):
    path = _reset_link(client, owner.email)
    later = datetime.now() + timedelta(seconds=age_seconds)
    monkeypatch.setattr(tokens.reset_tokens, "_now", lambda: later)
    response = client.get(path)
    assert (response.status_code == 302) is works
    if not works:
        assert response.status_code == 400
        assert "This link does not work" in response.content.decode()


def test_the_link_also_expires_between_opening_it_and_saving(client, owner, monkeypatch):
    path = _reset_link(client, owner.email)
    client.get(path)
    later = datetime.now() + timedelta(hours=2)
    monkeypatch.setattr(tokens.reset_tokens, "_now", lambda: later)
    response = client.post(reverse("accounts:password-reset-new"), {"password": NEW_PASSWORD})
    assert response.status_code == 400
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


@pytest.mark.parametrize(
    "forge",
    [
        lambda uid, token: f"{uid}.{token[:-3]}abc",
        lambda uid, token: f"OTk5.{token}",  # someone else's id (999) with this token
        lambda uid, token: f"{uid}.",
        lambda uid, token: f"!!.{token}",
        lambda uid, token: "garbage",
    ],
    ids=["token", "user", "no-token", "bad-id", "garbage"],
)
def test_a_forged_link_is_refused(client, owner, forge):
    uid, token = _reset_link(client, owner.email).strip("/").rsplit("/", 1)[1].split(".")
    response = client.get(reverse("accounts:password-reset-link", args=[forge(uid, token)]))
    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()


def test_the_new_form_needs_an_opened_link():
    response = Client().get(reverse("accounts:password-reset-new"))
    assert response.status_code == 400


def test_the_new_password_follows_the_rules(client, owner):
    client.get(_reset_link(client, owner.email))
    response = client.post(reverse("accounts:password-reset-new"), {"password": "sunshine1"})
    assert response.status_code == 200
    assert "This is a very common password" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_a_reset_ends_every_session_of_the_account(client, owner):
    elsewhere = Client()
    log_in(elsewhere, owner.email)
    assert elsewhere.get(reverse("accounts:password-change")).status_code == 200

    client.get(_reset_link(client, owner.email))
    client.post(reverse("accounts:password-reset-new"), {"password": NEW_PASSWORD})

    assert not UserSession.objects.filter(user=owner, ended_at__isnull=True).exists()
    assert UserSession.objects.filter(user=owner, ended_reason="password-reset").exists()
    kicked_out = elsewhere.get(reverse("accounts:password-change"))
    assert kicked_out.status_code == 302
    assert kicked_out["Location"].startswith(reverse("web:login"))


def test_after_a_reset_the_second_factor_is_still_asked_for(client, owner, monkeypatch):
    monkeypatch.setattr(guards, "needs_second_factor_step", lambda user: True)
    client.get(_reset_link(client, owner.email))
    client.post(reverse("accounts:password-reset-new"), {"password": NEW_PASSWORD})

    response = client.post(
        reverse("web:login"), {"username": owner.email, "password": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(guards.second_factor_url())
    assert "_auth_user_id" not in client.session


def test_a_reset_confirms_an_unconfirmed_address(client, make_account):
    user = make_account("unconfirmed@example.org", confirmed=False)
    client.get(_reset_link(client, user.email))
    client.post(reverse("accounts:password-reset-new"), {"password": NEW_PASSWORD})
    assert services.email_confirmed(user)


@pytest.mark.parametrize("make_inactive", [False, True])
def test_an_address_without_a_usable_account_gets_a_note_not_a_link(client, owner, make_inactive):
    if make_inactive:
        get_user_model().objects.filter(pk=owner.pk).update(is_active=False)
        email = owner.email
    else:
        email = "nobody@example.org"
    response = _ask(client, email)
    assert response["Location"] == reverse("accounts:password-reset-sent")
    (message,) = mail.outbox
    assert message.to == [email]
    assert "there is no HealthSpace account with it" in message.body
    assert "/account/password/reset/" not in message.body.replace(
        reverse("accounts:password-reset"), ""
    )


def test_reset_requests_are_throttled_per_address_typed(client, owner, throttle_calls):
    _ask(client, "Owner@Example.org")
    assert ("check", {"kind": "reset", "identifier": "owner@example.org"}) in throttle_calls
    (record,) = [kw for what, kw in throttle_calls if what == "record"]
    assert record["kind"] == "reset" and record["identifier"] == "owner@example.org"
    assert record["success"] is False  # every request counts, so nobody floods an inbox


def test_a_throttled_reset_request_sends_nothing(client, owner, monkeypatch):
    monkeypatch.setattr(throttle, "check", lambda request, **kw: throttle.Verdict(False, 30))
    response = _ask(client, owner.email)
    assert response.status_code == 429
    assert response["Retry-After"] == "30"
    assert "Try again in 1 minute" in response.content.decode()
    assert mail.outbox == []
