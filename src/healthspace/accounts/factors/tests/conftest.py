"""Users for the second-factor tests: few, and hashed with a fast hasher (the password
hashing is not what these tests are about)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse

from healthspace.accounts.models import Account, PatientLink
from healthspace.core import clock
from healthspace.records.models import Patient

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class FakeClock:
    def __init__(self, moment) -> None:
        self.moment = moment

    def __call__(self):
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    """Moves the factors' clock (TOTP time steps), not the throttle's."""
    fake = FakeClock(clock.now())
    monkeypatch.setattr(clock, "now", fake)
    return fake


def _user(email: str, *, kind: str = Account.Kind.PATIENT):
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    Account.objects.create(user=user, kind=kind, email_confirmed_at=clock.now())
    return user


@pytest.fixture
def basic_user(db):
    """An account with no linked record."""
    return _user("basic@example.org")


@pytest.fixture
def patient_user(db):
    """A verified account: linked to a (minimal) patient record."""
    user = _user("patient@example.org")
    patient = Patient.objects.create(
        nhs_number="9999999999", resource=b"", content_hash="x", source_system="test"
    )
    PatientLink.objects.create(
        user=user, patient=patient, verified_at=clock.now(), verified_by="test", method="demo"
    )
    return user


@pytest.fixture
def staff_user(db):
    return _user("staff@example.org", kind=Account.Kind.STAFF)


@pytest.fixture
def request_for(rf: RequestFactory) -> Callable:
    """A request as the services see it (the throttle reads the client address)."""

    def make(address: str = "203.0.113.9"):
        request = rf.post("/", REMOTE_ADDR=address)
        from django.contrib.sessions.backends.db import SessionStore

        request.session = SessionStore()
        return request

    return make


def password_step(client: Client, user, *, next_url: str = "") -> str:
    """Log in step one; returns where the login page sent the browser."""
    data = {"username": user.username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post(reverse("web:login"), data)
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def scr_allowed(client: Client, user) -> bool:
    """What the record page's guard says of this client's session."""
    from healthspace.accounts.factors import guards

    request = RequestFactory().get("/record/")
    request.user, request.session = user, client.session
    return guards.scr_allowed_for_session(request)
