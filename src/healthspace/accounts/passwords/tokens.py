"""The links we email: confirm an email address (24 hours) and reset a password (one hour).

Reset tokens are Django's: an HMAC over the user's id, password hash, last login and email
with a timestamp, so a token stops working once the password is set (single use), after
PASSWORD_RESET_TIMEOUT, or when the email address changes. Nothing is stored.

Confirmation tokens are signed and timestamped (``django.core.signing``) and carry a
fingerprint of the password hash and address, so a link confirms only the account as it
was when the link was sent: after a reset or a new password it no longer works.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

CONFIRM_MAX_AGE = timedelta(hours=24)
CONFIRM_SALT = "healthspace.accounts.passwords.confirm-email"


class ResetTokenGenerator(PasswordResetTokenGenerator):
    # Our own salt: a token made for another purpose can never reset a password.
    key_salt = "healthspace.accounts.passwords.ResetTokenGenerator"


reset_tokens = ResetTokenGenerator()


def reset_link_token(user) -> str:
    """One path segment: the user's id (base64) and Django's token, joined by a dot (a
    character neither uses)."""
    return f"{urlsafe_base64_encode(force_bytes(user.pk))}.{reset_tokens.make_token(user)}"


def reset_link_user(link_token: str):
    """The active user the link was made for, or None (forged, used, expired)."""
    uidb64, _, token = link_token.partition(".")
    try:
        pk = urlsafe_base64_decode(uidb64).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user = get_user_model().objects.filter(pk=pk, is_active=True).first() if pk.isdigit() else None
    if user is None or not token or not reset_tokens.check_token(user, token):
        return None
    return user


def _fingerprint(user) -> str:
    value = f"{user.pk}|{user.password}|{user.email}"
    return salted_hmac(CONFIRM_SALT, value, algorithm="sha256").hexdigest()[:24]


def confirm_token(user) -> str:
    return signing.dumps({"u": user.pk, "f": _fingerprint(user)}, salt=CONFIRM_SALT)


class ConfirmState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class ConfirmCheck:
    state: ConfirmState
    user: object | None = None


def confirm_token_check(token: str) -> ConfirmCheck:
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.SignatureExpired:
        return ConfirmCheck(ConfirmState.EXPIRED)
    except signing.BadSignature:
        return ConfirmCheck(ConfirmState.INVALID)
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return ConfirmCheck(ConfirmState.INVALID)
    user = get_user_model().objects.filter(pk=data["u"], is_active=True).first()
    if user is None or not constant_time_compare(str(data.get("f", "")), _fingerprint(user)):
        return ConfirmCheck(ConfirmState.INVALID)
    return ConfirmCheck(ConfirmState.VALID, user)
