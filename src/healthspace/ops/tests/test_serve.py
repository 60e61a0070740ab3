"""healthspace serve: the production server's command line and its refusals."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = pytest.mark.django_db


def _check(*args: str) -> str:
    out = StringIO()
    call_command("serve", "--check", *args, stdout=out)
    return out.getvalue()


def test_serves_granian_wsgi_with_a_bounded_thread_pool():
    argv = _check("--workers", "2", "--threads", "3", "--port", "8123").split()
    assert argv[argv.index("--interface") + 1] == "wsgi"
    assert argv[argv.index("--blocking-threads") + 1] == "3"
    assert argv[argv.index("--backpressure") + 1] == "3"
    assert argv[argv.index("--workers") + 1] == "2"
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[-1] == "healthspace.config.wsgi:application"


def test_refuses_debug(settings):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="DEBUG"):
        _check()


def test_refuses_no_persistent_connections_on_postgresql(settings, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite connections are opened per request by design")
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)
    with pytest.raises(CommandError, match="DB_CONN_MAX_AGE"):
        _check()


def test_refuses_more_threads_than_the_database_allows_connections():
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL has a connection budget")
    with pytest.raises(CommandError, match="database connections"):
        _check("--workers", "4", "--threads", "500")
    assert "--blocking-threads 2" in _check("--workers", "1", "--threads", "2")
