"""The id of the request being served, for audit events and logs.

Set by ``RequestIdMiddleware`` for each request (a fresh random id: a client-supplied one
is never trusted, since audit events are evidence) and read by ``audit.services``. Commands
and tasks run without one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

_current: ContextVar[str | None] = ContextVar("healthspace_request_id", default=None)
HEADER = "X-Request-ID"


def current_request_id() -> str | None:
    return _current.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = uuid.uuid4().hex
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        # Quoted to the service desk by someone reporting a problem; carries nothing else.
        response[HEADER] = request_id
        return response
