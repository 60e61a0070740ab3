"""Monthly range partitions of ``audit_event`` on PostgreSQL (SQLite keeps one table).

The table is partitioned by ``occurred_at`` (migration ``audit.0004_partition_by_month``):
one partition per calendar month (UTC), named ``audit_event_yYYYYmMM``, plus
``audit_event_default`` as a safety net for an event whose month has no partition yet.
:func:`ensure_partitions` (``healthspace audit partitions``, run daily by cron or a worker)
creates the partitions of the coming months ahead of time and moves any rows that landed
in the default partition into a partition of their own.

Keys on a partitioned table must include the partition key, so:

- the primary key is ``(id, occurred_at)``; ``id`` still comes from one sequence, so it
  stays unique and Django keeps treating ``id`` as the primary key;
- ``(chain_key, seq)`` is unique *within each partition* (a unique index on every
  partition, which is also the index the verifier walks). Across months, two writers
  cannot append the same link because the append holds the chain's head row
  (``SELECT ... FOR UPDATE``) and moves it with a compare-and-set
  (``UPDATE ... WHERE seq = <old seq>``, audit.services): the head, one row with a
  primary key, is the global guard; the per-partition index is a second one.

See docs/audit.md ("Partitions and archiving").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection, transaction

from healthspace.core.clock import now

TABLE = "audit_event"
DEFAULT_PARTITION = "audit_event_default"
MONTHS_AHEAD = 3
_NAME = re.compile(r"^audit_event_y(\d{4})m(\d{2})$")


@dataclass(frozen=True)
class Partition:
    name: str
    month: date  # first day of the month it holds
    attached: bool

    @property
    def upper(self) -> date:
        return add_months(self.month, 1)


def is_partitioned(using=None) -> bool:
    conn = connection if using is None else using
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [TABLE],
        )
        return cursor.fetchone() is not None


def month_start(value: date | datetime) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return date(value.year, value.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + (month.month - 1) + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def parse_month(text: str) -> date:
    """``YYYY-MM`` → the first day of that month; ValueError otherwise."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def partitions() -> list[Partition]:
    """Monthly partitions, attached or left detached (an interrupted archive), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p "
            "  ON p.oid = i.inhparent WHERE i.inhrelid = c.oid AND p.relname = %s) "
            "FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname LIKE %s "
            "AND c.relnamespace = current_schema()::regnamespace",
            [TABLE, f"{TABLE}\\_y%"],
        )
        found = []
        for name, attached in cursor.fetchall():
            match = _NAME.match(name)
            if match:
                found.append(
                    Partition(name, date(int(match.group(1)), int(match.group(2)), 1), attached)
                )
    return sorted(found, key=lambda p: p.month)


def create_partition_sql(month: date, *, attach: bool = True) -> list[str]:
    """SQL that creates the partition for ``month`` with its unique (chain_key, seq) index.

    Created as a plain table and then attached, so that rows already in the default
    partition for that month can be moved into it first (ATTACH then finds the default
    partition clean; a plain CREATE ... PARTITION OF would fail on such rows).
    """
    name = partition_name(month)
    lower, upper = _bound(month), _bound(add_months(month, 1))
    sql = [
        f'CREATE TABLE "{name}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
        f'CREATE UNIQUE INDEX "{name}_chain_seq" ON "{name}" ("chain_key", "seq")',
    ]
    if attach:
        sql += [
            # Rows of this month that fell into the default partition move to their own.
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE "occurred_at" >= '  # noqa: S608 (names are constants or partition names matched by a regex)
            f"'{lower}' AND \"occurred_at\" < '{upper}' RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved',
            f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ('{lower}') TO ('{upper}')",
        ]
    return sql


def ensure_partitions(*, months_ahead: int = MONTHS_AHEAD, today: date | None = None) -> list[str]:
    """Create the partitions from this month to ``months_ahead`` months ahead, and one for
    every month that has rows in the default partition. Returns the partitions created.

    Idempotent; safe beside live writers (each partition is created in its own short
    transaction; attaching takes a SHARE UPDATE EXCLUSIVE lock on the table, which does
    not block inserts). A no-op on SQLite.
    """
    if not is_partitioned():
        return []
    start = month_start(today or now())
    wanted = {add_months(start, n) for n in range(months_ahead + 1)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "  # noqa: S608 (names are constants or partition names matched by a regex)
            f'FROM "{DEFAULT_PARTITION}"'
        )
        wanted |= {row[0] for row in cursor.fetchall()}
    existing = {p.month for p in partitions()}
    created = []
    for month in sorted(wanted - existing):
        with transaction.atomic(), connection.cursor() as cursor:
            # Serialise with another run of this task (two creators of one month).
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('healthspace.audit.partitions'))")
            if month in {p.month for p in partitions()}:
                continue
            for statement in create_partition_sql(month):
                cursor.execute(statement)
        created.append(partition_name(month))
    return created


def default_partition_rows() -> int:
    if not is_partitioned():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{DEFAULT_PARTITION}"')  # noqa: S608 (names are constants or partition names matched by a regex)
        return cursor.fetchone()[0]
