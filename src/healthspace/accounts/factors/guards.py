"""Second-factor requirements. Stub: filled in by the second-factor work."""

from __future__ import annotations

from django.http import HttpRequest


def needs_second_factor_step(user) -> bool:
    """True when the user must pass a second factor at login (has one, is verified, or staff)."""
    return False


def second_factor_url() -> str:
    return "/"


def scr_allowed_for_session(request: HttpRequest) -> bool:
    """Verified accounts see the SCR only with a second factor set up and used this session."""
    return True
