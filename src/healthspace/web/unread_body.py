"""``Connection: close`` on an answer given before the request's body was read.

A request can be answered without its body being read: a 503 while the database is down
(the session is read before the form), a 404, a refused CSRF check, the size limits'
413/411. The production server (granian, on hyper) then cannot reuse the connection (the
unread bytes are in the way), so it closes it after the answer, but the answer does not
say so. A client that sends its next request on that connection at the moment it closes
gets no answer at all ("Remote end closed connection without response"), which
tests/reliability/test_pg_restart.py caught as a dropped connection while PostgreSQL was
restarting. Where the body had arrived but was left unread, the connection waits instead
until Python frees the request (a reference cycle can make that the next garbage
collection), stalling the client's next request for up to half a second (measured).

RFC 9112 (section 9.6) has the answer: a server that closes after a response says
``Connection: close`` in it, so that the client opens a new connection for its next
request. This WSGI wrapper counts what the application reads of ``wsgi.input`` and adds
the header when less than the declared length was read, or a body without a length
(``Transfer-Encoding: chunked``) was not read to its end. It never reads the body itself:
draining it would hold a thread for as long as a slow client takes to send it.

Requests without a body (every GET) go straight through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _CountingInput:
    """``wsgi.input`` as the application sees it: the server's stream, counted. Django's
    ``LimitedStream`` takes its ``read`` and ``readline``."""

    __slots__ = ("_stream", "consumed", "ended")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.consumed = 0
        self.ended = False

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        self.consumed += len(data)
        if not data or not args or args[0] is None or args[0] < 0 or len(data) < args[0]:
            self.ended = True  # read to the end, or the end came first
        return data

    def readline(self, *args: Any) -> bytes:
        line = self._stream.readline(*args)
        self.consumed += len(line)
        if not line:
            self.ended = True
        return line

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Django reads such a body as empty


class CloseAfterUnreadBody:
    """The WSGI application around Django's (``healthspace.config.wsgi``)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse):
        if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
            return self.app(environ, start_response)  # no body: every GET
        length = _declared_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if length == 0 and not chunked:
            return self.app(environ, start_response)
        counted = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counted
        answer: list[Any] = []

        def later(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            # Django calls this before it returns the response, and never writes
            # through its return value; the real call is made once the reads are known
            answer[:] = [status, headers, exc_info]
            return _no_write

        body = self.app(environ, later)
        status, headers, exc_info = answer
        if length is None:
            unread = True  # a length Django cannot read: it saw no body
        elif length:
            unread = counted.consumed < length
        else:
            unread = not counted.ended  # chunked
        if unread and not any(name.lower() == "connection" for name, _ in headers):
            headers = [*headers, ("Connection", "close")]
        start_response(status, headers, exc_info)
        return body


def _no_write(data: bytes) -> None:
    raise RuntimeError("this WSGI application does not write before returning its body")
