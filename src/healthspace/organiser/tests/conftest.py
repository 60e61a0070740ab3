"""Fixtures of the organiser's tests: a verified patient, a basic account, their clients."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import Account, PatientLink, UserSession
from healthspace.accounts.sessions.services import describe_device, key_hash
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.core.clock import now
from healthspace.ops.demo import ensure_demo_logins


@dataclass
class Person:
    user: Any
    client: Client

    @property
    def actor(self):
        return actor_for_user(self.user)

    @property
    def owner_id(self) -> int:
        return self.user.pk


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def verified(synthetic_patients) -> Person:
    """A verified patient (linked to a synthetic record), signed in past TOTP."""
    ensure_demo_logins(count=1)
    link = PatientLink.objects.select_related("user").order_by("user__username").first()
    return Person(link.user, signed_in_client(link.user))


def make_basic(name: str = "basic") -> Person:
    user = get_user_model().objects.create(
        username=f"{name}@example.test", email=f"{name}@example.test"
    )
    Account.objects.create(user=user, kind=Account.Kind.PATIENT)
    return Person(user, password_only_client(user))


def password_only_client(user) -> Client:
    """A session after the password alone (a basic account without a second factor), as
    login_complete records it."""
    client = Client(HTTP_USER_AGENT="Firefox/140 (Linux)")
    client.force_login(user)
    moment = now()
    UserSession.objects.create(
        user=user,
        key_hash=key_hash(client.session.session_key),
        created_at=moment,
        last_seen_at=moment,
        expires_at=moment + timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS),
        device=describe_device("Firefox/140 (Linux)"),
        second_factor="",
    )
    return client


@pytest.fixture
def basic(db) -> Person:
    """A basic account: no record, no second factor (the organiser is theirs all the same)."""
    return make_basic()
