"""Second factors: authenticator apps (TOTP), recovery codes and passkeys.

Every code or passkey tried is counted by the shared throttle (kind ``second-factor``,
identified by the account's email): the first 5 wrong tries cost nothing, then each waits
longer, and 10 lock the account (see ``sessions.throttle``). A TOTP code works once: the
device remembers the last time step used and refuses that step and every earlier one.
Recovery codes are kept only as keyed hashes (the vault's blind-index key) and are deleted
when used. Adding or removing a factor emails the owner (no clinical content) so that a
factor added by someone else does not go unnoticed.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from base64 import b32decode, b32encode
from binascii import unhexlify
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import segno
from django.contrib.auth import authenticate
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django_otp.oath import hotp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthspace.accounts import login as login_flow
from healthspace.accounts.factors import guards
from healthspace.accounts.factors import webauthn as ceremony
from healthspace.accounts.models import Passkey
from healthspace.accounts.sessions import throttle
from healthspace.accounts.sessions.services import session_step_up
from healthspace.core import clock
from healthspace.vault.services import index

logger = logging.getLogger(__name__)

KIND = "second-factor"
ISSUER = "HealthSpace"
TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_TOLERANCE = 1  # one step either side: phones whose clocks are a little out still work
UNCONFIRMED_MAX_AGE = timedelta(minutes=30)
RECOVERY_CODE_COUNT = 10
# 31 symbols without 0/o, 1/l/i: read off paper without mistakes. 10 symbols = 49 bits,
# plenty for a code that works once, is throttled and is stored only as a keyed hash.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
REAUTH_MAX_SECONDS = 600  # ASVS 7.5.1: the password again if the login is older
RECOVERY_DEVICE_NAME = "Recovery codes"
DEFAULT_APP_NAME = "Authenticator app"
DEFAULT_PASSKEY_NAME = "Passkey"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # for the attempt log and the page: wrong-code, throttled, ...
    retry_after: int = 0
    recovery_codes: list[str] = field(default_factory=list)  # new codes to show once


def _unix_time() -> float:
    return clock.now().timestamp()


def _identifier(user) -> str:
    return user.get_username()


def _throttled(request: HttpRequest, user) -> Outcome | None:
    verdict = throttle.check(request, kind=KIND, identifier=_identifier(user))
    if verdict.allowed:
        return None
    # Logged, but not counted as a guess: waiting must always work (see throttle).
    _record(request, user, ok=False, reason=throttle.THROTTLED)
    return Outcome(False, "throttled", verdict.retry_after_seconds)


def _record(request: HttpRequest, user, *, ok: bool, reason: str) -> None:
    throttle.record(
        request, kind=KIND, identifier=_identifier(user), user=user, success=ok, reason=reason
    )


def _tell_owner(user, subject: str, body: str) -> None:
    """Every change to how an account logs in is audited (in the caller's transaction) and
    emailed to its owner."""
    from healthspace.access.policy import Action
    from healthspace.accounts.actors import actor_for_user
    from healthspace.accounts.models import PatientLink
    from healthspace.audit.services import audit_record

    with transaction.atomic():
        audit_record(
            actor=actor_for_user(user),
            action=Action.ACCOUNT_SECOND_FACTOR_CHANGED,
            patient_id=PatientLink.objects.filter(user=user)
            .values_list("patient_id", flat=True)
            .first(),
            outcome="success",
            reason=subject[:200],
        )
    address = user.email or user.get_username()
    if "@" not in address:
        return
    text = (
        f"{body}\n\nIf this was you, you need do nothing.\n"
        "If it was not you, log in, change your password and remove any way of logging in "
        "that you do not recognise (Your account > Two-factor authentication)."
    )
    transaction.on_commit(lambda: send_mail(subject, text, None, [address]))


# --- Authenticator apps (TOTP) ------------------------------------------------------------


def totp_secret_b32(device: TOTPDevice) -> str:
    return b32encode(unhexlify(device.key)).decode().rstrip("=")


def totp_secret_grouped(device: TOTPDevice) -> str:
    """The secret in groups of four, as people type it into an app by hand."""
    secret = totp_secret_b32(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_config_url(device: TOTPDevice) -> str:
    label = quote(f"{ISSUER}:{device.user.get_username()}")
    params = urlencode(
        {
            "secret": totp_secret_b32(device),
            "issuer": ISSUER,
            "algorithm": "SHA1",
            "digits": TOTP_DIGITS,
            "period": TOTP_STEP,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{params}"


def totp_qr_svg(device: TOTPDevice) -> str:
    """Inline SVG (no image service sees the secret); dark on white for any theme."""
    return segno.make(totp_config_url(device), error="m").svg_inline(
        scale=5, dark="#000", light="#fff", border=4, omitsize=False
    )


def totp_device_start(*, user) -> TOTPDevice:
    """The unconfirmed device being set up: reused while the person scans it, replaced
    once stale, so that a secret shown long ago cannot be confirmed later."""
    with transaction.atomic():
        stale_before = clock.now() - UNCONFIRMED_MAX_AGE
        TOTPDevice.objects.filter(
            user_id=user.pk, confirmed=False, created_at__lt=stale_before
        ).delete()
        device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("-id").first()
        if device is None:
            device = TOTPDevice.objects.create(
                user=user,
                name=DEFAULT_APP_NAME,
                confirmed=False,
                step=TOTP_STEP,
                digits=TOTP_DIGITS,
                tolerance=TOTP_TOLERANCE,
                drift=0,
            )
    return device


def normalise_code(value: str) -> str:
    return "".join(ch for ch in value if ch not in " -\t")


def _totp_step(device: TOTPDevice, token: str, at: float) -> tuple[int | None, bool]:
    """(matching time step not used before, whether the code was a replay)."""
    key = device.bin_key
    now_t = int((at - device.t0) // device.step)
    replay = False
    # Drift stays 0: the window is exactly one step either side of our clock, as documented.
    for t in range(now_t - TOTP_TOLERANCE, now_t + TOTP_TOLERANCE + 1):
        expected = f"{hotp(key, t, device.digits):0{device.digits}d}"
        if hmac.compare_digest(expected, token):
            if t > device.last_t:
                return t, False
            replay = True
    return None, replay


def totp_verify(*, request: HttpRequest, user, token: str) -> Outcome:
    """A code from one of the user's confirmed apps, at most once."""
    refused = _throttled(request, user)
    if refused:
        return refused
    token = normalise_code(token)
    matched, replay = False, False
    with transaction.atomic():
        # Locked: two requests with the same code at once must not both pass.
        devices = list(
            TOTPDevice.objects.select_for_update().filter(user_id=user.pk, confirmed=True)
        )
        at = _unix_time()
        for device in devices:
            t, was_replay = _totp_step(device, token, at)
            replay = replay or was_replay
            if t is not None:
                device.last_t = t
                device.last_used_at = clock.now()
                device.save(update_fields=["last_t", "last_used_at"])
                matched = True
                break
    reason = "" if matched else ("replayed-code" if replay else "wrong-code")
    _record(request, user, ok=matched, reason=reason)
    return Outcome(matched, reason)


def totp_device_confirm(
    *, request: HttpRequest, user, device_id: int, token: str, name: str
) -> Outcome:
    """Turn the device being set up into a factor once a code from the app matches."""
    refused = _throttled(request, user)
    if refused:
        return refused
    token = normalise_code(token)
    codes: list[str] = []
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, pk=device_id, confirmed=False)
            .first()
        )
        if device is None or (device.created_at or clock.now()) < clock.now() - UNCONFIRMED_MAX_AGE:
            return Outcome(False, "setup-expired")
        t, _ = _totp_step(device, token, _unix_time())
        if t is not None:
            first = not guards.has_confirmed_factor(user)
            device.confirmed = True
            device.name = (name or DEFAULT_APP_NAME).strip()[:64]
            device.last_t = t
            device.last_used_at = clock.now()
            device.save()
            if first and not guards.is_staff_account(user):
                codes = recovery_codes_generate(user=user)
            _tell_owner(
                user,
                "An authenticator app was added to your HealthSpace account",
                "An authenticator app was added as a way to log in to your HealthSpace account.",
            )
            logger.info("second factor added: totp device %s of user %s", device.pk, user.pk)
    _record(request, user, ok=t is not None, reason="" if t is not None else "wrong-code")
    return Outcome(t is not None, "" if t is not None else "wrong-code", recovery_codes=codes)


