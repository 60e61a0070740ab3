"""Usage statistics over a large audit trail: how long one month's figures take.

    .venv/bin/python bench/stats_at_volume.py [--events 1000000] [--database-url URL]

Fills a throw-away database (SQLite file, or a fresh PostgreSQL database next to the one
in --database-url) with ``--events`` audit events spread over 24 months, mostly actions no
figure counts (as a real trail is), runs ANALYZE, then times ``ops.stats.usage_compute`` for
the last month: the first time (counting 12 months) and then (median of 3, the table
from the kept months) and prints the plan of the monthly query. Prints
``stats_month seconds first=seconds events=N month_events=M``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

# what a trail is made of, roughly: the organiser and page views dominate
MIX = [
    ("organiser.view", 40),
    ("scr.view", 20),
    ("patient.find", 8),
    ("message.view", 8),
    ("audit.view", 5),
    ("organiser.change", 5),
    ("permission.record", 4),
    ("message.send", 3),
    ("consent.view", 3),
    ("record.export", 1),
    ("organiser.share", 1),
    ("linkage.verify", 1),
    ("emergency.access", 1),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    os.environ["HEALTHSPACE_DATA_DIR"] = tempfile.mkdtemp(prefix="hs-bench-")
    created_db = admin = None
    if args.database_url:
        import psycopg

        created_db = f"hs_bench_{uuid.uuid4().hex[:8]}"
        admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created_db}"')
        os.environ["DATABASE_URL"] = args.database_url.rsplit("/", 1)[0] + f"/{created_db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from healthspace.audit.models import AuditEvent
    from healthspace.ops import stats

    call_command("migrate", verbosity=0)
    actions = [a for a, weight in MIX for _ in range(weight)]
    end = datetime(2026, 11, 1, tzinfo=UTC)
    span = timedelta(days=730)
    step = span / args.events
    batch = []
    for i in range(args.events):
        action = actions[i % len(actions)]
        staff = action in ("patient.find", "permission.record", "emergency.access") or (
            action == "scr.view" and i % 3 == 0
        )
        batch.append(
            AuditEvent(
                occurred_at=end - span + step * i,
                patient_id=uuid.UUID(int=i % 200_000 + 1),
                actor=f"staff:user:{i % 5000}" if staff else f"patient:user:{i % 150_000}",
                action=action,
                outcome="success" if i % 50 else "denied",
                reason="bench",
                detail={"answer": "refused" if i % 7 == 0 else "given"}
                if action == "permission.record"
                else {"roles": ["clinician"], "org": f"Y{i % 900:05d}"}
                if staff
                else {},
                chain_key=f"bench-{i}",
                seq=1,
                prev_hash="0" * 64,
                hash="0" * 64,
            )
        )
        if len(batch) == 10_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    # On PostgreSQL the trail is partitioned by month: the past months' events landed in
    # the default partition; the daily task moves them into partitions of their own.
    from healthspace.audit import partitions

    partitions.ensure_partitions()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_event" if connection.vendor == "postgresql" else "ANALYZE")
    month = datetime(2026, 10, 1).date()
    start, stop = stats.month_start(month), stats.month_start(stats.month_add(month, 1))
    in_month = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=stop).count()
    t = time.perf_counter()
    stats.usage_compute(month)  # counts the 12 months and keeps those that have ended
    cold = time.perf_counter() - t
    times = []
    for _ in range(3):  # the table from the kept months; the month's own figures counted
        t = time.perf_counter()
        stats.usage_compute(month)
        times.append(time.perf_counter() - t)
    print(f"# {connection.vendor}; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(stats.monthly_rows(start, stop).explain())
    print(
        f"stats_month {statistics.median(times):.3f} s first={cold:.3f} s "
        f"events={args.events} month_events={in_month}"
    )
    if created_db:
        connections.close_all()
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{created_db}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
