"""Pages that show a record must never be cached by a browser or proxy (ASVS 14.2.2/14.3.2)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/static/"):
            response.setdefault("Cache-Control", "no-store")
        return response


class RequestSizeLimitMiddleware:
    """Refuse a request body larger than its limit with 413, from its Content-Length,
    before anything reads it (ASVS 5.2.1): an upload that is too big is never buffered or
    written to a temporary file. The production server (granian) hands the request over
    before the body has arrived, so the refusal goes out while the client still sends
    (tests/reliability/test_size_limits.py).

    Limits: a multipart upload (a form with an attachment) HEALTHSPACE_MAX_REQUEST_BYTES;
    any other body DATA_UPLOAD_MAX_MEMORY_SIZE, which Django would otherwise refuse later
    as a 400. A body sent without a length (Transfer-Encoding: chunked) gets 411: Django
    reads only Content-Length bytes, so it would see an empty form."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    # The FHIR API takes larger bodies (GP feeds' transaction Bundles) and answers with an
    # OperationOutcome: it checks HEALTHSPACE_FHIR_MAX_REQUEST_BYTES itself, before reading.
    OWN_LIMIT_PREFIXES = ("/fhir/",)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings
        from django.shortcuts import render

        if request.path.startswith(self.OWN_LIMIT_PREFIXES):
            return self.get_response(request)
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        multipart = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")
        limit = (
            settings.HEALTHSPACE_MAX_REQUEST_BYTES
            if multipart
            else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        )
        if chunked and not request.META.get("CONTENT_LENGTH"):
            status = 411
        elif length > limit:
            status = 413
        else:
            return self.get_response(request)
        response = render(
            request,
            "web/too_large.html",
            {
                "limit_mb": settings.HEALTHSPACE_ATTACHMENT_MAX_BYTES / (1024 * 1024),
                "no_length": status == 411,
            },
            status=status,
        )
        response["Connection"] = "close"
        return response