def totp_device_remove(*, user, device_id: int) -> bool:
    with transaction.atomic():
        deleted, _ = TOTPDevice.objects.filter(user_id=user.pk, pk=device_id).delete()
        if deleted:
            _after_removal(user, "An authenticator app was removed")
    return bool(deleted)


def totp_demo_device(user, secret_b32: str, *, name: str = "Demo authenticator") -> TOTPDevice:
    """DEMO ONLY (``healthspace up``): a confirmed app with a known secret, so the printed
    secret works in any authenticator app. Never call this for a real account."""
    padded = secret_b32.strip().replace(" ", "").upper()
    padded += "=" * (-len(padded) % 8)
    key_hex = b32decode(padded).hex()
    with transaction.atomic():
        device, _ = TOTPDevice.objects.update_or_create(
            user=user,
            name=name,
            defaults={
                "key": key_hex,
                "confirmed": True,
                "step": TOTP_STEP,
                "digits": TOTP_DIGITS,
                "tolerance": TOTP_TOLERANCE,
                "drift": 0,
            },
        )
    return device


# --- Recovery codes -------------------------------------------------------------------------


def _recovery_hash(user, code: str) -> str:
    # StaticToken.token holds 16 characters: 64 bits of a keyed hash, bound to the user.
    return index("recovery-code", f"{user.pk}|{code}")[:16]


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def recovery_codes_generate(*, user) -> list[str]:
    """Ten new one-time codes; any earlier ones stop working. Returned once, never stored."""
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(
            user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
        )
        StaticToken.objects.filter(device__user_id=user.pk).delete()
        StaticToken.objects.bulk_create(
            StaticToken(device=device, token=_recovery_hash(user, c)) for c in codes
        )
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def recovery_codes_regenerate(*, user) -> list[str]:
    with transaction.atomic():
        codes = recovery_codes_generate(user=user)
        _tell_owner(
            user,
            "New recovery codes for your HealthSpace account",
            "New recovery codes were made for your HealthSpace account. The old ones no longer work.",
        )
    return codes


