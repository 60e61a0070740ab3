"""Nobody can learn whether an address has an account: registration and reset answer
the same page, send one email either way, and take about the same time."""

from __future__ import annotations

import re
import statistics
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from healthspace.accounts.passwords.tests.conftest import NEW_PASSWORD, PASSWORD, link_in

pytestmark = pytest.mark.django_db

KNOWN = "owner@example.org"
UNKNOWN = "stranger@example.org"
_VARYING = [
    re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"'),
    re.compile(r'nonce="[^"]+"'),
]


def _comparable(response, email: str) -> tuple[int, str, str]:
    """Status, redirect and body with what differs by design (per-response tokens and the
    address that was typed) taken out."""
    body = response.content.decode()
    for pattern in _VARYING:
        body = pattern.sub("", body)
    return response.status_code, response.get("Location", ""), body.replace(email, "<email>")


def _both(url_name: str, data: dict[str, str]) -> list[tuple[int, str, str]]:
    pages = []
    for email in (KNOWN, UNKNOWN):
        client = Client()
        posted = client.post(reverse(url_name), {**data, "email": email})
        pages.append(_comparable(posted, email))
        if posted.status_code == 302:
            pages.append(_comparable(client.get(posted["Location"]), email))
    return pages


def _same(pages: list[tuple[int, str, str]]) -> None:
    known, unknown = pages[: len(pages) // 2], pages[len(pages) // 2 :]
    assert known == unknown


def test_registering_a_known_or_unknown_address_gives_the_same_pages(owner):
    pages = _both("accounts:register", {"password": NEW_PASSWORD})
    assert pages[0][0] == 302 and "Check your email" in pages[1][2]
    _same(pages)


def test_a_refused_password_gives_the_same_page_for_a_known_or_unknown_address(owner):
    pages = _both("accounts:register", {"password": "sunshine1"})
    assert pages[0][0] == 200 and "This is a very common password" in pages[0][2]
    _same(pages)


def test_asking_for_a_reset_for_a_known_or_unknown_address_gives_the_same_pages(owner):
    pages = _both("accounts:password-reset", {})
    assert pages[0][0] == 302 and "Check your email" in pages[1][2]
    _same(pages)


def test_registering_a_known_address_tells_its_owner_and_changes_nothing(client, owner):
    client.post(
        reverse("accounts:register"), {"email": "OWNER@example.org", "password": NEW_PASSWORD}
    )
    (message,) = mail.outbox
    assert message.to == [KNOWN]
    assert "you already have an account" in message.body
    assert get_user_model().objects.filter(username__iexact=KNOWN).count() == 1
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)  # the attempt's password is not kept

    # the email's link lets the owner choose a new password if it was them
    client.get(link_in(message))
    client.post(reverse("accounts:password-reset-new"), {"password": NEW_PASSWORD})
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_registering_an_address_that_was_never_confirmed_offers_to_finish(client, make_account):
    make_account("halfway@example.org", confirmed=False)
    client.post(
        reverse("accounts:register"), {"email": "halfway@example.org", "password": NEW_PASSWORD}
    )
    (message,) = mail.outbox
    assert "never confirmed" in message.body and link_in(message)


def _medians_ms(url: str, pairs: list[tuple[dict, dict]]) -> tuple[float, float]:
    """Median time of each side, the two interleaved so that a busy machine slows both."""
    client, times = Client(), ([], [])
    for pair in pairs:
        for side, data in enumerate(pair):
            started = time.perf_counter()
            response = client.post(url, data)
            times[side].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 302
    return statistics.median(times[0]), statistics.median(times[1])


def _assert_close(known_ms: float, unknown_ms: float) -> None:
    # Generous: the point is the same work on both paths (one Argon2id hash, one email), not
    # the machine's jitter. Without the dummy hash the known path is ~50x faster.
    assert abs(known_ms - unknown_ms) < 0.5 * max(known_ms, unknown_ms), (known_ms, unknown_ms)


def test_registration_takes_as_long_for_a_known_address_as_for_a_new_one(
    make_account, real_argon2, throttle_calls
):
    # Measured on the 2-core CI machine: ~245 ms either way (one Argon2id hash each).
    make_account(KNOWN)
    known = {"email": KNOWN, "password": NEW_PASSWORD}
    pairs = [(known, {**known, "email": f"new{n}@example.org"}) for n in range(14)]
    url = reverse("accounts:register")
    _medians_ms(url, pairs[:2])  # warm up: lists, templates, connections
    _assert_close(*_medians_ms(url, pairs[2:]))


def test_a_reset_request_takes_as_long_for_a_known_address_as_for_an_unknown_one(
    owner, throttle_calls
):
    # Measured: ~4 ms either way (one token or none, one email each).
    pairs = [({"email": KNOWN}, {"email": UNKNOWN})] * 23
    url = reverse("accounts:password-reset")
    _medians_ms(url, pairs[:3])
    _assert_close(*_medians_ms(url, pairs[3:]))
