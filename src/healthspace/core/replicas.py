"""Reads that may be a little stale, sent to a PostgreSQL streaming replica.

When ``DATABASE_REPLICA_URL`` is set, settings add a ``"replica"`` database alias. Nothing
goes there by itself: a call site that can live with data a moment old (the "who has
looked at my record" list, usage statistics, the list of patients a bulk export walks)
says so explicitly::

    with replica_reads():
        rows = list(AuditEvent.objects.filter(...))

Inside that block :class:`ReplicaRouter` sends ORM reads to the replica, except:

- every write (and ``select_for_update``, which Django routes as a write) goes to the
  primary; objects read from the replica are saved to the primary;
- a read inside a transaction on the primary (``transaction.atomic()``: a transaction
  that writes, or may) stays on the primary, so it sees its own writes and its locks;
- the key store (``vault``) has its own database and router, and never uses the replica.

If the replica cannot be reached when a block starts, the block reads from the primary
(logged once per outage; the replica is retried after ``RETRY_AFTER`` seconds): a
replica outage costs capacity, never availability. See docs/scaling.md.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA = "replica"
RETRY_AFTER = 30.0  # seconds a failed replica is left alone before it is tried again
_VAULT_APP = "vault"

log = logging.getLogger(__name__)

# The alias reads go to in the current block (None: outside any replica_reads block).
_alias: contextvars.ContextVar[str | None] = contextvars.ContextVar("replica_alias", default=None)
_down_until = 0.0


def configured() -> bool:
    return REPLICA in settings.DATABASES


def _reachable() -> bool:
    global _down_until
    if time.monotonic() < _down_until:
        return False
    try:
        # With CONN_HEALTH_CHECKS, Django also checks a kept connection once per request.
        connections[REPLICA].ensure_connection()
    except DatabaseError:
        _down_until = time.monotonic() + RETRY_AFTER
        log.warning("database replica unreachable; reading from the primary for %ss", RETRY_AFTER)
        return False
    return True


@contextmanager
def replica_reads() -> Iterator[str]:
    """Send this block's ORM reads to the replica (if configured and up). Yields the
    alias chosen, for raw SQL (``connections[alias].cursor()``)."""
    alias = REPLICA if configured() and _reachable() else DEFAULT_DB_ALIAS
    token = _alias.set(alias)
    try:
        yield alias
    finally:
        _alias.reset(token)


class ReplicaRouter:
    """Listed before the key store's router: it decides only for the main database."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        alias = _alias.get()
        if alias != REPLICA or model._meta.app_label == _VAULT_APP:
            return None
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return None  # inside a transaction on the primary: read there
        return REPLICA

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        if model._meta.app_label == _VAULT_APP or not configured():
            return None
        # Explicit: without it Django would save an object to the alias it was read from.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        main = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in main and obj2._state.db in main:
            return True  # the same data
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None
