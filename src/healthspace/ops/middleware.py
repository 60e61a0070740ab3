"""While the service is read-only (closing) or purged, refuse every write with a clear
page (an OperationOutcome under /fhir/), except the views marked
``ops.lifecycle.allowed_when_read_only``: logging in and out, second factors, and
taking one's data away. Reads go on as before.

The state comes from ``ops.lifecycle.status()`` (cached in the process), so an open
service pays no query for this check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from healthspace.ops import lifecycle

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FHIR_PREFIX = "/fhir/"

logger = logging.getLogger(__name__)


class ReadOnlyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if request.method in SAFE_METHODS:
            return None
        current = lifecycle.status()
        if not current.read_only:
            return None
        if not current.purged and getattr(view_func, "allowed_when_read_only", False):
            return None
        response = refusal(request, current)
        # An expected refusal, not a server error: Django would log every one at ERROR
        # (a 503). One line at INFO instead, without the path (it may hold a record id).
        response._has_been_logged = True  # type: ignore[attr-defined]
        logger.info("write refused: the service is %s", current.state)
        return response


def refusal(request: HttpRequest, current: lifecycle.Status) -> HttpResponse:
    closed = current.purged
    if request.path.startswith(FHIR_PREFIX):
        from healthspace.fhir_api.http import fhir_response, operation_outcome

        text = (
            "HealthSpace has closed: nothing can be written."
            if closed
            else "HealthSpace is read-only while it closes: no writes are accepted. "
            "Reads and exports still work."
        )
        return fhir_response(operation_outcome("business-rule", text), status=503)
    return render(
        request,
        "ops/read_only.html",
        {"closed": closed, "closure_date": current.closure_date},
        status=503,
    )
