"""Ends sessions server-side: a session whose record was ended ("log out everywhere",
password change) or passed its absolute lifetime is logged out on its next request."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from healthspace.accounts.sessions.services import session_is_live


class SessionGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not session_is_live(request):
            logout(request)
            messages.info(request, "You have been logged out. Log in again to continue.")
            return redirect("web:login")
        return self.get_response(request)
