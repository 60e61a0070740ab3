"""Audit trail at volume on PostgreSQL: bytes per event (with indexes) and the
"who looked at my record" newest-50 query on the partitioned table.

    .venv/bin/python bench/audit_volume.py [--events 2000000] [--per-patient 10]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

Creates a throw-away database next to --database-url (``hs_scale_audit_volume``), applies
the audit app's migrations (the real partitioned schema of ``audit.0004``), fills
``audit_event`` server-side with ``generate_series``: ``--events`` events over the
partitions of four months, ``--per-patient`` events per patient chain, with the detail a
real SCR view writes (roles, organisation, sections, request id) and real-length hashes.
Then it prints, one line each, ``NAME value unit ref=value ratio=x.xx goal=...``:

- ``audit_bytes_per_event``: pg_total_relation_size over every partition (heap, TOAST,
  all indexes) / rows. ``ref`` is the minimal "who viewed" table of the performance
  anchors (patient_id uuid, occurred_at, actor, action as text, one (patient_id,
  occurred_at DESC) index), built from the same rows in the same run; ``ratio`` = ref/value;
  the goal (issue 8) is <= 120 B at 100 M events;
- ``audit_bytes_per_event_compact``: the same rows in a compacted layout (hashes as 32-byte
  bytea, no prev_hash column, chain_key NULL when it is the patient id, no (action,
  occurred_at) index), to show what that redesign would save;
- ``audit_bytes_per_event_v2``: the same rows in the v2 design of docs/scaling.md
  ("Toward 120 B"): no stored hashes (the verifier recomputes each chain from its signed
  checkpoint), the chain as a uuid and seq as an integer, actor, action with outcome,
  reason and detail (without its request id) as integers into lookup tables, the request
  id as 64 bits, one (chain, seq) index per partition and no other; the lookup tables
  are printed apart (a fixed cost, not per event), and ``who_looked_newest50_v2`` times
  the newest 50 of a patient from it, with the labels joined back;
- one line per index and for the heap;
- ``who_looked_newest50``: median ms of the newest-50 query for random patients, with
  its EXPLAIN (ANALYZE, BUFFERS) printed once.

Measured numbers and the machine are in docs/scaling.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "hs_scale_audit_volume"
GOAL = 120.0

WHO_LOOKED = (
    "SELECT id, occurred_at, actor, action, outcome, reason, detail FROM audit_event "
    "WHERE patient_id = %s ORDER BY occurred_at DESC, id DESC LIMIT 50"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--per-patient", type=int, default=10)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--db", default=DB, help="name of the throw-away database")
    args = parser.parse_args()

    import psycopg

    base = args.database_url.rsplit("/", 1)[0]
    admin = base + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}"')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    os.environ["HEALTHSPACE_DATA_DIR"] = tempfile.mkdtemp(prefix="hs-bench-")
    os.environ["DATABASE_URL"] = f"{base}/{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", "audit", verbosity=0)  # the audit app has no dependencies
    connections.close_all()
    try:
        with psycopg.connect(f"{base}/{args.db}", autocommit=True) as conn:
            run(conn, args)
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    return 0


def run(conn, args) -> None:
    n, per = args.events, args.per_patient
    patients = max(1, n // per)
    print(
        f"# PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}; "
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {sys.version.split()[0]}; "
        f"{n} events, {patients} patients"
    )
    t = time.perf_counter()
    # Event i: patient i % patients, link i // patients + 1 of its chain; dated in order
    # over the four months the migration made partitions for (this month and next 3).
    conn.execute(
        """
        INSERT INTO audit_event (id, occurred_at, patient_id, actor, action, outcome, reason,
                                 detail, chain_key, seq, prev_hash, hash)
        SELECT i,
               date_trunc('month', now()) + (i::float8 / %(n)s) * interval '119 days',
               p.id,
               'staff:user:' || (i %% 5000),
               CASE WHEN i %% 10 < 7 THEN 'scr.view' WHEN i %% 10 < 9 THEN 'patient.find'
                    ELSE 'permission.record' END,
               'success',
               'permission-given',
               jsonb_build_object(
                 'roles', jsonb_build_array('R8000'),
                 'org', 'Y' || lpad((i %% 900)::text, 5, '0'),
                 'sections', jsonb_build_array('allergies', 'medications', 'problems'),
                 'request_id', md5(i::text)),
               p.id::text,
               i / %(patients)s + 1,
               md5(i::text || 'p') || md5(i::text || 'q'),
               md5(i::text || 'h') || md5(i::text || 'k')
        FROM generate_series(0, %(n)s - 1) AS i,
             LATERAL (SELECT (lpad(to_hex(i %% %(patients)s), 8, '0')
                              || '-0000-4000-8000-000000000000')::uuid AS id) AS p
        """,
        {"n": n, "patients": patients},
    )
    conn.execute("SELECT setval('audit_event_id_seq', %s)", [n])
    conn.execute("VACUUM ANALYZE audit_event")
    load = time.perf_counter() - t
    default_rows = conn.execute("SELECT count(*) FROM audit_event_default").fetchone()[0]
    assert default_rows == 0, "events landed in the default partition"
    print(f"# loaded in {load:.1f} s ({n / load:,.0f} rows/s incl. 4 indexes)")

    total, parts = sizes(conn, "audit_event")
    ref_total = reference(conn)
    compact_total = compact(conn)
    goal = f"<={GOAL:.0f}B@100M"
    line("audit_bytes_per_event", total / n, "B", ref_total / n, goal)
    line("audit_bytes_per_event_compact", compact_total / n, "B", ref_total / n, goal)
    v2_total, v2_lookups = v2(conn)
    line("audit_bytes_per_event_v2", v2_total / n, "B", ref_total / n, goal)
    print(f"audit_bytes_v2_lookup_tables {v2_lookups / 2**20:.1f} MiB (in all, not per event)")
    for name, size in parts.items():
        print(f"audit_bytes_{name} {size / n:.1f} B")

    ids = [
        conn.execute(
            "SELECT (lpad(to_hex(%s::int), 8, '0') || '-0000-4000-8000-000000000000')::uuid",
            [random.randrange(patients)],
        ).fetchone()[0]
        for _ in range(200)
    ]
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + WHO_LOOKED, [ids[0]]).fetchall()
    print("# " + "\n# ".join(row[0] for row in plan))
    times = []
    for patient in ids:
        t = time.perf_counter()
        conn.execute(WHO_LOOKED, [patient]).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    ref_times = []
    for patient in ids:
        t = time.perf_counter()
        conn.execute(
            "SELECT patient_id, occurred_at, actor, action FROM audit_volume_ref "
            "WHERE patient_id = %s ORDER BY occurred_at DESC LIMIT 50",
            [patient],
        ).fetchall()
        ref_times.append((time.perf_counter() - t) * 1000)
    v2_times = []
    for patient in ids:
        t = time.perf_counter()
        conn.execute(WHO_LOOKED_V2, [patient]).fetchall()
        v2_times.append((time.perf_counter() - t) * 1000)
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + WHO_LOOKED_V2, [ids[1]]).fetchall()
    print("# v2: " + "\n# v2: ".join(row[0] for row in plan))
    print(
        f"who_looked_newest50_v2 {statistics.median(v2_times):.3f} ms "
        f"p99={sorted(v2_times)[int(len(v2_times) * 0.99)]:.3f}"
    )
    median, ref = statistics.median(times), statistics.median(ref_times)
    print(
        f"who_looked_newest50 {median:.3f} ms ref={ref:.3f} ratio={ref / median:.2f} "
        f"goal=one-index-range-scan-per-partition p99={sorted(times)[int(len(times) * 0.99)]:.3f}"
    )


WHO_LOOKED_V2 = (
    "SELECT e.occurred_at, a.label, c.code, r.code, d.detail, e.request "
    "FROM (SELECT * FROM audit_v2_event WHERE chain = %s ORDER BY seq DESC LIMIT 50) e "
    "JOIN audit_v2_actor a ON a.id = e.actor JOIN audit_v2_code c ON c.id = e.event "
    "JOIN audit_v2_code r ON r.id = e.reason JOIN audit_v2_detail d ON d.id = e.detail "
    "ORDER BY e.seq DESC"
)


def v2(conn) -> tuple[int, int]:
    """The v2 design (docs/scaling.md, "Toward 120 B") built from the same rows: bytes of
    the event table with its one index, and of the lookup tables."""
    conn.execute("CREATE TABLE audit_v2_actor (id serial PRIMARY KEY, label text UNIQUE NOT NULL)")
    conn.execute("INSERT INTO audit_v2_actor (label) SELECT DISTINCT actor FROM audit_event")
    conn.execute(
        "CREATE TABLE audit_v2_code (id smallserial PRIMARY KEY, kind text NOT NULL, "
        "code text NOT NULL, UNIQUE (kind, code))"
    )
    conn.execute(
        "INSERT INTO audit_v2_code (kind, code) SELECT DISTINCT 'event', action || ' ' || "
        "outcome FROM audit_event UNION SELECT DISTINCT 'reason', reason FROM audit_event"
    )
    conn.execute(
        "CREATE TABLE audit_v2_detail (id serial PRIMARY KEY, detail jsonb UNIQUE NOT NULL)"
    )
    conn.execute(
        "INSERT INTO audit_v2_detail (detail) SELECT DISTINCT detail - 'request_id' FROM audit_event"
    )
    # column order packs to 72 bytes a row (timestamp, uuid, four 4-byte, two 2-byte, 8)
    conn.execute(
        """
        CREATE TABLE audit_v2_event (
            occurred_at timestamptz NOT NULL, chain uuid NOT NULL, seq integer NOT NULL,
            actor integer NOT NULL, detail integer NOT NULL, event smallint NOT NULL,
            reason smallint NOT NULL, request bigint
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    _monthly_partitions(conn, "audit_v2_event")
    conn.execute(
        """
        INSERT INTO audit_v2_event
        SELECT e.occurred_at, e.patient_id, e.seq, a.id, d.id, c.id, r.id,
               ('x' || left(e.detail ->> 'request_id', 16))::bit(64)::bigint
        FROM audit_event e
        JOIN audit_v2_actor a ON a.label = e.actor
        JOIN audit_v2_code c ON c.kind = 'event' AND c.code = e.action || ' ' || e.outcome
        JOIN audit_v2_code r ON r.kind = 'reason' AND r.code = e.reason
        JOIN audit_v2_detail d ON d.detail = e.detail - 'request_id'
        """
    )
    for (partition,) in conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits "
        "WHERE inhparent = 'audit_v2_event'::regclass"
    ).fetchall():  # unique per partition, as audit.0004 does (the head guards the rest)
        conn.execute(f"CREATE UNIQUE INDEX ON {partition} (chain, seq)")
    conn.execute("VACUUM ANALYZE audit_v2_event")
    total, _ = sizes(conn, "audit_v2_event")
    lookups = sum(
        conn.execute("SELECT pg_total_relation_size(%s::regclass)", [t]).fetchone()[0]
        for t in ("audit_v2_actor", "audit_v2_code", "audit_v2_detail")
    )
    return total, lookups


