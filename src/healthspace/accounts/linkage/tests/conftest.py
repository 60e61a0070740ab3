"""Fixtures for verification: patients at two practices, clerks, a patient account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import RequestFactory

from healthspace.access.actors import Actor
from healthspace.access.roles import Role
from healthspace.accounts.linkage import services
from healthspace.accounts.login import login_complete
from healthspace.accounts.models import Account
from healthspace.accounts.sessions import throttle
from healthspace.core import nhs_numbers
from healthspace.core.clock import now
from healthspace.records import synthetic
from healthspace.records.models import Organisation, Patient


@dataclass
class SyntheticPatient:
    patient: Patient
    surname: str
    given: str
    practice_ods: str

    @property
    def birth_date(self) -> date:
        return self.patient.birth_date


@pytest.fixture
def patients(synthetic_patients) -> list[SyntheticPatient]:
    """Index 0 and 2 are registered at Y00001, index 1 at Y00002 (see records.synthetic)."""
    found = []
    for i in range(3):
        patient = Patient.objects.select_related("registered_practice").get(
            nhs_number=nhs_numbers.synthetic_for(f"synthetic:2026:{i}")
        )
        found.append(
            SyntheticPatient(
                patient=patient,
                surname=synthetic.FAMILY[i % 10],
                given=synthetic.GIVEN[(i * 3) % 10],
                practice_ods=patient.registered_practice.ods_code,
            )
        )
    assert [p.practice_ods for p in found] == ["Y00001", "Y00002", "Y00001"]
    return found


def make_user(email: str, *, kind: str = "patient", confirmed: bool = True, org=None, roles=()):
    # No password: hashing with Argon2 is slow, and these tests sign in directly.
    user = get_user_model().objects.create(username=email, email=email)
    Account.objects.create(
        user=user, kind=kind, email_confirmed_at=now() if confirmed else None, organisation=org
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def patient_user(db):
    return make_user("pat@example.org")


@pytest.fixture
def clerk(patients):
    return make_user(
        "clerk@riverside.example",
        kind="staff",
        org=Organisation.objects.get(ods_code="Y00001"),
        roles=[Role.REGISTRATION_CLERK],
    )


@pytest.fixture
def other_clerk(patients):
    return make_user(
        "clerk@hillview.example",
        kind="staff",
        org=Organisation.objects.get(ods_code="Y00002"),
        roles=[Role.REGISTRATION_CLERK],
    )


@pytest.fixture
def sign_in():
    """Log a user in as the login page does (login_complete), so the session is recorded."""

    def do(client, user, second_factor: str | None = None) -> None:
        # Patients have an authenticator app and staff a passkey, and the session passed it:
        # the pages here require that (second factors have their own tests).
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from healthspace.accounts.models import Account, Passkey
        from healthspace.core.clock import now

        staff = Account.objects.filter(user=user, kind=Account.Kind.STAFF).exists()
        if second_factor is None:
            second_factor = "passkey" if staff else "totp"
        if second_factor == "passkey":
            Passkey.objects.get_or_create(
                user=user,
                name="Test key",
                defaults={
                    "credential_id": f"test-{user.pk}",
                    "public_key": b"k",
                    "created_at": now(),
                },
            )
        elif second_factor == "totp":
            TOTPDevice.objects.get_or_create(user=user, defaults={"name": "App", "confirmed": True})
        request = RequestFactory().get("/")
        request.session = import_module(settings.SESSION_ENGINE).SessionStore()
        login_complete(request, user, second_factor=second_factor)
        request.session.save()
        client.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key

    return do


@pytest.fixture
def throttle_calls(monkeypatch) -> dict[str, list[dict[str, Any]]]:
    """The throttle is someone else's: record what we ask of it, and always allow."""
    calls: dict[str, list[dict[str, Any]]] = {"check": [], "record": []}

    def check(request, **kwargs):
        calls["check"].append(kwargs)
        return throttle.Verdict(True)

    def record(request, **kwargs):
        calls["record"].append(kwargs)

    monkeypatch.setattr(throttle, "check", check)
    monkeypatch.setattr(throttle, "record", record)
    return calls


@pytest.fixture
def issue():
    """Issue linkage details as the operator's command does."""

    def do(patient: Patient) -> services.IssuedLinkage:
        return services.linkage_key_issue(
            actor=Actor.system(services.CLI_PURPOSE), patient_id=patient.id
        )

    return do
