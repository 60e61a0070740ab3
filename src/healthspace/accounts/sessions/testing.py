"""Test helper: a client signed in as ``user`` past every login step (password, second
factor), with its session recorded as login_complete would."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.test import Client

from healthspace.accounts.models import UserSession
from healthspace.accounts.sessions.middleware import TOUCHED_KEY
from healthspace.accounts.sessions.services import SECOND_FACTOR_KEY, describe_device, key_hash
from healthspace.core.clock import now


def signed_in_client(
    user, *, user_agent: str = "Chrome/140 (Windows)", second_factor: str = "totp"
) -> Client:
    if second_factor == "totp":
        from django_otp.plugins.otp_totp.models import TOTPDevice

        # a session that passed TOTP implies the user has a confirmed authenticator app
        TOTPDevice.objects.get_or_create(
            user=user, defaults={"name": "Test app", "confirmed": True}
        )
    client = Client(HTTP_USER_AGENT=user_agent)
    client.force_login(user)
    session = client.session
    session[SECOND_FACTOR_KEY] = second_factor
    session[TOUCHED_KEY] = int(time.time())  # as a login request leaves it
    session.save()
    moment = now()
    UserSession.objects.create(
        user=user,
        key_hash=key_hash(session.session_key),
        created_at=moment,
        last_seen_at=moment,
        expires_at=moment + timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS),
        device=describe_device(user_agent),
        second_factor=second_factor,
    )
    return client
