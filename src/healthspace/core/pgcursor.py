"""Server-side prepared statements for the fixed statements every request runs.

Django binds parameters on the client by default (psycopg's ``ClientCursor``): PostgreSQL
parses and plans each statement anew. Measured under load (docs/performance.md, sixth
round), planning was most of the database's CPU per request on the hot paths: the bearer
token's join of five tables, the access facts' subqueries, the SCR items. A statement
prepared once per connection is planned once (a generic plan), and each request only
binds and executes it.

A generic plan is right only where the best plan does not depend on the values: the
lookups by a unique key and the small fixed joins this module is for. A list read with
``ORDER BY ... LIMIT`` over a non-unique key (who looked at a record: the newest 50 of a
patient's events) can get a generic plan that reads every one of the patient's events and
sorts them; measured so, its database CPU per request rose from 2.2 to 8-12 ms as the
trail grew. So nothing is prepared unless its author asks (``core.sql.objects(...,
prepared=True)``, ``core.sql.rows(..., prepared=True)`` or :func:`prefer_prepared`);
every other statement keeps Django's client-side binding, unchanged.

``DB_PREPARED_STATEMENTS=false`` turns it off (a PgBouncer in transaction pooling older
than 1.21, or one without ``max_prepared_statements``, cannot keep them;
docs/configuration.md).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql.base import Cursor as DjangoCursor
from psycopg._cursor_base import BaseCursor
from psycopg._queries import PostgresQuery

# The statements to prepare, by their exact text. Filled as statements are built (each
# once per shape and process); bounded in case a caller builds shapes without end.
_PREPARED: set[str] = set()
_MOST_PREPARED = 512


def prefer_prepared(statement: str) -> str:
    """Ask for ``statement`` to be prepared on PostgreSQL; returns it unchanged."""
    if len(_PREPARED) < _MOST_PREPARED:
        _PREPARED.add(statement)
    return statement


class PreparingCursor(DjangoCursor):
    """Django's client-side binding cursor, except for the statements of
    :func:`prefer_prepared`: those are bound on the server and prepared on their first
    run on the connection (psycopg's own prepared-statement cache, ``prepared_max``)."""

    _bound = False

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary=None):
        if prepare is None and type(query) is str and query in _PREPARED:
            self._bound = True
            try:
                return super().execute(query, params, prepare=True, binary=binary)
            finally:
                self._bound = False
        return super().execute(query, params, prepare=prepare, binary=binary)

    # psycopg's ClientCursorMixin overrides these three to merge the parameters into the
    # text and never prepare; for a preferred statement, psycopg's own Cursor behaviour.
    # (Private to psycopg, which is pinned; core/tests/test_pgcursor.py fails if a release
    # changes them: it checks the statement appears in pg_prepared_statements.)
    def _convert_query(self, query, params=None):
        if self._bound:
            pgq = PostgresQuery(self._tx)
            pgq.convert(query, params)
            return pgq
        return super()._convert_query(query, params)

    def _get_prepared(self, pgq, prepare=None):
        if self._bound:
            return BaseCursor._get_prepared(self, pgq, prepare)
        return super()._get_prepared(pgq, prepare)

    def _execute_send(self, query, *, force_extended=False, binary=None):
        if self._bound:
            return BaseCursor._execute_send(
                self, query, force_extended=force_extended, binary=binary
            )
        return super()._execute_send(query, force_extended=force_extended, binary=binary)


def enabled() -> bool:
    return bool(getattr(settings, "HEALTHSPACE_DB_PREPARED_STATEMENTS", True))


def install(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: a new PostgreSQL connection gets the cursor."""
    if connection.vendor != "postgresql" or not enabled():
        return
    raw = connection.connection
    raw.cursor_factory = PreparingCursor
    # Django turns psycopg's automatic preparing off (None), which also refuses an
    # explicit prepare=True; a number lets the preferred statements through. No other
    # statement is prepared: the client-side binding cursor never prepares.
    raw.prepare_threshold = 5
