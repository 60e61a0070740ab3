"""HTTP for the FHIR API: JSON in and out (``application/fhir+json``), errors as
OperationOutcome with the right status, bearer tokens to actors, throttling.

Every view is wrapped by :func:`fhir_view`, which

1. refuses XML and other formats with 406 (``Accept`` or ``_format``) and bodies that are
   not FHIR JSON with 415;
2. turns the bearer token into a :class:`~healthspace.smart.tokens.TokenActor` (401
   without one, unless the route is public: metadata, SMART configuration, OpenAPI);
3. counts the request against the client's rate (429 with Retry-After);
4. turns every error into an OperationOutcome (never an HTML page, never a traceback).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC
from email.utils import format_datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from healthspace.core.errors import NotFound
from healthspace.records.fhir_checks import FhirInputError
from healthspace.smart import throttle
from healthspace.smart.tokens import bearer_token, token_actor
from healthspace.web.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE,
    UNAVAILABLE_DIAGNOSTICS,
    log_unavailable,
)

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
FORMAT_JSON = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
NDJSON = "application/fhir+ndjson"


class ApiError(Exception):
    """An error the client caused or may know about: its status and OperationOutcome."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        headers: dict[str, str] | None = None,
        severity: str = "error",
        expression: list[str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics = status, code, diagnostics
        self.headers = headers or {}
        self.severity = severity
        self.expression = expression


def not_found(what: str = "Resource") -> ApiError:
    # one message for absent and not-yours: no oracle
    return ApiError(404, "not-found", f"{what} not found.")


def operation_outcome(
    code: str, diagnostics: str, severity: str = "error", expression: list[str] | None = None
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(value, indent=2, ensure_ascii=False).encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def fhir_response(
    body: dict[str, Any] | None,
    status: int = 200,
    *,
    request: HttpRequest | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = FHIR_JSON,
) -> HttpResponse:
    pretty = request is not None and request.GET.get("_pretty") == "true"
    response = HttpResponse(
        b"" if body is None else dumps(body, pretty=pretty),
        status=status,
        content_type=f"{content_type}; charset=utf-8",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: ApiError, request: HttpRequest | None = None) -> HttpResponse:
    return fhir_response(
        operation_outcome(error.code, error.diagnostics, error.severity, error.expression),
        error.status,
        request=request,
        headers=error.headers,
    )


def http_date(moment) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _wants_json(request: HttpRequest) -> bool:
    fmt = request.GET.get("_format")
    if fmt is not None:
        return fmt.strip().lower() in FORMAT_JSON
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return True
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        params = part.split(";")[1:]
        if any(p.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        if media in (*JSON_TYPES, "*/*", "application/*", NDJSON):
            return True
    return False


def read_json_body(request: HttpRequest) -> Any:
    """The request body as JSON, size-checked before it is read (413), type-checked (415)."""
    content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise ApiError(
            415, "not-supported", "Send FHIR JSON (Content-Type: application/fhir+json)."
        )
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not (
        request.META.get("CONTENT_LENGTH")
    ):
        # Django reads only Content-Length bytes: a chunked body would arrive empty
        raise ApiError(411, "structure", "Send the body with a Content-Length header.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.HEALTHSPACE_FHIR_MAX_REQUEST_BYTES
    if length > limit:
        raise ApiError(413, "too-costly", f"The body is larger than {limit} bytes.")
    # request.read(), not request.body: the web form limit (DATA_UPLOAD_MAX_MEMORY_SIZE) is
    # for forms; FHIR bodies have their own limit, checked above
    data = request.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too-costly", f"The body is larger than {limit} bytes.")
    from healthspace.records.fhir_checks import parse_json_bytes

    try:
        return parse_json_bytes(data, where="request body")
    except FhirInputError as exc:
        raise ApiError(400, "structure", str(exc)) from exc


def fhir_view(
    *, public: bool = False, methods: tuple[str, ...] = ("GET",)
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Wrap a FHIR API view (see the module docstring). Non-public views receive the
    caller as ``who`` (a TokenActor)."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        "not-supported",
                        f"{request.method} is not supported here.",
                        headers={"Allow": ", ".join(methods)},
                    )
                if not _wants_json(request):
                    raise ApiError(
                        406, "not-supported", "Only JSON (application/fhir+json) is served."
                    )
                if public:
                    response = view(request, *args, **kwargs)
                else:
                    raw = bearer_token(request.headers.get("Authorization", ""))
                    who = token_actor(raw) if raw else None
                    if who is None:
                        raise ApiError(
                            401,
                            "login",
                            "A valid bearer token is needed.",
                            headers={
                                "WWW-Authenticate": 'Bearer realm="HealthSpace"'
                                + (', error="invalid_token"' if raw else "")
                            },
                        )
                    retry = throttle.hit(
                        f"fhir:{who.client_id}", limit=settings.HEALTHSPACE_FHIR_RATE_LIMIT
                    )
                    if retry:
                        raise ApiError(
                            429,
                            "throttled",
                            "Too many requests: slow down.",
                            headers={"Retry-After": str(retry)},
                        )
                    response = view(request, who, *args, **kwargs)
            except ApiError as error:
                response = error_response(error, request)
            except NotFound:
                response = error_response(not_found(), request)
            except FhirInputError as exc:
                response = error_response(ApiError(400, "invalid", str(exc)), request)
            except UNAVAILABLE as exc:
                # the database is restarting or unreachable: try again (web/errors.py)
                log_unavailable(request, exc)
                response = error_response(
                    ApiError(
                        503,
                        "transient",
                        UNAVAILABLE_DIAGNOSTICS,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    ),
                    request,
                )
                response._has_been_logged = True  # in one line, above
            except Exception:
                # never a traceback or an HTML page; the log has the path only (no body)
                log.exception("FHIR API error on %s %s", request.method, request.path)
                response = error_response(
                    ApiError(500, "exception", "Internal error: the request was not completed."),
                    request,
                )
            response.setdefault("Cache-Control", "no-store")
            response.setdefault("X-Content-Type-Options", "nosniff")
            return response

        return wrapped

    return wrap