def recovery_code_use(*, request: HttpRequest, user, code: str) -> Outcome:
    refused = _throttled(request, user)
    if refused:
        return refused
    with transaction.atomic():
        token = (
            StaticToken.objects.select_for_update()
            .filter(device__user_id=user.pk, token=_recovery_hash(user, _normalise_recovery(code)))
            .first()
        )
        if token is not None:
            token.delete()
            left = StaticToken.objects.filter(device__user_id=user.pk).count()
            _tell_owner(
                user,
                "A recovery code was used to log in to HealthSpace",
                f"A recovery code was used to log in to your HealthSpace account. "
                f"You have {left} left.",
            )
    ok = token is not None
    _record(request, user, ok=ok, reason="" if ok else "wrong-recovery-code")
    return Outcome(ok, "" if ok else "wrong-code")


# --- Passkeys -------------------------------------------------------------------------------


def passkey_registration_begin(*, request: HttpRequest, user) -> dict[str, Any]:
    existing = list(Passkey.objects.filter(user_id=user.pk))
    return ceremony.registration_options(
        request, user=user, existing=existing, staff=guards.is_staff_account(user)
    )


def passkey_registration_finish(
    *, request: HttpRequest, user, credential: dict[str, Any], name: str
) -> Outcome:
    staff = guards.is_staff_account(user)
    try:
        new = ceremony.registration_verify(request, user=user, credential=credential, staff=staff)
    except ceremony.CeremonyError as exc:
        logger.info("passkey registration refused for user %s: %s", user.pk, exc.reason)
        return Outcome(False, exc.reason)
    codes: list[str] = []
    with transaction.atomic():
        if Passkey.objects.filter(credential_id=new.credential_id).exists():
            return Outcome(False, "already-registered")
        first = not guards.has_confirmed_factor(user)
        passkey = Passkey.objects.create(
            user=user,
            name=(name or DEFAULT_PASSKEY_NAME).strip()[:64],
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            transports=new.transports,
            aaguid=new.aaguid,
            user_verified=new.user_verified,
            created_at=clock.now(),
        )
        if first and not staff:
            codes = recovery_codes_generate(user=user)
        _tell_owner(
            user,
            "A passkey was added to your HealthSpace account",
            "A passkey was added as a way to log in to your HealthSpace account.",
        )
        logger.info("second factor added: passkey %s of user %s", passkey.pk, user.pk)
    return Outcome(True, recovery_codes=codes)


def passkey_authentication_begin(*, request: HttpRequest, user) -> dict[str, Any] | None:
    passkeys = list(Passkey.objects.filter(user_id=user.pk))
    if not passkeys:
        return None
    return ceremony.authentication_options(
        request, user=user, passkeys=passkeys, staff=guards.is_staff_account(user)
    )


