"""Second-factor requirements, asked by login and by the record page.

Who must pass a second factor at login: anyone who has one, every verified patient (their
record is behind the login) and all staff. A verified patient sees the Summary Care Record
only in a session that passed a factor; staff only with a passkey (phishing-resistant).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthspace.accounts.actors import facts_for_request
from healthspace.accounts.models import Account, Passkey, PatientLink

# Session keys. ``login_complete`` stores the factor used; the factor pages store it too
# (after login_complete), so the rule holds whichever lands first.
SESSION_FACTOR = "hs_second_factor"
# Unix time the password (or the password plus a factor) was last proven in this session:
# adding or removing a factor asks for the password again when this is older than
# REAUTH_MAX_SECONDS (ASVS 7.5.1).
SESSION_AUTH_AT = "hs_auth_at"
FACTORS = frozenset({"totp", "passkey", "recovery"})


def is_staff_account(user) -> bool:
    return Account.objects.filter(user_id=user.pk, kind=Account.Kind.STAFF).exists()


def is_verified_patient(user) -> bool:
    return PatientLink.objects.filter(user_id=user.pk).exists()


def has_confirmed_factor(user) -> bool:
    """A confirmed authenticator app or a passkey. Recovery codes alone are not a factor:
    they only stand in for one that was lost."""
    return (
        Passkey.objects.filter(user_id=user.pk).exists()
        or TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()
    )


def has_usable_factor(user) -> bool:
    """A factor this user may log in with: for staff only a passkey counts."""
    if is_staff_account(user):
        return Passkey.objects.filter(user_id=user.pk).exists()
    return has_confirmed_factor(user)


def needs_second_factor_step(user) -> bool:
    """True when the user must pass a second factor at login (has one, is verified, or staff)."""
    return has_confirmed_factor(user) or is_staff_account(user) or is_verified_patient(user)


def second_factor_url() -> str:
    return reverse("accounts:two-factor-verify")


def session_factor(request: HttpRequest) -> str:
    """The second factor this session passed ('' when none)."""
    value = request.session.get(SESSION_FACTOR) or ""
    return value if value in FACTORS else ""


def scr_allowed_for_session(request: HttpRequest) -> bool:
    """Verified accounts see the SCR only with a second factor set up and used this session."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    facts = facts_for_request(request)  # the page's one query for its user (actors.py)
    if not facts.verified:
        # No linked record: the record page has nothing to show them anyway.
        return True
    return bool(session_factor(request)) and facts.has_factor


def staff_allowed_for_session(request: HttpRequest) -> bool:
    """Staff pages: a staff session counts only once it passed a passkey (a staff login
    without one exists only to register a passkey)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return session_factor(request) == "passkey"
