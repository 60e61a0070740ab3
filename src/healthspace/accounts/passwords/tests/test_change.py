"""Changing the password while logged in: the current password is asked for, the rules
apply, and every other session ends while this one goes on."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from healthspace.accounts.models import Account, UserSession
from healthspace.accounts.passwords.tests.conftest import NEW_PASSWORD, PASSWORD, log_in
from healthspace.accounts.sessions import throttle

pytestmark = pytest.mark.django_db
CHANGE = reverse("accounts:password-change")


def _change(client, current: str, new: str):
    return client.post(CHANGE, {"current_password": current, "password": new})


def test_needs_a_login():
    response = Client().get(CHANGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_changing_ends_every_other_session_and_keeps_this_one(client, owner):
    Account.objects.filter(user=owner).update(password_change_required=True)
    elsewhere = Client()
    log_in(elsewhere, owner.email)
    log_in(client, owner.email)
    page = client.get(CHANGE).content.decode()
    assert "You need to change your password" in page
    assert 'autocomplete="current-password"' in page and 'autocomplete="new-password"' in page
    mail.outbox.clear()

    response = _change(client, PASSWORD, NEW_PASSWORD)
    assert response["Location"] == reverse("accounts:password-change-done")

    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert not Account.objects.get(user=owner).password_change_required
    assert client.get(reverse("accounts:password-change-done")).status_code == 200
    assert client.get(CHANGE).status_code == 200  # still logged in here
    assert elsewhere.get(CHANGE).status_code == 302  # logged out there
    live = UserSession.objects.filter(user=owner, ended_at__isnull=True)
    assert live.count() == 1
    assert UserSession.objects.filter(user=owner, ended_reason="password-changed").count() == 1
    assert [m.subject for m in mail.outbox] == ["Your HealthSpace password has been changed"]


@pytest.mark.parametrize(
    ("current", "new", "field", "message"),
    [
        (
            "not my password",
            NEW_PASSWORD,
            "current_password",
            "Your current password is not correct",
        ),
        ("", NEW_PASSWORD, "current_password", "Enter your current password"),
        ("x" * 1025, NEW_PASSWORD, "current_password", "Your current password is not correct"),
        (PASSWORD, "", "password", "Enter a new password"),
        (PASSWORD, "sunshine1", "password", "This is a very common password"),
        (PASSWORD, "kqzvbnw", "password", "Your password must be at least 8 characters"),
        (PASSWORD, PASSWORD, "password", "Your new password must be different"),
    ],
    ids=["wrong", "missing", "too-long", "new-missing", "common", "short", "unchanged"],
)
def test_refusals_leave_the_password_as_it_was(client, owner, current, new, field, message):
    log_in(client, owner.email)
    response = _change(client, current, new)
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html and f'href="#id_{field}"' in html
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert UserSession.objects.filter(user=owner, ended_at__isnull=True).count() == 1


def test_a_wrong_current_password_counts_as_a_failed_login(client, owner, throttle_calls):
    log_in(client, owner.email)
    throttle_calls.clear()
    _change(client, "not my password", NEW_PASSWORD)
    records = [kw for what, kw in throttle_calls if what == "record"]
    assert [(r["kind"], r["identifier"], r["success"]) for r in records] == [
        ("login", "owner@example.org", False)
    ]


def test_guessing_the_current_password_is_throttled(client, owner, monkeypatch):
    log_in(client, owner.email)
    monkeypatch.setattr(throttle, "check", lambda request, **kw: throttle.Verdict(False, 300))
    response = _change(client, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 429
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
