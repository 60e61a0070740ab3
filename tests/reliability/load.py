"""Writes and reads as patients make them, through the real pages, from client threads;
every outcome recorded as the client saw it.

A write is *acknowledged* only when the service answered with the redirect that its page
sends after saving (the saved reading's id, the new conversation's page, "your choice was
saved"). Anything else (an error page, a dropped connection, a time-out) is not: such a
write may or may not have been stored, but never half.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from tests.reliability.harness import Browser

READING_SAVED = re.compile(r"/organiser/readings/blood-pressure/\?saved=([0-9a-f-]{36})")
THREAD_PAGE = re.compile(r"/messages/([0-9a-f-]{36})/$")
CONSENT_SAVED = "/record/consent/saved/"
CHOICES = ("core-only", "core-and-additional")


@dataclass
class Outcome:
    kind: str
    started: float
    finished: float
    status: int | None  # None: no HTTP answer (connection refused or dropped, time-out)
    acknowledged: bool = False
    ident: str | None = None
    token: str | None = None
    error: str | None = None
    content_type: str = ""
    retry_after: str | None = None
    body: str = ""
    patient_id: str | None = None


@dataclass
class Patient:
    """One patient's login, shared by the client threads that act for them."""

    user: dict[str, Any]
    consent_choice: int = 0
    consent_lock: threading.Lock = field(default_factory=threading.Lock)


def _described(exc: requests.RequestException) -> str:
    # the class and urllib3's reason (refused, reset, closed without a response): what
    # tells a dropped connection from a time-out when a run fails
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _taken_fields() -> dict[str, str]:
    taken = datetime.now(ZoneInfo("Europe/London")) - timedelta(minutes=2)
    return {
        "taken_day": str(taken.day),
        "taken_month": str(taken.month),
        "taken_year": str(taken.year),
        "taken_time": f"{taken:%H:%M}",
    }


def write(browser: Browser, patient: Patient, kind: str) -> Outcome:
    """One write through its page. The token (random) is what the check looks for."""
    token = f"reliability {secrets.token_hex(8)}"
    started = time.monotonic()
    try:
        if kind == "reading":
            response = browser.post(
                "/organiser/readings/blood-pressure/add/",
                {"systolic": "121", "diastolic": "79", "note": token, **_taken_fields()},
            )
            found = READING_SAVED.search(response.headers.get("Location", ""))
        elif kind == "message":
            # multipart, as the page's form (it takes an attachment) sends it
            response = browser.post(
                "/messages/new/",
                {"subject": "Reliability test", "body": token},
                files={"attachment": ("", b"", "application/octet-stream")},
            )
            found = THREAD_PAGE.search(response.headers.get("Location", ""))
        elif kind == "consent":
            # one consent writer per patient: the next choice is always a change
            choice = CHOICES[patient.consent_choice % 2]
            response = browser.post("/record/consent/confirm/", {"choice": choice})
            if response.status_code == 400 and "already your choice" in response.text:
                # the change in flight at a kill was stored after all: the next one is the
                # other choice (what a patient who looked at the page would do)
                patient.consent_choice += 1
                choice = CHOICES[patient.consent_choice % 2]
                response = browser.post("/record/consent/confirm/", {"choice": choice})
            token = choice
            saved = response.headers.get("Location", "").endswith(CONSENT_SAVED)
            found = saved or None
            if saved:
                patient.consent_choice += 1
        else:
            raise ValueError(kind)
    except requests.RequestException as exc:
        return Outcome(
            kind,
            started,
            time.monotonic(),
            None,
            token=token,
            error=_described(exc),
            patient_id=patient.user["patient_id"],
        )
    outcome = Outcome(
        kind,
        started,
        time.monotonic(),
        response.status_code,
        acknowledged=response.status_code == 302 and bool(found),
        token=token,
        content_type=response.headers.get("Content-Type", ""),
        retry_after=response.headers.get("Retry-After"),
        body=response.text[:4000] if response.status_code >= 400 else "",
        patient_id=patient.user["patient_id"],
    )
    if outcome.acknowledged and kind != "consent":
        outcome.ident = found.group(1)
    return outcome


def read(browser: Browser, kind: str, *, token: str | None = None, fhir: str = "") -> Outcome:
    """A page or FHIR read. ``fhir`` is the path under /fhir/R4/ (with a bearer token)."""
    started = time.monotonic()
    try:
        if kind == "fhir":
            response = browser.http.get(
                f"{browser.base}/fhir/R4/{fhir}",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
                timeout=20,
            )
        else:
            response = browser.get({"record": "/record/", "organiser": "/organiser/"}[kind])
    except requests.RequestException as exc:
        return Outcome(kind, started, time.monotonic(), None, error=_described(exc))
    return Outcome(
        kind,
        started,
        time.monotonic(),
        response.status_code,
        acknowledged=response.status_code == 200,
        content_type=response.headers.get("Content-Type", ""),
        retry_after=response.headers.get("Retry-After"),
        body=response.text[:4000] if response.status_code >= 400 else "",
    )


class Recorder:
    """Outcomes from every thread, and a count of acknowledged writes to wait on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.acknowledged = 0

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            if outcome.acknowledged:
                self.acknowledged += 1

    def of(self, *, acknowledged: bool | None = None) -> list[Outcome]:
        with self.lock:
            return [
                o for o in self.outcomes if acknowledged is None or o.acknowledged == acknowledged
            ]
