"""Authenticator apps (TOTP, RFC 6238): 30-second steps, 6 digits, one step of tolerance
either side, each code used at most once, wrong codes throttled."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthspace.accounts.factors import services
from healthspace.accounts.models import AuthAttempt
from healthspace.accounts.sessions import throttle

pytestmark = pytest.mark.django_db


def _app(user, fake_clock) -> tuple[TOTPDevice, pyotp.TOTP]:
    device = services.totp_device_start(user=user)
    device.confirmed = True
    device.save()
    return device, pyotp.TOTP(services.totp_secret_b32(device))


def _code(totp: pyotp.TOTP, fake_clock, steps: int = 0) -> str:
    return totp.at(fake_clock.moment.timestamp() + steps * 30)


@pytest.mark.parametrize(
    ("steps", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False), (-20, False)],
)
def test_a_code_is_accepted_only_within_one_step_of_our_clock(
    basic_user, fake_clock, request_for, steps, accepted
):
    _, totp = _app(basic_user, fake_clock)
    outcome = services.totp_verify(
        request=request_for(), user=basic_user, token=_code(totp, fake_clock, steps)
    )
    assert outcome.ok is accepted


def test_a_code_works_once_even_within_its_own_30_seconds(basic_user, fake_clock, request_for):
    _, totp = _app(basic_user, fake_clock)
    code = _code(totp, fake_clock)
    assert services.totp_verify(request=request_for(), user=basic_user, token=code).ok
    fake_clock.advance(5)
    replay = services.totp_verify(request=request_for(), user=basic_user, token=code)
    assert not replay.ok and replay.reason == "replayed-code"
    fake_clock.advance(30)
    assert services.totp_verify(
        request=request_for(), user=basic_user, token=_code(totp, fake_clock)
    ).ok


def test_after_a_code_is_used_no_earlier_code_works(basic_user, fake_clock, request_for):
    _, totp = _app(basic_user, fake_clock)
    later = _code(totp, fake_clock, 1)
    earlier = _code(totp, fake_clock, 0)
    assert services.totp_verify(request=request_for(), user=basic_user, token=later).ok
    assert not services.totp_verify(request=request_for(), user=basic_user, token=earlier).ok


def test_codes_are_read_with_spaces_and_dashes(basic_user, fake_clock, request_for):
    _, totp = _app(basic_user, fake_clock)
    code = _code(totp, fake_clock)
    assert services.totp_verify(
        request=request_for(), user=basic_user, token=f" {code[:3]} -{code[3:]} "
    ).ok


def test_an_unconfirmed_app_is_not_a_way_to_log_in(basic_user, fake_clock, request_for):
    device = services.totp_device_start(user=basic_user)
    totp = pyotp.TOTP(services.totp_secret_b32(device))
    assert not services.totp_verify(
        request=request_for(), user=basic_user, token=_code(totp, fake_clock)
    ).ok


def test_five_wrong_codes_are_evaluated_then_even_a_right_code_is_throttled(
    basic_user, fake_clock, request_for
):
    _, totp = _app(basic_user, fake_clock)
    right = _code(totp, fake_clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(throttle.ACCOUNT_FREE_FAILURES):
        outcome = services.totp_verify(request=request_for(), user=basic_user, token=wrong)
        assert (outcome.ok, outcome.reason) == (False, "wrong-code")
    refused = services.totp_verify(request=request_for(), user=basic_user, token=right)
    assert (refused.ok, refused.reason) == (False, "throttled")
    assert refused.retry_after >= 1
    attempts = AuthAttempt.objects.filter(kind="second-factor", user=basic_user)
    assert attempts.filter(success=False).exclude(reason=throttle.THROTTLED).count() == 5
    # The refused attempt was not evaluated: the right code was not used up.
    assert TOTPDevice.objects.get(user=basic_user).last_t == -1


def test_wrong_codes_count_against_the_account_email_with_the_second_factor_throttle(
    basic_user, fake_clock, request_for
):
    _app(basic_user, fake_clock)
    for _ in range(throttle.ACCOUNT_FREE_FAILURES):
        services.totp_verify(request=request_for(), user=basic_user, token="000000")
    verdict = throttle.check(request_for(), kind="second-factor", identifier=basic_user.username)
    assert not verdict.allowed
    # Passwords are counted apart: the password step is not slowed by wrong codes.
    assert throttle.check(request_for(), kind="login", identifier=basic_user.username).allowed


def test_setting_up_an_app_needs_a_code_from_it_and_gives_recovery_codes_once(
    basic_user, fake_clock, request_for
):
    device = services.totp_device_start(user=basic_user)
    assert services.totp_device_start(user=basic_user).pk == device.pk  # same while scanning
    totp = pyotp.TOTP(services.totp_secret_b32(device))

    wrong = services.totp_device_confirm(
        request=request_for(), user=basic_user, device_id=device.pk, token="123456", name="x"
    )
    assert not wrong.ok and not TOTPDevice.objects.get(pk=device.pk).confirmed

    first = services.totp_device_confirm(
        request=request_for(),
        user=basic_user,
        device_id=device.pk,
        token=_code(totp, fake_clock),
        name="My phone",
    )
    assert first.ok and len(first.recovery_codes) == services.RECOVERY_CODE_COUNT
    device.refresh_from_db()
    assert device.confirmed and device.name == "My phone"
    # The code used to confirm cannot log in again.
    assert not services.totp_verify(
        request=request_for(), user=basic_user, token=_code(totp, fake_clock)
    ).ok

    second_device = services.totp_device_start(user=basic_user)
    second = services.totp_device_confirm(
        request=request_for(),
        user=basic_user,
        device_id=second_device.pk,
        token=pyotp.TOTP(services.totp_secret_b32(second_device)).at(fake_clock.moment.timestamp()),
        name="",
    )
    assert second.ok and second.recovery_codes == []  # only with the first factor


def test_a_stale_unconfirmed_app_is_replaced_and_cannot_be_confirmed(
    basic_user, fake_clock, request_for
):
    old = services.totp_device_start(user=basic_user)
    totp = pyotp.TOTP(services.totp_secret_b32(old))
    fake_clock.advance(31 * 60)
    outcome = services.totp_device_confirm(
        request=request_for(),
        user=basic_user,
        device_id=old.pk,
        token=_code(totp, fake_clock),
        name="",
    )
    assert (outcome.ok, outcome.reason) == (False, "setup-expired")
    assert services.totp_device_start(user=basic_user).pk != old.pk
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()


def test_another_users_unconfirmed_app_cannot_be_confirmed(
    basic_user, staff_user, fake_clock, request_for
):
    theirs = services.totp_device_start(user=staff_user)
    totp = pyotp.TOTP(services.totp_secret_b32(theirs))
    outcome = services.totp_device_confirm(
        request=request_for(),
        user=basic_user,
        device_id=theirs.pk,
        token=_code(totp, fake_clock),
        name="",
    )
    assert not outcome.ok
    assert not TOTPDevice.objects.get(pk=theirs.pk).confirmed


def test_the_setup_link_and_qr_code_describe_a_standard_30_second_6_digit_app(
    basic_user, fake_clock
):
    device = services.totp_device_start(user=basic_user)
    url = urlparse(services.totp_config_url(device))
    query = parse_qs(url.query)
    assert url.scheme == "otpauth" and url.netloc == "totp"
    assert query["period"] == ["30"] and query["digits"] == ["6"]
    assert query["issuer"] == ["HealthSpace"]
    assert query["secret"] == [services.totp_secret_b32(device)]
    assert len(services.totp_secret_b32(device)) == 32  # 160-bit key
    svg = services.totp_qr_svg(device)
    assert svg.startswith("<svg") and "style=" not in svg  # passes style-src 'self'
    grouped = services.totp_secret_grouped(device)
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", grouped)


def test_the_demo_app_uses_the_printed_secret(basic_user, fake_clock, request_for):
    secret = pyotp.random_base32()
    services.totp_demo_device(basic_user, secret)
    services.totp_demo_device(basic_user, secret)  # idempotent
    assert TOTPDevice.objects.filter(user=basic_user, confirmed=True).count() == 1
    code = pyotp.TOTP(secret).at(fake_clock.moment.timestamp())
    assert services.totp_verify(request=request_for(), user=basic_user, token=code).ok
