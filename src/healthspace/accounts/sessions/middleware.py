"""Ends sessions server-side: a session whose record was ended ("log out everywhere",
password change) or passed its absolute lifetime is logged out on its next request.

Also keeps an active session alive without writing it on every request: Django saves a
session (and so moves its idle expiry) only when it changed, and this middleware marks
it changed when its last save is older than a fifteenth of the idle timeout (one minute
of fifteen). The idle timeout is therefore between 14 and 15 minutes after the last
request, never longer, and a run of page views costs one session write a minute instead
of one each (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from healthspace.accounts.sessions.services import session_is_live

TOUCHED_KEY = "_hs_touched"  # when this session was last saved (epoch seconds)


def touch_interval() -> float:
    return min(60.0, settings.SESSION_COOKIE_AGE / 15)


def _touch(request: HttpRequest) -> None:
    session = getattr(request, "session", None)
    if session is None or session.is_empty():  # none, or just ended (logout flushes it)
        return
    moment = time.time()
    if session.modified:  # saved after this response anyway: remember when
        session[TOUCHED_KEY] = int(moment)
    elif moment - session.get(TOUCHED_KEY, 0) >= touch_interval():
        session[TOUCHED_KEY] = int(moment)  # marks it modified: saved with a new expiry


class SessionGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not session_is_live(request):
            logout(request)
            messages.info(request, "You have been logged out. Log in again to continue.")
            return redirect("web:login")
        response = self.get_response(request)
        _touch(request)
        return response