def line(name: str, value: float, unit: str, ref: float, goal: str) -> None:
    print(f"{name} {value:.1f} {unit} ref={ref:.1f} ratio={ref / value:.2f} goal={goal}")


def sizes(conn, parent: str) -> tuple[int, dict[str, int]]:
    rows = conn.execute(
        """
        SELECT c.oid::regclass::text, pg_total_relation_size(c.oid),
               pg_relation_size(c.oid) + coalesce(pg_total_relation_size(c.reltoastrelid), 0)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
        """,
        [parent],
    ).fetchall()
    total = sum(r[1] for r in rows)
    parts = {"heap": sum(r[2] for r in rows)}
    for name, size in conn.execute(
        """
        SELECT pi.relname, sum(pg_relation_size(ci.oid))
        FROM pg_inherits i
        JOIN pg_index x ON x.indrelid = i.inhrelid
        JOIN pg_class ci ON ci.oid = x.indexrelid
        LEFT JOIN pg_inherits ii ON ii.inhrelid = x.indexrelid
        LEFT JOIN pg_class pi ON pi.oid = ii.inhparent
        WHERE i.inhparent = %s::regclass
        GROUP BY pi.relname
        """,
        [parent],
    ).fetchall():
        parts[f"index_{name or 'chain_seq_per_partition'}"] = int(size)
    return total, parts


