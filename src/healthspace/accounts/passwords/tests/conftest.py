"""Fixtures for the password and registration suites.

Argon2id costs ~0.3 s a hash on the CI machine, and these suites hash on nearly every
request, so they use a fast hasher unless a test asks for ``real_argon2`` (the timing
tests do: there the cost of the hash is the thing measured).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from healthspace.accounts.models import Account
from healthspace.accounts.sessions import throttle
from healthspace.core.clock import now

PASSWORD = "quarry velvet lemon anchor"
NEW_PASSWORD = "lantern pebble violin harbour"


@pytest.fixture
def real_argon2() -> None:
    """Keep the configured Argon2id hasher for this test."""


@pytest.fixture(autouse=True)
def _fast_hashing(request, settings) -> None:
    if "real_argon2" not in request.fixturenames:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_account(db) -> Callable[..., object]:
    def make(email: str = "owner@example.org", *, confirmed: bool = True, password=PASSWORD):
        user = get_user_model().objects.create_user(username=email, email=email, password=password)
        Account.objects.create(
            user=user, kind=Account.Kind.PATIENT, email_confirmed_at=now() if confirmed else None
        )
        return user

    return make


@pytest.fixture
def owner(make_account):
    return make_account()


@pytest.fixture
def throttle_calls(monkeypatch) -> list[tuple[str, dict]]:
    """Throttle always allows, and every call is kept: for suites that make many requests
    from one address, and to see what would be counted."""
    calls: list[tuple[str, dict]] = []

    def check(request, **kwargs):
        calls.append(("check", kwargs))
        return throttle.Verdict(True)

    def record(request, **kwargs):
        calls.append(("record", kwargs))

    monkeypatch.setattr(throttle, "check", check)
    monkeypatch.setattr(throttle, "record", record)
    return calls


def log_in(client: Client, email: str, password: str = PASSWORD) -> None:
    """The real login page, so the session is recorded as every login's is."""
    response = client.post(reverse("web:login"), {"username": email, "password": password})
    assert response.status_code == 302, response.content[:300]
    assert "_auth_user_id" in client.session


def link_in(message: mail.EmailMessage) -> str:
    """The path of the one HealthSpace link in an email that carries a token."""
    paths = re.findall(r"https?://[^/\s]+(/account/(?:confirm|password/reset)/\S+/)", message.body)
    assert len(paths) == 1, message.body
    return paths[0]
