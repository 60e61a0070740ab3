"""Recovery codes: ten, each works once, kept only as keyed hashes, replaced on request."""

from __future__ import annotations

import re

import pytest
from django_otp.plugins.otp_static.models import StaticToken

from healthspace.accounts.factors import services

pytestmark = pytest.mark.django_db


def test_ten_different_codes_in_a_readable_format(basic_user):
    codes = services.recovery_codes_generate(user=basic_user)
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code)
        assert not set(code) & set("01ilo")  # nothing to misread


def test_each_code_works_once(basic_user, request_for):
    codes = services.recovery_codes_generate(user=basic_user)
    assert services.recovery_code_use(request=request_for(), user=basic_user, code=codes[3]).ok
    again = services.recovery_code_use(request=request_for(), user=basic_user, code=codes[3])
    assert not again.ok
    assert StaticToken.objects.filter(device__user=basic_user).count() == 9
    assert services.recovery_code_use(request=request_for(), user=basic_user, code=codes[4]).ok


@pytest.mark.parametrize(
    "typed", [lambda c: c, lambda c: c.upper(), lambda c: c.replace("-", ""), lambda c: f" {c} "]
)
def test_codes_are_accepted_as_people_type_them(basic_user, request_for, typed):
    code = services.recovery_codes_generate(user=basic_user)[0]
    assert services.recovery_code_use(request=request_for(), user=basic_user, code=typed(code)).ok


def test_new_codes_replace_the_old_ones(basic_user, request_for):
    old = services.recovery_codes_generate(user=basic_user)
    new = services.recovery_codes_regenerate(user=basic_user)
    assert not services.recovery_code_use(request=request_for(), user=basic_user, code=old[0]).ok
    assert services.recovery_code_use(request=request_for(), user=basic_user, code=new[0]).ok


def test_codes_are_not_stored_in_the_clear(basic_user):
    codes = services.recovery_codes_generate(user=basic_user)
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored


def test_one_users_code_does_not_work_for_another(basic_user, staff_user, request_for):
    theirs = services.recovery_codes_generate(user=staff_user)
    services.recovery_codes_generate(user=basic_user)
    assert not services.recovery_code_use(request=request_for(), user=basic_user, code=theirs[0]).ok


def test_wrong_codes_are_throttled(basic_user, request_for):
    codes = services.recovery_codes_generate(user=basic_user)
    for _ in range(5):
        services.recovery_code_use(request=request_for(), user=basic_user, code="aaaaa-aaaaa")
    refused = services.recovery_code_use(request=request_for(), user=basic_user, code=codes[0])
    assert (refused.ok, refused.reason) == (False, "throttled")


def test_every_change_to_the_second_factors_is_audited(db):
    from django.contrib.auth import get_user_model

    from healthspace.accounts.factors import services
    from healthspace.audit.models import AuditEvent

    user = get_user_model().objects.create_user(username="a@example.org", email="a@example.org")
    services.recovery_codes_generate(user=user)
    services.recovery_codes_regenerate(user=user)
    events = AuditEvent.objects.filter(action="account.second-factor-changed")
    assert events.count() >= 1
    assert all(e.actor == f"patient:user:{user.pk}" for e in events)
