from __future__ import annotations

import os
import shutil
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections


def granian_argv(
    *, host: str, port: int, workers: int, threads: int, target: str, log_level: str = "warning"
) -> list[str]:
    """The production server: granian's WSGI interface with a bounded thread pool.

    granian's default WSGI pool is backpressure/2 = 256 threads per worker; with Django's
    per-thread persistent connections that exceeds PostgreSQL's max_connections and ends
    in "too many clients" (docs/performance.md), so the pool is always set."""
    granian = shutil.which("granian") or os.path.join(os.path.dirname(sys.executable), "granian")
    return [
        granian, "--interface", "wsgi", "--host", host, "--port", str(port),
        "--workers", str(workers), "--blocking-threads", str(threads),
        "--backpressure", str(threads), "--no-ws", "--log-level", log_level, target,
    ]  # fmt: skip


def connection_budget() -> int | None:
    """PostgreSQL's max_connections less the superuser reserve, or None (SQLite)."""
    conn = connections["default"]
    if conn.vendor != "postgresql":
        return None
    with conn.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        total = int(cursor.fetchone()[0])
        cursor.execute("SHOW superuser_reserved_connections")
        reserved = int(cursor.fetchone()[0])
    return total - reserved


class Command(BaseCommand):
    help = (
        "Serve HealthSpace in production: granian WSGI, bounded blocking threads, persistent "
        "database connections, DEBUG off. Migrations and static files are separate steps."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")),
            help="processes (default $WEB_WORKERS or 2: one per core)",
        )  # fmt: skip
        parser.add_argument(
            "--threads", type=int, default=int(os.environ.get("WEB_THREADS", "4")),
            help="blocking threads per worker (default $WEB_THREADS or 4)",
        )  # fmt: skip
        parser.add_argument(
            "--wsgi", default="healthspace.config.wsgi:application", help=argparse_suppress()
        )
        parser.add_argument("--log-level", default="warning")
        parser.add_argument(
            "--check", action="store_true", help="check the configuration, print the command, exit"
        )

    def handle(self, *args, host, port, workers, threads, wsgi, log_level, check, **options):
        if settings.DEBUG:
            raise CommandError("HEALTHSPACE_DEBUG is on: debug pages show settings and data.")
        if workers < 1 or threads < 1:
            raise CommandError("--workers and --threads must be at least 1.")
        for alias, db in settings.DATABASES.items():
            if db["ENGINE"].endswith("postgresql") and not db.get("CONN_MAX_AGE"):
                raise CommandError(
                    f"DB_CONN_MAX_AGE is 0 for {alias!r}: every request would open a new "
                    "database connection (8-15x slower). Set it above 0."
                )
        budget = connection_budget()
        # each thread keeps one connection per database alias on the same server
        needed = (
            workers
            * threads
            * sum(1 for db in settings.DATABASES.values() if db["ENGINE"].endswith("postgresql"))
        )
        if budget is not None and needed > budget:
            raise CommandError(
                f"{workers} workers x {threads} threads need {needed} database connections; "
                f"the server allows {budget}. Lower --threads or --workers, or add a pooler."
            )
        argv = granian_argv(
            host=host, port=port, workers=workers, threads=threads, target=wsgi,
            log_level=log_level,
        )  # fmt: skip
        if check:
            self.stdout.write(" ".join(argv))
            return
        sys.stdout.flush()
        connections.close_all()  # the server's threads open their own
        os.execv(argv[0], argv)  # noqa: S606 - fixed argv, no shell


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS
