"""Guessing is slowed and stopped, per account and per address; the owner is never kept out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from healthspace.accounts.models import Account, AuthAttempt
from healthspace.accounts.sessions import throttle
from healthspace.core import clock
from healthspace.core.clock import now

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"


class FakeClock:
    def __init__(self) -> None:
        self.moment = clock.now()

    def __call__(self):
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(throttle, "now", fake)
    return fake


@pytest.fixture
def owner(db):
    user = get_user_model().objects.create_user(
        username="owner@example.org", email="owner@example.org", password=PASSWORD
    )
    Account.objects.create(user=user, email_confirmed_at=now())
    return user


def _attempt(client: Client, email: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        reverse("web:login"), {"username": email, "password": password}, REMOTE_ADDR=address
    )


def _evaluated(**filters) -> int:
    return AuthAttempt.objects.filter(**filters).exclude(reason=throttle.THROTTLED).count()


def test_fifty_wrong_passwords_against_one_account_are_slowed_then_stopped(
    owner, fake_clock, django_capture_on_commit_callbacks
):
    """An attacker who waits exactly as long as told (Retry-After) still gets only 10
    guesses evaluated, then the account locks and its owner gets an unlock link."""
    client = Client()
    statuses = []
    with django_capture_on_commit_callbacks(execute=True):  # the email goes after commit
        for n in range(50):
            # from 50 different addresses: per-account counting must hold on its own
            response = _attempt(client, owner.username, f"wrong {n}", f"198.51.100.{n}")
            statuses.append(response.status_code)
            wait = int(response.get("Retry-After", 0))
            fake_clock.advance(1 + (wait if wait < throttle.ACCOUNT_MAX_DELAY + 1 else 0))

    assert _evaluated() == throttle.ACCOUNT_LOCK_AFTER
    assert statuses[: throttle.ACCOUNT_FREE_FAILURES] == [200] * throttle.ACCOUNT_FREE_FAILURES
    assert statuses[-10:] == [429] * 10  # locked: waits of about an hour are not waited out
    # the right password is refused while locked...
    assert _attempt(client, owner.username, PASSWORD, "192.0.2.1").status_code == 429
    # ...and the owner was emailed a link that lifts the lock at once
    assert len(mail.outbox) == 1
    assert "locked" in mail.outbox[0].subject
    link = re.search(r"https?://testserver(/account/unlock/\S+/)", mail.outbox[0].body).group(1)
    assert Client().get(link).status_code == 200
    assert _attempt(client, owner.username, PASSWORD, "192.0.2.1").status_code == 302


def test_an_attacker_retrying_every_second_is_mostly_refused_unevaluated(owner, fake_clock):
    client = Client()
    statuses = []
    for n in range(50):
        statuses.append(_attempt(client, owner.username, f"w{n}", f"198.51.100.{n}").status_code)
        fake_clock.advance(1)
    assert _evaluated() <= throttle.ACCOUNT_LOCK_AFTER
    assert statuses.count(429) >= 40


def test_the_lock_ends_by_itself_within_the_hour(owner, fake_clock):
    client = Client()
    for n in range(throttle.ACCOUNT_LOCK_AFTER):
        _attempt(client, owner.username, f"wrong {n}", f"198.51.100.{n}")
        fake_clock.advance(throttle.ACCOUNT_MAX_DELAY)
    assert _attempt(client, owner.username, PASSWORD, "192.0.2.1").status_code == 429
    fake_clock.advance(throttle.LOCK_SECONDS + 1)
    assert _attempt(client, owner.username, PASSWORD, "192.0.2.1").status_code == 302


def test_fifty_wrong_passwords_against_many_accounts_from_one_address(owner, fake_clock):
    client = Client()
    statuses = [
        _attempt(client, f"person{n}@example.org", "Summer2026!", "203.0.113.50").status_code
        for n in range(50)
        if fake_clock.advance(1) is None
    ]
    evaluated = _evaluated(address_hash=throttle._hashes(_req("203.0.113.50"), "login", "x")[1])
    assert throttle.ADDRESS_FREE_FAILURES <= evaluated < 30
    assert statuses[-5:] == [429] * 5
    # the real owner, elsewhere, is not affected
    assert _attempt(client, owner.username, PASSWORD, "192.0.2.9").status_code == 302


def _req(address: str):
    from django.test import RequestFactory

    return RequestFactory().get("/", REMOTE_ADDR=address)


def test_unknown_and_real_accounts_are_throttled_alike(owner, fake_clock):
    """The retry time must not reveal whether an email address has an account."""
    client = Client()
    waits = {}
    for email in (owner.username, "nobody@example.org"):
        for n in range(throttle.ACCOUNT_LOCK_AFTER):
            _attempt(client, email, f"wrong {n}", f"198.51.100.{n}")
        response = _attempt(client, email, "again", "192.0.2.77")
        waits[email] = (
            response.status_code,
            re.search(r"Try again in (\d+) minute", response.content.decode()).group(1),
        )
    assert waits[owner.username] == waits["nobody@example.org"]


def test_a_throttled_attempt_is_not_evaluated_and_passwords_are_never_stored(owner, fake_clock):
    client = Client()
    for n in range(throttle.ACCOUNT_FREE_FAILURES + 3):
        _attempt(client, owner.username, f"secret-guess-{n}")
    stored = " ".join(str(v) for row in AuthAttempt.objects.values_list() for v in row)
    assert "secret-guess" not in stored and owner.username not in stored
    assert _evaluated() <= throttle.ACCOUNT_FREE_FAILURES + 1


def test_ipv6_clients_are_counted_by_their_64():
    assert throttle.client_address(_req("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert throttle.client_address(_req("2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64"
    assert throttle.client_address(_req("192.0.2.4")) == "192.0.2.4"
