"""Oversized bodies are refused early with 413, by the production server (granian hands
the request to Django before the body has arrived, and the middleware answers from the
Content-Length).

- A raw socket announces a 60 MB form (or a 30 MB FHIR transaction) and sends 64 KB of it:
  the 413 (an HTML page; an OperationOutcome under /fhir/) arrives within EARLY seconds
  while the client has not sent the rest: the body was not read first.
- A logged-in patient's real multipart upload of a 6 MB attachment gets the 413 page and
  nothing is stored; a 3 MB form without a file gets 413 too (forms are small).
- A body without a length (chunked) is refused (411) at once, page and API.
"""

from __future__ import annotations

import json
import re
import socket
import time

from tests.reliability.harness import AppServer, Browser, backend_token, system_key

EARLY = 5.0  # seconds: a bound on the answer while the body is still unsent


def _raw(port: int, head: str, sent: bytes, *, wait: float = EARLY) -> tuple[bytes, float]:
    """Send the head and part of a body; return what came back and how fast."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        began = time.monotonic()
        s.sendall(head.encode() + b"\r\n" + sent)
        answer = b""
        try:
            while True:  # the head, then as much body as it announces (or the close)
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
                got, found, body = answer.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", got)
                if found and length and len(body) >= int(length.group(1)):
                    break
        except TimeoutError:
            pass
        return answer, time.monotonic() - began


def _head(path: str, port: int, length: int | None, content_type: str, extra: str = "") -> str:
    size = (
        f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    )
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Type: {content_type}\r\n{size}{extra}"
    )


def test_oversized_bodies_are_refused_with_413_before_they_are_read(new_service, capsys):
    service = new_service("size")
    key, jwks = system_key()
    seeded = service.script(
        "seed", {"patients": 1, "jwks": jwks, "scopes": "system/*.rs system/*.cu"}
    )
    server = AppServer(service, log_name="size")
    server.start()
    token = backend_token(server.base, seeded["client_id"], key, scope="system/*.rs system/*.cu")
    timings = {}

    # a page: 60 MB announced, 64 KB sent
    answer, timings["form 60 MB"] = _raw(
        server.port,
        _head("/login/", server.port, 60_000_000, "application/x-www-form-urlencoded"),
        b"x" * 65536,
    )
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"text/html" in rest and b"too large" in rest
    assert timings["form 60 MB"] < EARLY

    # the FHIR API: 30 MB transaction announced, 64 KB sent
    answer, timings["FHIR 30 MB"] = _raw(
        server.port,
        _head(
            "/fhir/R4/",
            server.port,
            30_000_000,
            "application/fhir+json",
            f"Authorization: Bearer {token}\r\nAccept: application/fhir+json\r\n",
        ),
        b"{" + b" " * 65535,
    )
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    outcome = json.loads(rest.partition(b"\r\n\r\n")[2] or b"{}")
    assert outcome.get("resourceType") == "OperationOutcome", rest[:300]
    assert outcome["issue"][0]["code"] == "too-costly"
    assert timings["FHIR 30 MB"] < EARLY

    # chunked bodies: no length to check, refused at once
    answer, timings["chunked page"] = _raw(
        server.port,
        _head("/login/", server.port, None, "application/x-www-form-urlencoded"),
        b"10000\r\n" + b"x" * 65536 + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 411"), answer[:300]
    answer, timings["chunked FHIR"] = _raw(
        server.port,
        _head(
            "/fhir/R4/",
            server.port,
            None,
            "application/fhir+json",
            f"Authorization: Bearer {token}\r\nAccept: application/fhir+json\r\n",
        ),
        b"10000\r\n" + b" " * 65536 + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 411"), answer[:300]

    # a patient's real upload through the message form, and a form too big for a form
    user = seeded["users"][0]
    browser = Browser(server.base)
    browser.log_in(user["email"], user["password"], user["totp"])
    before = service.script("counts")
    began = time.monotonic()
    upload = browser.post(
        "/messages/new/",
        {"subject": "Scan", "body": "My results"},
        files={"attachment": ("scan.pdf", b"%PDF-1.4\n" + b"0" * 6_000_000, "application/pdf")},
    )
    timings["upload 6 MB"] = time.monotonic() - began
    assert upload.status_code == 413, upload.status_code
    assert "too large" in upload.text and "Nothing was saved" in upload.text
    form = browser.post("/organiser/notes/add/", {"title": "Long", "text": "x" * 3_000_000})
    assert form.status_code == 413, form.status_code
    after = service.script("counts")
    assert {k: after[k] for k in ("threads", "messages", "attachments")} == {
        k: before[k] for k in ("threads", "messages", "attachments")
    }
    # the service still works for the same session
    assert browser.get("/messages/").status_code == 200
    server.stop()
    with capsys.disabled():
        print(
            "\n[reliability] size limits on granian: "
            + ", ".join(f"{k} refused in {v * 1000:.0f} ms" for k, v in timings.items())
        )