def _monthly_partitions(conn, parent: str) -> None:
    """Partitions of ``parent`` for the four months the events are dated in."""
    for lower, upper in conn.execute(
        "SELECT date_trunc('month', now()) + m * interval '1 month', "
        "date_trunc('month', now()) + (m + 1) * interval '1 month' FROM generate_series(0, 3) m"
    ).fetchall():
        conn.execute(
            f"CREATE TABLE {parent}_{lower:%Y%m} PARTITION OF {parent} "
            f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
        )


def reference(conn) -> int:
    """The anchors' minimal who-viewed table, from the same rows."""
    conn.execute(
        "CREATE TABLE audit_volume_ref AS SELECT patient_id, occurred_at, "
        "actor::text, action::text FROM audit_event"
    )
    conn.execute("CREATE INDEX ON audit_volume_ref (patient_id, occurred_at DESC)")
    conn.execute("VACUUM ANALYZE audit_volume_ref")
    return conn.execute("SELECT pg_total_relation_size('audit_volume_ref')").fetchone()[0]


def compact(conn) -> int:
    """The same rows, hashes as bytea, prev_hash and patient chain keys dropped, no
    (action, occurred_at) index: a possible v2 layout (not what the application writes)."""
    conn.execute(
        """
        CREATE TABLE audit_volume_compact (
            id bigint NOT NULL, occurred_at timestamptz NOT NULL, patient_id uuid,
            actor varchar(200) NOT NULL, action varchar(64) NOT NULL,
            outcome varchar(16) NOT NULL, reason varchar(200) NOT NULL, detail jsonb NOT NULL,
            chain_key varchar(64), seq bigint NOT NULL, hash bytea NOT NULL,
            PRIMARY KEY (id, occurred_at)
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    _monthly_partitions(conn, "audit_volume_compact")
    conn.execute(
        "INSERT INTO audit_volume_compact SELECT id, occurred_at, patient_id, actor, action, "
        "outcome, reason, detail, NULL, seq, decode(hash, 'hex') FROM audit_event"
    )
    conn.execute("CREATE INDEX ON audit_volume_compact (patient_id, occurred_at DESC)")
    conn.execute("CREATE INDEX ON audit_volume_compact (patient_id, seq)")
    conn.execute("VACUUM ANALYZE audit_volume_compact")
    total, _ = sizes(conn, "audit_volume_compact")
    return total


if __name__ == "__main__":
    sys.exit(main())
