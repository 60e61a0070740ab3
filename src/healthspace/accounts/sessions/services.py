"""Signed-in sessions. Stub: filled in by the sessions work."""

from __future__ import annotations

from django.http import HttpRequest


def session_start(request: HttpRequest, user, *, second_factor: str) -> None:
    """Called right after django.contrib.auth.login(): record the session (device, time,
    factor), notify the owner by email of a new device."""
    return None
