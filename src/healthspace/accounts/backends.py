"""Django's ModelBackend, its one read on every signed-in request in plain SQL.

``AUTHENTICATION_BACKENDS`` names this class: password checks, permissions and
``user_can_authenticate`` are Django's; only ``get_user`` (the session's user, on every
request) reads by a statement built once (``core.sql.objects``, docs/performance.md).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from healthspace.core import sql

PATH = "healthspace.accounts.backends.ModelBackend"


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        found = sql.objects(model, where={"pk": user_id}, prepared=True)
        if not found:
            return None
        return found[0] if self.user_can_authenticate(found[0]) else None
