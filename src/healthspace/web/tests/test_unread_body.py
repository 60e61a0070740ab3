"""An answer given before the request's body was read says ``Connection: close``
(healthspace.web.unread_body); one that read it, or a request without a body, keeps the
connection. Against granian: tests/reliability/test_unread_body.py."""

from __future__ import annotations

import io
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import LimitedStream

from healthspace.core.testing import connection_kept_across_requests
from healthspace.web.unread_body import CloseAfterUnreadBody

BODY = b"systolic=121&diastolic=79&note=reliability"


def _environ(method: str = "POST", body: bytes = BODY, *, chunked: bool = False, **more: Any):
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        **more,
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    elif body:
        environ["CONTENT_LENGTH"] = str(len(body))
    setup_testing_defaults(environ)
    return environ


def _app(reads: int | None, headers: list[tuple[str, str]] | None = None):
    """A WSGI application that reads ``reads`` bytes as Django does (through its
    LimitedStream), every byte if None, and answers."""

    def app(environ, start_response):
        stream = LimitedStream(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0))
        stream.read() if reads is None else stream.read(reads)
        start_response("200 OK", [("Content-Type", "text/plain"), *(headers or [])])
        return [b"ok"]

    return app


def _call(app, environ) -> tuple[str, list[tuple[str, str]], bytes]:
    seen: list[Any] = []

    def start_response(status, headers, exc_info=None):
        seen[:] = [status, headers]

    body = b"".join(CloseAfterUnreadBody(app)(environ, start_response))
    return seen[0], seen[1], body


def _connection(headers) -> list[str]:
    return [value for name, value in headers if name.lower() == "connection"]


def test_a_body_read_to_its_length_keeps_the_connection():
    status, headers, body = _call(_app(None), _environ())
    assert status == "200 OK" and body == b"ok"
    assert _connection(headers) == []


@pytest.mark.parametrize("reads", [0, 10, len(BODY) - 1])
def test_a_body_left_unread_closes_the_connection(reads):
    _status, headers, _body = _call(_app(reads), _environ())
    assert _connection(headers) == ["close"]


def test_a_request_without_a_body_goes_straight_through():
    environ = _environ("GET", b"")
    stream = environ["wsgi.input"]
    _status, headers, _body = _call(_app(0), environ)
    assert _connection(headers) == []
    assert environ["wsgi.input"] is stream  # not wrapped: nothing to count


def test_a_chunked_body_closes_unless_read_to_its_end():
    # Django reads no body without a Content-Length
    _status, headers, _body = _call(_app(None), _environ(chunked=True))
    assert _connection(headers) == ["close"]

    def reads_to_the_end(environ, start_response):
        while environ["wsgi.input"].read(8):
            pass
        start_response("200 OK", [])
        return [b""]

    _status, headers, _body = _call(reads_to_the_end, _environ(chunked=True))
    assert _connection(headers) == []


def test_a_connection_header_already_there_is_not_repeated():
    _status, headers, _body = _call(_app(0, [("Connection", "close")]), _environ())
    assert _connection(headers) == ["close"]


def test_readline_and_iteration_are_counted():
    def by_lines(environ, start_response):
        for _line in environ["wsgi.input"]:
            pass
        start_response("200 OK", [])
        return [b""]

    _status, headers, _body = _call(by_lines, _environ(body=b"a\nb\nc\n"))
    assert _connection(headers) == []


@pytest.fixture
def _keep_the_test_connection():
    with connection_kept_across_requests():
        yield


@pytest.mark.django_db
@pytest.mark.usefixtures("_keep_the_test_connection")
def test_the_service_closes_after_a_post_it_answered_unread_and_not_after_one_it_read():
    from healthspace.config.wsgi import application

    def call(environ):
        seen: list[Any] = []

        def start_response(status, headers, exc_info=None):
            seen[:] = [status, headers]

        chunks = application(environ, start_response)
        try:
            b"".join(chunks)
        finally:
            chunks.close()
        return seen

    https = {"HTTP_X_FORWARDED_PROTO": "https"}
    # a page that does not exist: 404 before anything reads the form
    status, headers = call(_environ(PATH_INFO="/no-such-page/", **https))
    assert status.startswith("404") and _connection(headers) == ["close"]
    # the token endpoint reads its form, then refuses the grant
    status, headers = call(
        _environ(body=b"grant_type=nonsense", PATH_INFO="/oauth/token/", **https)
    )
    assert status.startswith("400") and _connection(headers) == []
    # no body
    status, headers = call(_environ("GET", b"", PATH_INFO="/login/", **https))
    assert status.startswith("200") and _connection(headers) == []
