"""Test helper: call the WSGI application itself (as a server does) inside a test's
database transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def connection_kept_across_requests() -> Iterator[None]:
    """The WSGI application's request signals close the database connection at each
    request's start and end (Django's test client prevents it): on PostgreSQL that would
    end the test's transaction. Keep it open while a test calls the application itself."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
