"""Sessions with real requests: idle timeout, absolute lifetime, log out everywhere,
session list, new-device notice, key rotation at login."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from healthspace.accounts.models import Account, UserSession
from healthspace.accounts.sessions.services import describe_device
from healthspace.core.clock import now

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/140.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


@pytest.fixture
def user(db):
    u = get_user_model().objects.create_user(
        username="pat@example.org", email="pat@example.org", password=PASSWORD
    )
    Account.objects.create(user=u, email_confirmed_at=now())
    return u


def _logged_in(user, agent: str = CHROME_WINDOWS) -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post(reverse("web:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _signed_in(client: Client) -> bool:
    return client.get(reverse("accounts:sessions")).status_code == 200


def test_session_key_rotates_at_login(user):
    client = Client()
    client.get(reverse("web:login"))
    client.cookies[settings.SESSION_COOKIE_NAME] = "attacker-fixed-session-key-000000"
    client.post(reverse("web:login"), {"username": user.username, "password": PASSWORD})
    assert client.cookies[settings.SESSION_COOKIE_NAME].value != "attacker-fixed-session-key-000000"
    assert _signed_in(client)


def test_idle_timeout_ends_the_session(user, settings):
    settings.SESSION_COOKIE_AGE = 2
    client = _logged_in(user)
    assert _signed_in(client)
    time.sleep(3)
    response = client.get(reverse("accounts:sessions"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_activity_keeps_an_idle_session_alive(user, settings):
    settings.SESSION_COOKIE_AGE = 3
    client = _logged_in(user)
    for _ in range(3):
        time.sleep(1.2)
        assert _signed_in(client)


def _session_writes(client: Client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert _signed_in(client)
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
        and "django_session" in q["sql"]
    )


def test_an_active_session_is_written_once_a_minute_not_on_every_request(user, monkeypatch):
    from django.contrib.sessions.models import Session

    from healthspace.accounts.sessions import middleware

    client = _logged_in(user)
    _signed_in(client)  # the first page after login may still save the login's changes
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    expiry = Session.objects.get(session_key=key).expire_date
    assert [_session_writes(client) for _ in range(3)] == [0, 0, 0]
    # a minute later (a fifteenth of the 15-minute idle timeout) the next request saves
    # it, which moves its idle expiry on
    later = time.time() + middleware.touch_interval() + 1
    monkeypatch.setattr(middleware.time, "time", lambda: later)
    assert _session_writes(client) == 1
    assert Session.objects.get(session_key=key).expire_date > expiry
    assert _session_writes(client) == 0


def test_absolute_lifetime_ends_even_an_active_session(user, settings):
    settings.SESSION_ABSOLUTE_SECONDS = 2
    client = _logged_in(user)
    assert _signed_in(client)
    time.sleep(1)
    assert _signed_in(client)
    time.sleep(1.5)
    assert not _signed_in(client)


def test_log_out_everywhere_ends_every_session_with_the_next_request(user):
    phone, laptop = _logged_in(user, FIREFOX_LINUX), _logged_in(user)
    assert _signed_in(phone) and _signed_in(laptop)
    laptop.post(reverse("accounts:logout-everywhere"))
    assert not _signed_in(phone)
    assert not _signed_in(laptop)
    assert UserSession.objects.filter(ended_at__isnull=True).count() == 0


def test_log_out_other_devices_keeps_this_one(user):
    phone, laptop = _logged_in(user, FIREFOX_LINUX), _logged_in(user)
    laptop.post(reverse("accounts:sessions-end-others"))
    assert not _signed_in(phone)
    assert _signed_in(laptop)


def test_session_list_shows_devices_and_ends_only_my_own(user):
    other = get_user_model().objects.create_user(username="other@example.org", password=PASSWORD)
    Account.objects.create(user=other, email_confirmed_at=now())
    theirs = _logged_in(other)
    mine = _logged_in(user, FIREFOX_LINUX)
    _logged_in(user)
    page = mine.get(reverse("accounts:sessions")).content.decode()
    assert "Firefox on Linux" in page and "Chrome on Windows" in page and "This device" in page

    their_session = UserSession.objects.get(user=other)
    mine.post(reverse("accounts:session-end", args=[their_session.id]))
    assert _signed_in(theirs)  # someone else's session id ends nothing


def test_a_new_device_is_notified_by_email_without_clinical_content(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _logged_in(user)  # the very first sign-in: nothing to compare with
        _logged_in(user)  # same device again
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        _logged_in(user, FIREFOX_LINUX)
    assert len(mail.outbox) == 1
    assert "Firefox on Linux" in mail.outbox[0].body
    assert mail.outbox[0].to == ["pat@example.org"]


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        (CHROME_WINDOWS, "Chrome on Windows"),
        (FIREFOX_LINUX, "Firefox on Linux"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 Chrome/140.0 Safari/537.36 Edg/140.0",
            "Edge on Mac",
        ),
        ("", "Unknown device"),
    ],
)
def test_devices_are_described_in_words_a_person_recognises(agent, device):
    assert describe_device(agent) == device
