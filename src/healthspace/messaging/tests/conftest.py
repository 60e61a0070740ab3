"""Fixtures of the Communicator's tests: two verified patients at the demo practice, the
practice's clinician and clerk, staff elsewhere, and signed-in clients for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from healthspace.access.roles import Role
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.messaging import services
from healthspace.ops.demo import DEMO_PRACTICE, ensure_demo_logins
from healthspace.staff.testing import make_staff_user


@dataclass
class Person:
    user: Any

    @property
    def actor(self):
        # fresh from the database: a link or group changed by the test counts at once
        return actor_for_user(get_user_model().objects.get(pk=self.user.pk))

    @property
    def patient_id(self):
        return self.actor.patient_id

    def client(self) -> Client:
        staff = self.actor.kind == "staff"
        return signed_in_client(self.user, second_factor="passkey" if staff else "totp")


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(synthetic_patients) -> dict[str, Person]:
    ensure_demo_logins(count=2)
    links = list(PatientLink.objects.select_related("user").order_by("user__username"))
    practice = DEMO_PRACTICE[0]
    return {
        "owner": Person(links[0].user),
        "other": Person(links[1].user),
        "clinician": Person(
            make_staff_user(Role.CLINICIAN, ods=practice, first="Asha", last="Patel")
        ),
        "clerk": Person(
            make_staff_user(Role.REGISTRATION_CLERK, ods=practice, first="Ben", last="Okafor")
        ),
        "elsewhere": Person(
            make_staff_user(Role.CLINICIAN, ods="RR801", first="Cara", last="Jones")
        ),
        "privacy": Person(
            make_staff_user(Role.PRIVACY_OFFICER, ods=practice, first="Dev", last="Shah")
        ),
        "operator": Person(make_staff_user(Role.OPERATOR, ods=practice, first="Eve", last="Long")),
    }


def open_thread(
    person: Person,
    subject: str = "Repeat prescription",
    body: str = "Please renew.",
    attachment=None,
):
    return services.thread_open_by_patient(
        actor=person.actor,
        user_id=person.user.pk,
        subject=subject,
        body=body,
        attachment=attachment,
    )
