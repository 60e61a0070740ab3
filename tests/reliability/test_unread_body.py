"""On the production server: an answer given before the request's body was read says
``Connection: close``, so a client never sends its next request on a connection that
granian is closing (healthspace.web.unread_body).

- A raw socket sends a FHIR create without a token, head and body in one write: the 401
  is given without reading the body, says ``Connection: close``, and granian does close
  the connection. (Django reads the form of a page even for its 404: the CSRF check of
  the error page does; the real case of a page is a 503 while the database is down,
  tests/reliability/test_pg_restart.py.)
- Through one client connection, 100 rounds of such a request followed by a page: never
  a dropped connection, every such answer says close, and each next request went on a new
  connection.
- A form the service reads (a patient's note that fails validation) keeps the connection:
  40 rounds of it and a page, one connection in all.
"""

from __future__ import annotations

import socket
import threading

import requests
import urllib3.connection

from tests.reliability.harness import AppServer, Browser

BODY = b'{"resourceType": "Observation", "status": "final"}'


def _count_connections(monkeypatch) -> dict[str, int]:
    """Count the client's new connections (urllib3's connect) for the rest of the test."""
    count = {"n": 0}
    original = urllib3.connection.HTTPConnection.connect
    lock = threading.Lock()

    def connect(self):
        with lock:
            count["n"] += 1
        return original(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", connect)
    return count


def test_an_unread_body_closes_the_connection_and_a_read_one_keeps_it(new_service, monkeypatch):
    service = new_service("unread")
    seeded = service.script("seed", {"patients": 1})
    server = AppServer(service, log_name="unread")
    server.start()

    # head and body in one write: granian could read past it, the service does not
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            (
                f"POST /fhir/R4/Observation HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "X-Forwarded-Proto: https\r\nContent-Type: application/fhir+json\r\n"
                f"Content-Length: {len(BODY)}\r\n\r\n"
            ).encode()
            + BODY
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            assert chunk, answer
            answer += chunk
        head = answer.partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 401"), head[:200]
        assert b"\r\nconnection: close" in head, head
        while s.recv(65536):  # the rest of the answer, then the close
            pass

    user = seeded["users"][0]
    browser = Browser(server.base)
    browser.log_in(user["email"], user["password"], user["totp"])
    count = _count_connections(monkeypatch)
    try:
        dropped, closes = [], 0
        for _ in range(100):
            try:
                posted = browser.http.post(
                    f"{server.base}/fhir/R4/Observation",
                    data=BODY,
                    headers={"Content-Type": "application/fhir+json"},
                    timeout=20,
                )
                assert posted.status_code == 401, posted.status_code
                closes += posted.headers.get("Connection") == "close"
                page = browser.get("/organiser/")
                assert page.status_code == 200, page.status_code
            except requests.ConnectionError as exc:
                dropped.append(str(exc)[:200])
        assert not dropped, dropped[:3]
        assert closes == 100
        assert count["n"] >= 100, count  # each page after a close on a new connection

        count["n"] = 0
        for _ in range(40):
            form = browser.post("/organiser/notes/add/", {"title": "", "text": "reliability"})
            # the form again with its error (400), after reading it
            assert form.status_code == 400 and "Connection" not in form.headers, form.headers
            assert browser.get("/organiser/").status_code == 200
        assert count["n"] <= 1, count  # kept alive (one reconnect at most, if idle-closed)
    finally:
        server.stop()
