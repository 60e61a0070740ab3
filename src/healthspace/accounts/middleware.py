"""Django's AuthenticationMiddleware, with the session store of the request in view while
Django looks up its user (accounts.sessions.store: the user read with the session)."""

from __future__ import annotations

from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.utils.functional import SimpleLazyObject

from healthspace.accounts.sessions.store import LOOKING_UP, SessionStore


def get_user(request):
    """As django.contrib.auth.middleware.get_user: Django's auth.get_user, cached on the
    request, with this request's session store set for the backend, and unset after."""
    if not hasattr(request, "_cached_user"):
        session = request.session
        token = LOOKING_UP.set(session if isinstance(session, SessionStore) else None)
        try:
            request._cached_user = auth.get_user(request)
        finally:
            LOOKING_UP.reset(token)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthentication):
    def process_request(self, request):
        super().process_request(request)  # request.auser stays Django's
        request.user = SimpleLazyObject(lambda: get_user(request))
