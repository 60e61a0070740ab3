"""Who must pass a second factor, and when a session may show the Summary Care Record."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from healthspace.accounts.factors import guards, services
from healthspace.accounts.models import Passkey
from healthspace.core import clock

pytestmark = pytest.mark.django_db


def _add_app(user, *, confirmed: bool = True) -> None:
    device = services.totp_device_start(user=user)
    device.confirmed = confirmed
    device.save()


def _add_passkey(user) -> None:
    Passkey.objects.create(
        user=user, name="k", credential_id=f"cred-{user.pk}", public_key=b"", created_at=clock.now()
    )


@pytest.mark.parametrize(
    ("who", "factor", "expected"),
    [
        ("basic", None, False),  # a plain account with nothing to protect beyond the password
        ("basic", "app-unconfirmed", False),  # set-up never finished
        ("basic", "app", True),
        ("basic", "passkey", True),
        ("patient", None, True),  # verified: their record is behind the login
        ("staff", None, True),  # staff always
    ],
)
def test_who_must_pass_a_second_factor_at_login(
    basic_user, patient_user, staff_user, who, factor, expected
):
    user = {"basic": basic_user, "patient": patient_user, "staff": staff_user}[who]
    if factor == "app":
        _add_app(user)
    elif factor == "app-unconfirmed":
        _add_app(user, confirmed=False)
    elif factor == "passkey":
        _add_passkey(user)
    assert guards.needs_second_factor_step(user) is expected


def test_the_second_factor_page_is_the_verify_step():
    assert guards.second_factor_url() == reverse("accounts:two-factor-verify")


@pytest.mark.parametrize(
    ("who", "has_factor", "session_factor", "allowed"),
    [
        ("patient", False, "", False),  # must set one up first
        ("patient", True, "", False),  # has one, but this session did not use it
        ("patient", False, "totp", False),  # used one that has since been removed
        ("patient", True, "totp", True),
        ("patient", True, "passkey", True),
        ("patient", True, "recovery", True),
        ("patient", True, "password", False),  # not a factor
        ("basic", False, "", True),  # no record to see: nothing to protect here
        ("anonymous", False, "", False),
    ],
)
def test_when_a_session_may_show_the_summary_care_record(
    rf, basic_user, patient_user, who, has_factor, session_factor, allowed
):
    request = rf.get("/record/")
    request.session = {guards.SESSION_FACTOR: session_factor}
    request.user = {"patient": patient_user, "basic": basic_user}.get(who) or AnonymousUser()
    if has_factor:
        _add_app(request.user)
    assert guards.scr_allowed_for_session(request) is allowed


@pytest.mark.parametrize(
    ("session_factor", "allowed"), [("passkey", True), ("totp", False), ("", False)]
)
def test_staff_sessions_count_only_with_a_passkey(rf, staff_user, session_factor, allowed):
    request = rf.get("/")
    request.session = {guards.SESSION_FACTOR: session_factor}
    request.user = staff_user
    assert guards.staff_allowed_for_session(request) is allowed