def passkey_authentication_finish(
    *, request: HttpRequest, user, credential: dict[str, Any]
) -> Outcome:
    refused = _throttled(request, user)
    if refused:
        # The challenge is spent either way: a throttled attempt must start again.
        request.session.pop(ceremony.CHALLENGE_SESSION_KEY, None)
        return refused
    staff = guards.is_staff_account(user)
    reason = ""
    try:
        assertion = ceremony.parse_assertion(credential)
        with transaction.atomic():
            passkey = (
                Passkey.objects.select_for_update()
                .filter(user_id=user.pk, credential_id=ceremony.credential_id_of(assertion))
                .first()
            )
            if passkey is None:
                request.session.pop(ceremony.CHALLENGE_SESSION_KEY, None)
                raise ceremony.CeremonyError("unknown-credential")
            result = ceremony.authentication_verify(
                request,
                user=user,
                assertion=assertion,
                public_key=bytes(passkey.public_key),
                sign_count=passkey.sign_count,
                staff=staff,
            )
            passkey.sign_count = result.new_sign_count
            passkey.last_used_at = clock.now()
            passkey.save(update_fields=["sign_count", "last_used_at"])
    except ceremony.CeremonyError as exc:
        reason = exc.reason
        if reason == "sign-count-regression":
            # Possibly a cloned authenticator: worth an operator's attention.
            logger.warning("passkey sign count went backwards for user %s", user.pk)
    _record(request, user, ok=not reason, reason=reason)
    return Outcome(not reason, reason)


def passkey_rename(*, user, passkey_id: int, name: str) -> bool:
    name = name.strip()[:64]
    if not name:
        return False
    return bool(Passkey.objects.filter(user_id=user.pk, pk=passkey_id).update(name=name))


def passkey_remove(*, user, passkey_id: int) -> Outcome:
    with transaction.atomic():
        passkeys = list(Passkey.objects.select_for_update().filter(user_id=user.pk))
        target = next((p for p in passkeys if p.pk == passkey_id), None)
        if target is None:
            return Outcome(False, "not-found")
        if len(passkeys) == 1 and guards.is_staff_account(user):
            # Staff log in only with a passkey: removing the last one would lock them out.
            return Outcome(False, "last-staff-passkey")
        target.delete()
        _after_removal(user, "A passkey was removed")
    return Outcome(True)


def _after_removal(user, what: str) -> None:
    if not guards.has_confirmed_factor(user):
        # Recovery codes stand in for a lost factor; with none left they would be a
        # factor of their own, so they go too.
        StaticToken.objects.filter(device__user_id=user.pk).delete()
    _tell_owner(
        user,
        f"{what} from your HealthSpace account",
        f"{what} from your HealthSpace account: it can no longer be used to log in.",
    )
    logger.info("second factor removed from user %s", user.pk)


# --- The login's second step and re-authentication ---------------------------------------------


def second_factor_complete(*, request: HttpRequest, user, kind: str) -> None:
    """The factor passed. At login: log in through login_complete (which rotates the
    session key and records the session with the factor). Already logged in (a step-up
    before the record or a factor change): the session gains the factor; its key was
    rotated again and the session row records the factor."""
    if request.user.is_authenticated and request.user.pk == user.pk:
        session_step_up(request, second_factor=kind)
    else:
        login_flow.login_complete(request, user, second_factor=kind)
        request.session[guards.SESSION_FACTOR] = kind
    request.session[guards.SESSION_AUTH_AT] = time.time()


def login_without_factor(*, request: HttpRequest, user) -> None:
    """A pending user who has no factor yet (a verified patient's first login, or staff
    before their passkey): logged in only to set one up. The record page and staff pages
    still refuse this session until a factor is added."""
    password_at = request.session.get(login_flow.PENDING_AT) or time.time()
    login_flow.login_complete(request, user, second_factor="")
    request.session[guards.SESSION_AUTH_AT] = password_at


def factor_added_in_session(*, request: HttpRequest, kind: str) -> None:
    """Setting up a factor proves it is in the person's hands: this session counts as
    having passed it (the session keeps the strongest proof it has)."""
    if not guards.session_factor(request):
        session_step_up(request, second_factor=kind)


def password_recently_confirmed(request: HttpRequest) -> bool:
    at = request.session.get(guards.SESSION_AUTH_AT)
    return isinstance(at, int | float) and 0 <= time.time() - at <= REAUTH_MAX_SECONDS


def password_reconfirm(*, request: HttpRequest, user, password: str) -> Outcome:
    """Ask for the password again before a factor is added or removed (ASVS 7.5.1).
    Counted as a password attempt: the same throttle as the login page."""
    identifier = _identifier(user)
    verdict = throttle.check(request, kind="login", identifier=identifier)
    if not verdict.allowed:
        return Outcome(False, "throttled", verdict.retry_after_seconds)
    checked = authenticate(request, username=identifier, password=password)
    ok = checked is not None and checked.pk == user.pk
    throttle.record(
        request,
        kind="login",
        identifier=identifier,
        user=user,
        success=ok,
        reason="" if ok else "bad-credentials",
    )
    if ok:
        request.session[guards.SESSION_AUTH_AT] = time.time()
    return Outcome(ok, "" if ok else "wrong-password")
