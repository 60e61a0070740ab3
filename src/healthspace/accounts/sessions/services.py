"""Signed-in sessions: recorded at login, checked on every request, listed and ended by
their owner. The session key itself is never stored here, only its SHA-256."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest

from healthspace.accounts.models import UserSession
from healthspace.core import sql
from healthspace.core.clock import now

SECOND_FACTOR_KEY = "hs_second_factor"
TOUCH_EVERY = timedelta(seconds=60)


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"))  # fmt: skip
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
            ("Mac OS X", "Mac"), ("Linux", "Linux"))  # fmt: skip


def describe_device(user_agent: str) -> str:
    """'Chrome on Windows': enough for the owner to recognise a device, no fingerprint."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    if re.search(r"HeadlessChrome", user_agent):
        browser = "Chrome"
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def _session_key(request: HttpRequest) -> str:
    session: SessionBase = request.session
    if session.session_key is None:
        session.save()
    return session.session_key or ""


def session_start(request: HttpRequest, user, *, second_factor: str) -> None:
    """After django.contrib.auth.login(): record the session; tell the owner about a
    device we have not seen before (no clinical content, no link that logs in)."""
    moment = now()
    request.session[SECOND_FACTOR_KEY] = second_factor
    device = describe_device(request.META.get("HTTP_USER_AGENT", ""))
    with transaction.atomic():
        seen_before = UserSession.objects.filter(user=user, device=device).exists()
        known_any = UserSession.objects.filter(user=user).exists()
        UserSession.objects.create(
            user=user,
            key_hash=key_hash(_session_key(request)),
            created_at=moment,
            last_seen_at=moment,
            expires_at=moment + timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS),
            device=device,
            second_factor=second_factor,
        )
        if known_any and not seen_before and (user.email or "@" in user.username):
            when = moment.astimezone().strftime("%-d %B %Y at %H:%M")
            transaction.on_commit(
                lambda: send_mail(
                    "New sign-in to your HealthSpace account",
                    f"Your HealthSpace account was used to sign in on {device} on {when}.\n\n"
                    "If this was you, you need do nothing.\n"
                    "If it was not, sign in and choose 'I think someone has seen my record' "
                    "on the 'Your account' page: it changes your password and signs out "
                    "every other device.",
                    None,
                    [user.email or user.username],
                )
            )


@dataclass(frozen=True)
class SessionRow:
    id: int
    device: str
    created_at: datetime
    last_seen_at: datetime
    current: bool
    second_factor: str


def sessions_for(request: HttpRequest) -> list[SessionRow]:
    current = key_hash(request.session.session_key or "")
    rows = UserSession.objects.filter(
        user=request.user, ended_at__isnull=True, expires_at__gt=now()
    ).order_by("-last_seen_at")
    return [
        SessionRow(
            r.id, r.device, r.created_at, r.last_seen_at, r.key_hash == current, r.second_factor
        )
        for r in rows
    ]


def _end(queryset, reason: str) -> int:
    return queryset.filter(ended_at__isnull=True).update(ended_at=now(), ended_reason=reason)


def sessions_end_others(request: HttpRequest, *, reason: str) -> int:
    """End every session of this user but the current one (after a password change...)."""
    current = key_hash(request.session.session_key or "")
    return _end(UserSession.objects.filter(user=request.user).exclude(key_hash=current), reason)


def sessions_end_all(user, *, reason: str) -> int:
    return _end(UserSession.objects.filter(user=user), reason)


def session_end_one(request: HttpRequest, *, session_id: int, reason: str) -> int:
    # scoped to the owner: another user's session id ends nothing
    return _end(UserSession.objects.filter(user=request.user, pk=session_id), reason)


def session_is_live(request: HttpRequest) -> bool:
    """Called on every authenticated request by the middleware."""
    key = request.session.session_key
    if not key:
        return False
    read, row = _record_read_with_session(request.session, key)
    if not read:
        found = sql.objects(  # plain SQL: every signed-in request reads it (docs/performance.md)
            UserSession, _LIVE_FIELDS, where={"key_hash": key_hash(key)}, prepared=True
        )
        row = found[0] if found else None
    moment = now()
    if row is None or row.ended_at is not None or row.expires_at <= moment:
        return False
    if row.user_id != request.user.pk:
        return False
    if moment - row.last_seen_at > TOUCH_EVERY:  # one write a minute, not per request
        UserSession.objects.filter(pk=row.pk).update(last_seen_at=moment)
    return True


_LIVE_FIELDS = ("id", "ended_at", "expires_at", "last_seen_at", "user_id")


def _record_read_with_session(session: SessionBase, key: str):
    """The record the session store read with this session (accounts.sessions.store), if
    it read it for this very key; (False, None) otherwise, and the caller reads it."""
    read_with = getattr(session, "record_read_with", None)
    return read_with(key) if read_with is not None else (False, None)


def password_changed(request: HttpRequest, user, *, reason: str) -> int:
    """After a password change by its owner: keep this session (Django rotates its key and
    re-hashes it against the new password), end every other one. Returns how many ended."""
    from django.contrib.auth import update_session_auth_hash

    old_hash = key_hash(_session_key(request))
    ended = _end(UserSession.objects.filter(user=user).exclude(key_hash=old_hash), reason)
    update_session_auth_hash(request, user)  # cycles the session key
    UserSession.objects.filter(key_hash=old_hash).update(key_hash=key_hash(_session_key(request)))
    return ended


def session_step_up(request: HttpRequest, *, second_factor: str) -> None:
    """A logged-in session passed a second factor (privilege change): rotate the session
    key (ASVS 7.2.4) and record the factor on the session's row."""
    old_hash = key_hash(_session_key(request))
    request.session.cycle_key()
    request.session[SECOND_FACTOR_KEY] = second_factor
    UserSession.objects.filter(key_hash=old_hash, user=request.user).update(
        key_hash=key_hash(_session_key(request)), second_factor=second_factor
    )
