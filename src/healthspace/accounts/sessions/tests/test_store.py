"""The session store reads the session, its signed-in record and its user in one
statement; the rows read with it are used only for that session's key and that user, and
every check (active user, the session's hash, an ended or expired record) still holds."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from healthspace.accounts.models import Account, UserSession
from healthspace.accounts.sessions import store
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.core.clock import now
from healthspace.core.tests.test_sql import _same

pytestmark = pytest.mark.django_db
SESSIONS = "accounts:sessions"  # a signed-in page that reads the user and the record


@pytest.fixture
def user(db):
    u = get_user_model().objects.create_user(
        username="pat@example.org", email="pat@example.org", password="x" * 20
    )
    Account.objects.create(user=u, email_confirmed_at=now())
    return u


def _own_reads(queries) -> list[str]:
    own = ('FROM "auth_user" t ', 'FROM "accounts_usersession" t ', 'FROM "django_session" t ')
    return [q["sql"] for q in queries.captured_queries if any(t in q["sql"] for t in own)]


def test_one_statement_reads_the_session_its_record_and_its_user(user):
    client = signed_in_client(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(SESSIONS)).status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if '"django_session"' in q["sql"]]
    assert len(reads) == 1 and "accounts_usersession" in reads[0] and "auth_user" in reads[0]
    assert _own_reads(queries) == []  # nothing read again on its own


def test_the_rows_read_with_the_session_are_the_orms(user):
    client = signed_in_client(user)
    key = client.session.session_key
    session = store.SessionStore(key)
    session.load()
    read, record = session.record_read_with(key)
    assert read
    fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    _same([session.user_read_with(user.pk)], [get_user_model().objects.get(pk=user.pk)], fields)
    _same(
        [record],
        [UserSession.objects.only(*store._RECORD_FIELDS).get(pk=record.pk)],
        store._RECORD_FIELDS,
    )
    assert session.user_read_with(user.pk + 1) is None  # another user: read it apart
    assert session.record_read_with("another key") == (False, None)
    session.cycle_key()  # a new key (login, step-up): the rows are for the old one
    assert session.record_read_with(session.session_key) == (False, None)
    assert session.user_read_with(user.pk) is None


def test_a_session_without_a_record_reads_no_user_and_is_logged_out(user):
    client = signed_in_client(user)
    key = client.session.session_key
    UserSession.objects.all().delete()
    session = store.SessionStore(key)
    session.load()
    assert session.record_read_with(key) == (True, None)
    assert session.user_read_with(user.pk) is None
    response = client.get(reverse(SESSIONS))
    assert response.status_code == 302 and reverse("web:login") in response["Location"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda u: get_user_model().objects.filter(pk=u.pk).update(is_active=False),
                     id="user deactivated"),
        pytest.param(lambda u: UserSession.objects.update(ended_at=now()), id="record ended"),
        pytest.param(lambda u: UserSession.objects.update(expires_at=now()), id="record expired"),
        pytest.param(lambda u: get_user_model().objects.filter(pk=u.pk).update(password="x"),
                     id="password changed elsewhere"),
    ],
)  # fmt: skip
def test_every_check_still_holds_on_the_rows_read_with_the_session(user, change):
    client = signed_in_client(user)
    assert client.get(reverse(SESSIONS)).status_code == 200
    change(user)
    response = client.get(reverse(SESSIONS))
    assert response.status_code == 302 and reverse("web:login") in response["Location"]


def test_the_store_is_in_view_only_while_the_user_is_looked_up(user):
    client = signed_in_client(user)
    client.get(reverse(SESSIONS))
    assert store.LOOKING_UP.get() is None


def test_an_expired_session_reads_nothing(user):
    client = signed_in_client(user)
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=now())
    session = store.SessionStore(key)
    assert session.load() == {}
    assert session.record_read_with(key) == (False, None)
