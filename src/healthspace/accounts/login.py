"""Sign-in, step one (email + password), and the hand-over to the second factor.

The password step never says which part was wrong. A user who must pass a second factor
is not logged in after the password: the session only remembers who is pending, for a
few minutes, and the factors step completes the login with ``login_complete``.
"""

from __future__ import annotations

import time

from django.contrib.auth import authenticate, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from healthspace.accounts import backends
from healthspace.accounts.factors import guards
from healthspace.accounts.passwords import services as passwords
from healthspace.accounts.sessions import services as sessions
from healthspace.accounts.sessions import throttle

PENDING_USER = "hs_pending_user"
PENDING_AT = "hs_pending_at"
PENDING_MAX_SECONDS = 300
GENERIC_ERROR = "Enter a correct email address and password."
UNCONFIRMED_ERROR = (
    "You need to confirm your email address before you can log in. Use the link we emailed "
    "you, or reset your password to get a new one."
)


def normalise_identifier(email: str) -> str:
    return email.strip().lower()


def password_step(
    request: HttpRequest, *, email: str, password: str
) -> tuple[str, AbstractBaseUser | None, int]:
    """Returns (outcome, user, retry_after): outcome is 'done', 'second-factor', 'throttled',
    'unconfirmed' (email address not confirmed yet) or 'failed'."""
    identifier = normalise_identifier(email)
    verdict = throttle.check(request, kind="login", identifier=identifier)
    if not verdict.allowed:
        return "throttled", None, verdict.retry_after_seconds
    user = authenticate(request, username=identifier, password=password)
    throttle.record(
        request,
        kind="login",
        identifier=identifier,
        user=user,
        success=user is not None,
        reason="" if user else "bad-credentials",
    )
    if user is None:
        return "failed", None, 0
    # Only the password holder gets this far, so these answers reveal nothing.
    if not passwords.email_confirmed(user):
        return "unconfirmed", None, 0
    if guards.needs_second_factor_step(user):
        request.session.cycle_key()
        request.session[PENDING_USER] = user.pk
        request.session[PENDING_AT] = time.time()
        return "second-factor", user, 0
    login_complete(request, user, second_factor="")
    return "done", user, 0


def pending_user_id(request: HttpRequest) -> int | None:
    started = request.session.get(PENDING_AT)
    if started is None or time.time() - started > PENDING_MAX_SECONDS:
        return None
    return request.session.get(PENDING_USER)


def login_complete(request: HttpRequest, user: AbstractBaseUser, *, second_factor: str) -> None:
    """Log in (Django rotates the session key) and record the session."""
    request.session.pop(PENDING_USER, None)
    request.session.pop(PENDING_AT, None)
    if not hasattr(user, "backend"):
        user.backend = backends.PATH
    login(request, user)
    # when the password (and factor) were last proven: factor changes ask again after 10 min
    request.session["hs_auth_at"] = time.time()
    sessions.session_start(request, user, second_factor=second_factor)
