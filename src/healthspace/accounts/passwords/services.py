"""Registration, email confirmation, change and reset of passwords.

Two rules shape this module:

* No account enumeration. Registering an address that already has an account, and asking
  for a reset of an address that has none, give the same page as the other case, send one
  email either way, and cost about the same (registration hashes the password once on
  both paths: Argon2id dominates the time of the request).
* A reset never logs anyone in, so it never gets round the second factor: the person
  logs in afterwards like any other time.

Requests that make us email an address (registration, reset) are throttled with the
"reset" kind, per address typed and per client, so nobody can flood someone's inbox.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from healthspace.accounts.models import Account
from healthspace.accounts.passwords import emails, tokens
from healthspace.accounts.sessions import services as sessions
from healthspace.accounts.sessions import throttle
from healthspace.core.clock import now

THROTTLE_KIND = "reset"


class RegistrationsClosed(Exception):
    pass


def normalise_identifier(email: str) -> str:
    # As accounts.login.normalise_identifier (not imported: login imports this module).
    return email.strip().lower()


def email_confirmed(user) -> bool:
    """May this user log in as far as email confirmation goes?

    False only for a patient account (the kind people register themselves) whose
    confirmation link has not been opened. Staff logins are made by an operator, who
    vouches for the person and gives them their set-up link; users without an Account row
    were made by an operator too (createsuperuser, the admin). Neither is held back here.
    """
    account = Account.objects.filter(user_id=user.pk).only("kind", "email_confirmed_at").first()
    if account is None or account.kind != Account.Kind.PATIENT:
        return True
    return account.email_confirmed_at is not None


def password_change_required(user) -> bool:
    """Set when misuse is suspected; the login flow sends such users to change it."""
    return Account.objects.filter(user_id=user.pk, password_change_required=True).exists()


# -- registration ----------------------------------------------------------------------


def account_register(request: HttpRequest, *, email: str, password: str) -> throttle.Verdict:
    """Create a basic (patient) account and email a confirmation link; if the address
    already has an account, email its owner instead. The caller shows the same page.

    Raises RegistrationsClosed once the operator has closed registrations
    (docs/lifecycle.md): nothing is created and nobody is emailed."""
    from healthspace.ops import lifecycle

    if not lifecycle.status(fresh=True).registrations_open:
        raise RegistrationsClosed("HealthSpace is not taking new accounts")
    identifier = normalise_identifier(email)
    verdict = throttle.check(request, kind=THROTTLE_KIND, identifier=identifier)
    if not verdict.allowed:
        return verdict
    users = get_user_model().objects
    existing = users.filter(username__iexact=identifier).first()
    if existing is None:
        try:
            with transaction.atomic():
                user = users.create_user(username=identifier, email=identifier, password=password)
                Account.objects.create(user=user, kind=Account.Kind.PATIENT)
        except IntegrityError:  # the same address registered at the same moment: it exists
            existing = users.filter(username__iexact=identifier).first()
        else:
            emails.send_confirm_email(request, user)
    if existing is not None:
        # The new-account path pays one Argon2id hash in create_user; pay it here too so
        # the time taken does not say whether the address is registered.
        make_password(password)
        emails.send_already_registered(request, existing, confirmed=email_confirmed(existing))
    throttle.record(
        request, kind=THROTTLE_KIND, identifier=identifier, success=False, reason="register"
    )
    return verdict


class ConfirmOutcome(enum.Enum):
    CONFIRMED = "confirmed"
    ALREADY = "already-confirmed"
    EXPIRED = "expired"
    INVALID = "invalid"


def confirmation_check(token: str) -> ConfirmOutcome:
    """What opening this link would do (no write: mail scanners open links too)."""
    check = tokens.confirm_token_check(token)
    if check.state is tokens.ConfirmState.EXPIRED:
        return ConfirmOutcome.EXPIRED
    if check.state is tokens.ConfirmState.INVALID:
        return ConfirmOutcome.INVALID
    return ConfirmOutcome.CONFIRMED if not email_confirmed(check.user) else ConfirmOutcome.ALREADY


def email_confirm(*, token: str) -> ConfirmOutcome:
    check = tokens.confirm_token_check(token)
    if check.state is tokens.ConfirmState.EXPIRED:
        return ConfirmOutcome.EXPIRED
    if check.state is tokens.ConfirmState.INVALID:
        return ConfirmOutcome.INVALID
    updated = Account.objects.filter(user=check.user, email_confirmed_at__isnull=True).update(
        email_confirmed_at=now()
    )
    return ConfirmOutcome.CONFIRMED if updated else ConfirmOutcome.ALREADY


# -- change (logged in) ----------------------------------------------------------------


class ChangeOutcome(enum.Enum):
    CHANGED = "changed"
    WRONG_CURRENT = "wrong-current"
    SAME_AS_CURRENT = "same-as-current"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class ChangeResult:
    outcome: ChangeOutcome
    retry_after_seconds: int = 0


def password_change(
    request: HttpRequest, *, current_password: str, new_password: str
) -> ChangeResult:
    """Change the logged-in user's password (rules already checked by the form).

    The current password is a password guess like any other, so it goes through the login
    throttle: a stolen session cannot be used to guess it.
    """
    user = request.user
    identifier = user.get_username()
    verdict = throttle.check(request, kind="login", identifier=identifier)
    if not verdict.allowed:
        return ChangeResult(ChangeOutcome.THROTTLED, verdict.retry_after_seconds)
    if not user.check_password(current_password):
        throttle.record(
            request,
            kind="login",
            identifier=identifier,
            user=user,
            success=False,
            reason="change-wrong-current",
        )
        return ChangeResult(ChangeOutcome.WRONG_CURRENT)
    if user.check_password(new_password):
        # A forced change (password_change_required) must not keep the suspect password.
        return ChangeResult(ChangeOutcome.SAME_AS_CURRENT)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        Account.objects.filter(user=user).update(password_change_required=False)
        sessions.sessions_end_others(request, reason="password-changed")
    # Keep this session logged in. Not update_session_auth_hash(): it cycles the session
    # key, which would orphan this session's UserSession row and end it too.
    request.session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    throttle.record(
        request, kind="login", identifier=identifier, user=user, success=True, reason="change"
    )
    emails.send_password_changed(request, user)
    return ChangeResult(ChangeOutcome.CHANGED)


# -- reset by email --------------------------------------------------------------------


def password_reset_request(request: HttpRequest, *, email: str) -> throttle.Verdict:
    """Email a reset link, or a "there is no account" note: one email either way."""
    identifier = normalise_identifier(email)
    verdict = throttle.check(request, kind=THROTTLE_KIND, identifier=identifier)
    if not verdict.allowed:
        return verdict
    user = get_user_model().objects.filter(username__iexact=identifier, is_active=True).first()
    if user is not None:
        emails.send_reset_link(request, user)
    else:
        emails.send_no_account(request, identifier)
    throttle.record(
        request,
        kind=THROTTLE_KIND,
        identifier=identifier,
        user=user,
        success=False,  # every request counts towards the limit, whatever the address
        reason="reset-requested",
    )
    return verdict


def password_reset_user(*, token: str):
    """The user a reset link is for, or None when it is forged, used or expired."""
    return tokens.reset_link_user(token)


def password_reset_complete(request: HttpRequest, *, user, password: str) -> None:
    """Set the new password chosen from an emailed link. Logs nobody in.

    The link proved the person reads the mailbox, so an unconfirmed address counts as
    confirmed. Every session is ended: whoever knew the old password is out.
    """
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        Account.objects.filter(user=user).update(
            password_change_required=False,
            email_confirmed_at=Coalesce(F("email_confirmed_at"), Value(now())),
        )
        sessions.sessions_end_all(user, reason="password-reset")
    # Guesses against the old password are moot now: start the counts again.
    for kind in (THROTTLE_KIND, "login"):
        throttle.record(
            request,
            kind=kind,
            identifier=user.get_username(),
            user=user,
            success=True,
            reason="password-reset",
        )
    emails.send_password_changed(request, user)
