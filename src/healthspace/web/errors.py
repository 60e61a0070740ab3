"""The page for an error nobody handled (Django's ``handler500``), and the one answer
for a database that cannot be reached: 503 with Retry-After.

A database restart, fail-over or network cut makes every query fail for a few seconds
(``OperationalError``, or ``InterfaceError`` on a connection already closed). That is
not a bug in the request: the client should try again soon, and the next request opens
a new connection (``conn_health_checks``) without the application being restarted. So:

- pages get a plain NHS.UK page (HTML, status 503, ``Retry-After``) rendered without the
  database: no session, no user, no service state is read for it;
- the FHIR API gets an OperationOutcome (``transient``), as every FHIR error is;
- the log gets one line: the exception's class, its SQLSTATE and the request's method and
  path. Never the driver's message (it may quote data), never the query string or body.

Any other unhandled exception gets status 500 in the same forms, and Django's own log
record with its traceback (which carries no locals, and no request body).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import get_template

log = logging.getLogger(__name__)

# Seconds a client is asked to wait: a PostgreSQL restart takes a few.
RETRY_AFTER_SECONDS = 10
UNAVAILABLE = (OperationalError, InterfaceError)
# Not "nothing was changed": a write may have committed just before the failure.
UNAVAILABLE_DIAGNOSTICS = "The service is briefly unavailable. Try again shortly."


def unavailable_cause(exc: BaseException | None) -> BaseException | None:
    """The database error behind ``exc``, if any: itself, or one it was raised from or
    while handling. Django's session middleware turns a failed session save into
    ``SessionInterrupted`` (a 400) whatever the reason, a lost connection included."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, UNAVAILABLE):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    cause = exc.__cause__ or exc
    sqlstate = getattr(cause, "sqlstate", None)
    log.warning(
        "database unavailable (%s%s) on %s %s",
        type(cause).__name__,
        f", SQLSTATE {sqlstate}" if sqlstate else "",
        request.method,
        request.path,
    )


class _Anonymous:
    is_authenticated = False


class _PageRequest:
    """What web/base.html reads of the request, without touching the session or the
    database (the real request's user would load both)."""

    user = _Anonymous()

    def __init__(self, path: str) -> None:
        self.path = path


def _page(request: HttpRequest, *, status: int) -> HttpResponse:
    from django.template.context_processors import csp

    context: dict[str, Any] = {"request": _PageRequest(request.path), "unavailable": status == 503}
    try:
        context.update(csp(request))
        html = get_template("web/server_error.html").render(context)
    except Exception:  # the page of last resort must not fail in its turn
        html = (
            "<!doctype html><html lang='en'><title>Sorry, there is a problem with the "
            "service - HealthSpace - NHS</title><h1>Sorry, there is a problem with the "
            "service</h1><p>Try again later.</p></html>"
        )
    return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")


def _answer(request: HttpRequest, cause: BaseException | None) -> HttpResponse:
    unavailable = cause is not None
    if request.path.startswith("/fhir/"):
        from healthspace.fhir_api.http import ApiError, error_response

        if unavailable:
            error = ApiError(
                503,
                "transient",
                UNAVAILABLE_DIAGNOSTICS,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        else:
            error = ApiError(500, "exception", "Internal error: the request was not completed.")
        response = error_response(error)
        response["Cache-Control"] = "no-store"
    elif request.path.startswith(_OAUTH_MACHINE_PATHS):
        response = _oauth_error(unavailable)
    else:
        response = _page(request, status=503 if unavailable else 500)
        if unavailable:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if cause is not None:
        log_unavailable(request, cause)
        # logged above in one line; Django would add the whole traceback for each request
        # that met the outage
        response._has_been_logged = True
    return response


# OAuth endpoints that programs call (RFC 6749 section 5.2 errors are JSON); the
# authorisation pages a person sees get the HTML page
_OAUTH_MACHINE_PATHS = (
    "/oauth/token/",
    "/oauth/revoke/",
    "/oauth/userinfo/",
    "/oauth/.well-known/",
)


def _oauth_error(unavailable: bool) -> HttpResponse:
    from django.http import JsonResponse

    if unavailable:
        body = {
            "error": "temporarily_unavailable",
            "error_description": "The service is unavailable. Try again shortly.",
        }
        response = JsonResponse(body, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    else:
        body = {"error": "server_error", "error_description": "The request was not completed."}
        response = JsonResponse(body, status=500)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: Django calls it while handling the exception."""
    return _answer(request, unavailable_cause(sys.exc_info()[1]))


def bad_request(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """``handler400``: Django's own 400 page, unless the database was the cause."""
    cause = unavailable_cause(exception)
    if cause is None:
        from django.views.defaults import bad_request as django_bad_request

        return django_bad_request(request, exception)
    return _answer(request, cause)
