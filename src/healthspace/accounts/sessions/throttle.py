"""Throttling of guessing (passwords, second factors, linkage details). Stub: filled in by
the sessions/throttling work. Interface used by login, factors and linkage."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int = 0


def check(request: HttpRequest, *, kind: str, identifier: str) -> Verdict:
    return Verdict(True)


def record(
    request: HttpRequest, *, kind: str, identifier: str, user=None, success: bool, reason: str = ""
) -> None:
    return None
