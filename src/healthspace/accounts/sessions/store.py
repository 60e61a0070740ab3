"""Django's database session store, its one read on every request in plain SQL.

``SESSION_ENGINE`` names this module. Sessions are the same rows in the same table
(``django_session``); only the read differs (docs/performance.md): one statement, built
once, that reads with the session its signed-in record (``UserSession``: is it ended, past
its lifetime?) and that record's user. Every signed-in request needs all three; read apart
they were three round trips, each planned and answered on its own.

The two rows read with the session are only a head start, never a decision:
``healthspace.accounts.backends.ModelBackend.get_user`` uses the user only for the user id
Django's ``auth.get_user`` asks for (and Django still checks the session's hash against
it), and ``session_is_live`` uses the record only while the session's key is the one it
was read for. Otherwise both read as before.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection, router
from django.utils import timezone

from healthspace.accounts.models import UserSession
from healthspace.core import sql

# The session store of the request whose user is being looked up: set by
# healthspace.accounts.middleware.AuthenticationMiddleware around Django's auth.get_user,
# and reset straight after, so a backend never sees another request's store.
LOOKING_UP: ContextVar[SessionStore | None] = ContextVar("hs_session_looking_up", default=None)

_RECORD_FIELDS = ("id", "ended_at", "expires_at", "last_seen_at", "user_id")


class SessionStore(DatabaseSessionStore):
    _read_for: str | None = None  # the session key the rows below were read with
    _record: UserSession | None = None
    _user: Any = None

    def _get_session_from_db(self):
        self._read_for = self._record = self._user = None
        if not self.session_key:
            self._session_key = None
            return None
        found = _read(self.model, self.session_key)
        if found is None:
            self._session_key = None
            return None
        session, record, user = found
        self._read_for, self._record, self._user = self.session_key, record, user
        return session

    def record_read_with(self, session_key: str | None) -> tuple[bool, UserSession | None]:
        """(True, the signed-in record or None) if the session was read with this key;
        (False, None) if it was not (not loaded, or its key changed since)."""
        if session_key and self._read_for == session_key:
            return True, self._record
        return False, None

    def user_read_with(self, user_id: Any) -> Any:
        """The user read with the session, if it is the user ``user_id`` names; else None."""
        user = self._user
        if user is None or self._read_for != self.session_key or self._record is None:
            return None
        return user if str(user.pk) == str(user_id) else None


def _read(session_model, session_key: str):
    from healthspace.accounts.sessions.services import key_hash

    statement, s_fields, r_fields, u_fields = _statement(session_model, connection.vendor)
    using = router.db_for_read(session_model)
    found = sql.rows(
        statement,
        [
            key_hash(session_key),
            session_key,
            sql.param(session_model, "expire_date", timezone.now()),
        ],
        using=using,
        prepared=True,  # one session by its key, one record by its unique hash, one user
    )
    if not found:
        return None
    row = found[0]
    n_s, n_r = len(s_fields), len(r_fields)
    session = sql.instance(session_model, s_fields, row[:n_s], using=using)
    record_values, user_values = row[n_s : n_s + n_r], row[n_s + n_r :]
    record = user = None
    if record_values[_pk_at(r_fields)] is not None:  # no record: all nulls
        record = sql.instance(UserSession, r_fields, record_values, using=using)
        if user_values[_pk_at(u_fields)] is not None:
            user = sql.instance(get_user_model(), u_fields, user_values, using=using)
    return session, record, user


@cache  # the statement and its fields, built once per session model and database vendor
def _statement(session_model, vendor: str):
    user_model = get_user_model()
    s_fields = sql.fields_of(session_model)
    r_fields = sql.fields_of(UserSession, _RECORD_FIELDS)
    u_fields = sql.fields_of(user_model)
    sessions, s = sql.names(session_model)
    records, r = sql.names(UserSession)
    users, u = sql.names(user_model)
    columns = [
        *(f"s.{s[f.attname]}" for f in s_fields),
        *(f"r.{r[f.attname]}" for f in r_fields),
        *(f"u.{u[f.attname]}" for f in u_fields),
    ]
    statement = (
        f"SELECT {', '.join(columns)} FROM {sessions} s "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"LEFT JOIN {records} r ON r.{r['key_hash']} = %s "
        f"LEFT JOIN {users} u ON u.{u['id']} = r.{r['user_id']} "
        f"WHERE s.{s['session_key']} = %s AND s.{s['expire_date']} > %s"
    )
    return statement, s_fields, r_fields, u_fields


def _pk_at(fields) -> int:
    return next(i for i, f in enumerate(fields) if f.primary_key)
