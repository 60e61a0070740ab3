"""Django's ModelBackend, its one read on every signed-in request in plain SQL.

``AUTHENTICATION_BACKENDS`` names this class: password checks, permissions and
``user_can_authenticate`` are Django's; only ``get_user`` (the session's user, on every
request) differs: it takes the user the session store read with the session, when that is
the user asked for (accounts.sessions.store), and otherwise reads by a statement built
once (``core.sql.objects``, docs/performance.md).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from healthspace.accounts.sessions.store import LOOKING_UP
from healthspace.core import sql

PATH = "healthspace.accounts.backends.ModelBackend"


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id):
        store = LOOKING_UP.get()
        user = store.user_read_with(user_id) if store is not None else None
        if user is None:  # not read with this request's session: read it now
            found = sql.objects(get_user_model(), where={"pk": user_id}, prepared=True)
            if not found:
                return None
            user = found[0]
        return user if self.user_can_authenticate(user) else None
