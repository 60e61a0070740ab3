"""Django's database session store, its one read on every request in plain SQL.

``SESSION_ENGINE`` names this module. Sessions are the same rows in the same table
(``django_session``); only the read is a statement built once (``core.sql.objects``)
instead of the ORM's query built and compiled on every request (docs/performance.md).
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

from healthspace.core import sql


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        if not self.session_key:
            self._session_key = None
            return None
        found = sql.objects(
            self.model,
            where={"session_key": self.session_key, "expire_date__gt": timezone.now()},
            prepared=True,
        )
        if not found:
            self._session_key = None
            return None
        return found[0]
