"""Monthly partitions of the audit trail on PostgreSQL, and archiving old ones.

The migration partitions a fresh table and converts one that holds events; the
maintenance task creates partitions ahead and rehomes rows from the default partition;
`healthspace audit archive` detaches, exports and drops old months, and `audit verify`
still passes, resuming each chain at its signed archive boundary, and still finds
tampering in what remains.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from healthspace.audit import archive, checkpoints, partitions, services, verify
from healthspace.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from healthspace.audit.tests.conftest import record
from healthspace.audit.verify import verify_database

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="partitioning is PostgreSQL only (SQLite keeps one audit table). "
        "Run with DATABASE_URL=postgresql://...",
    ),
]

THIS_MONTH = partitions.month_start(datetime.now(UTC))


def at(month_offset: int, day: int = 10) -> datetime:
    month = partitions.add_months(THIS_MONTH, month_offset)
    return datetime(month.year, month.month, day, 12, 0, tzinfo=UTC)


def record_at(when: datetime, patient, monkeypatch, **kw):
    monkeypatch.setattr(services, "now", lambda: when)
    try:
        return record(patient, **kw)
    finally:
        monkeypatch.undo()


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def where(event_id) -> str:
    return sql("SELECT tableoid::regclass::text FROM audit_event WHERE id = %s", [event_id])[0][0]


def test_a_fresh_database_is_partitioned_with_months_ahead_and_a_default():
    assert partitions.is_partitioned()
    names = {p.name for p in partitions.partitions() if p.attached}
    for n in range(partitions.MONTHS_AHEAD + 1):
        assert partitions.partition_name(partitions.add_months(THIS_MONTH, n)) in names
    key = sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'audit_event_pkey'"
    )
    assert key == [("PRIMARY KEY (id, occurred_at)",)]
    event = record(uuid.uuid4())
    assert where(event.pk) == partitions.partition_name(THIS_MONTH)
    assert verify_database().ok


def test_a_link_cannot_be_appended_twice(monkeypatch):
    patient = uuid.uuid4()
    first = record(patient)
    # Within a month, the partition's unique (chain_key, seq) index refuses a copy.
    with pytest.raises(IntegrityError), transaction.atomic():
        sql(
            "INSERT INTO audit_event (occurred_at, patient_id, actor, action, outcome, reason,"
            " detail, chain_key, seq, prev_hash, hash) SELECT occurred_at, patient_id, actor,"
            " action, outcome, reason, detail, chain_key, seq, prev_hash, hash FROM audit_event"
            " WHERE id = %s",
            [first.pk],
        )
    # Across months, the head's compare-and-set: a writer whose head moved under it
    # (as if it had bypassed the lock) fails rather than append a second link 2.
    stale = AuditChainHead.objects.get(chain_key=str(patient))
    record(patient)
    monkeypatch.setattr(services, "_locked_head", lambda key, at: stale)
    with pytest.raises(services.ChainConflict):
        # Next month's partition has no link 2 of this chain, so only the head stops it.
        record_at(at(1), patient, monkeypatch)
    assert AuditEvent.objects.filter(chain_key=str(patient)).count() == 2
    assert verify_database().ok


def test_events_outside_every_partition_land_in_the_default_and_are_moved_out(monkeypatch):
    patient = uuid.uuid4()
    record(patient)
    far = datetime(2031, 5, 3, 8, 0, tzinfo=UTC)  # no partition this far ahead
    late = record_at(far, patient, monkeypatch)
    assert where(late.pk) == partitions.DEFAULT_PARTITION
    created = partitions.ensure_partitions()
    assert created == ["audit_event_y2031m05"]
    assert where(late.pk) == "audit_event_y2031m05"
    assert partitions.default_partition_rows() == 0
    assert partitions.ensure_partitions() == []  # idempotent
    assert verify_database().ok


def test_the_command_creates_partitions_ahead(capsys):
    call_command("audit", "partitions", "--months-ahead", "6")
    out = capsys.readouterr().out
    assert "0 event(s) in the default partition" in out
    names = {p.name for p in partitions.partitions()}
    assert partitions.partition_name(partitions.add_months(THIS_MONTH, 6)) in names


def test_the_migration_converts_a_table_that_holds_events(monkeypatch):
    executor = MigrationExecutor(connection)
    executor.migrate([("audit", "0003_action_time_index")])
    try:
        assert not partitions.is_partitioned()
        patient = uuid.uuid4()
        old = [record_at(at(-14 + n), patient, monkeypatch, n=n) for n in range(3)]
        other = record(uuid.uuid4())
        checkpoint_rows = sql("SELECT count(*) FROM audit_event")[0][0]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert partitions.is_partitioned()
    assert sql("SELECT count(*) FROM audit_event")[0][0] == checkpoint_rows
    assert where(old[0].pk) == partitions.partition_name(partitions.month_start(at(-14)))
    assert where(other.pk) == partitions.partition_name(THIS_MONTH)
    # The id sequence carries on after the copied rows.
    assert record(patient).pk > max(e.pk for e in [*old, other])
    assert verify_database().ok


def _trail(monkeypatch):
    """Patient A: events two and one month ago, and this month. B: two months ago only.
    An actor chain (no patient) a month ago. A checkpoint over all of it."""
    a, b = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    events = {
        "a_old": [record_at(at(-2, 3 + n), a, monkeypatch, n=n) for n in range(2)],
        "a_mid": [record_at(at(-1, 5), a, monkeypatch, n=2)],
        "b_old": [record_at(at(-2, 7 + n), b, monkeypatch, n=n) for n in range(3)],
        "sys": [record_at(at(-1, 9), None, monkeypatch)],
        "a_now": [record(a, n=3), record(a, n=4)],
    }
    # A fresh test database has partitions from this month on: the daily task moves the
    # older events out of the default partition into months of their own.
    partitions.ensure_partitions()
    checkpoints.checkpoint_create()
    return a, b, events


def test_archive_exports_and_drops_old_months_and_verify_resumes_at_the_boundary(
    monkeypatch, tmp_path, capsys
):
    a, b, events = _trail(monkeypatch)
    call_command("audit", "archive", "--before", f"{THIS_MONTH:%Y-%m}", "--to", str(tmp_path))
    line = json.loads(capsys.readouterr().out)
    path = tmp_path / f"audit-archive-before-{THIS_MONTH:%Y-%m}.ndjson"
    assert line["archive"] == str(path)
    assert line["events"] == 7 and line["chains"] == 3
    assert hashlib.sha256(path.read_bytes()).hexdigest() == line["sha256"]
    assert path.stat().st_mode & 0o777 == 0o600
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert rows[0]["format"] == archive.FORMAT
    archived = {e.pk for k in ("a_old", "a_mid", "b_old", "sys") for e in events[k]}
    assert {r["id"] for r in rows[1:]} == archived
    # Gone from the database, with their tables.
    assert not AuditEvent.objects.filter(pk__in=archived).exists()
    assert all(p.month >= THIS_MONTH for p in partitions.partitions())
    # The boundary is signed: the archive checkpoint pins each chain's last archived
    # link, and the file's digest.
    cp = AuditCheckpoint.objects.get(pk=line["checkpoint_id"])
    assert cp.archive_before == THIS_MONTH
    assert cp.heads[str(a)] == [3, events["a_mid"][0].hash]
    assert cp.heads[f"archive:{THIS_MONTH:%Y-%m}"] == [7, line["sha256"]]

    report = verify_database()
    assert report.ok, report.problems
    assert report.events == 2 and report.archived_chains == 1
    call_command("audit", "verify")
    assert "(1 chains resume after archived links): OK" in capsys.readouterr().out

    # Writing on: the next event of B, whose events were all archived, continues its chain.
    nxt = record(b)
    assert nxt.seq == 4 and nxt.prev_hash == events["b_old"][-1].hash
    checkpoints.checkpoint_create()
    assert verify_database().ok


@pytest.mark.parametrize(
    ("tamper", "seq", "what"),
    [
        ("delete_first_left", 5, verify.GAP),
        ("edit_first_left", 4, verify.EDITED),
        ("relink_first_left", 4, verify.LINK),
        ("rewind_archived_head", None, verify.HEAD_HASH),
        ("delete_archived_head", None, verify.NO_HEAD),
        ("forge_archive_mark", None, verify.CHECKPOINT),
    ],
)
def test_tampering_with_what_remains_is_still_found(monkeypatch, tmp_path, tamper, seq, what):
    a, b, events = _trail(monkeypatch)
    archive.archive_before(THIS_MONTH, tmp_path)
    first_left = events["a_now"][0]
    if tamper == "delete_first_left":
        sql("DELETE FROM audit_event WHERE id = %s", [first_left.pk])
    elif tamper == "edit_first_left":
        sql("UPDATE audit_event SET reason = 'audit' WHERE id = %s", [first_left.pk])
    elif tamper == "relink_first_left":
        # A forger who rewrites the first remaining event as if it started the chain.
        sql("UPDATE audit_event SET prev_hash = %s WHERE id = %s", ["0" * 64, first_left.pk])
    elif tamper == "rewind_archived_head":
        sql("UPDATE audit_chain_head SET seq = 1 WHERE chain_key = %s", [str(b)])
    elif tamper == "delete_archived_head":
        sql("DELETE FROM audit_chain_head WHERE chain_key = %s", [str(b)])
    elif tamper == "forge_archive_mark":
        # Marking an ordinary checkpoint as an archive does not make its heads boundaries.
        AuditCheckpoint.objects.filter(archive_before__isnull=True).update(
            archive_before=THIS_MONTH
        )
    report = verify_database()
    assert not report.ok
    assert any(p.what.startswith(what) for p in report.problems), report.problems
    if seq is not None:
        assert report.first.seq == seq and report.first.chain_key == str(a)
    with pytest.raises(CommandError, match="AUDIT TRAIL TAMPERED"):
        call_command("audit", "verify")


def test_deleting_a_partition_without_archiving_it_is_found(monkeypatch):
    _trail(monkeypatch)
    month = partitions.add_months(THIS_MONTH, -2)
    sql(f'DROP TABLE "{partitions.partition_name(month)}"')
    report = verify_database()
    assert not report.ok
    assert {p.what for p in report.problems} >= {verify.GAP, verify.NOT_IN_CHAIN}


def test_a_broken_trail_is_refused_and_nothing_changes(monkeypatch, tmp_path):
    _, _, events = _trail(monkeypatch)
    sql("UPDATE audit_event SET outcome = 'denied' WHERE id = %s", [events["b_old"][1].pk])
    before = sorted(p.name for p in partitions.partitions() if p.attached)
    with pytest.raises(archive.ArchiveRefused, match="broken"):
        archive.archive_before(THIS_MONTH, tmp_path)
    assert sorted(p.name for p in partitions.partitions() if p.attached) == before
    assert not list(tmp_path.iterdir())
    assert AuditEvent.objects.count() == 9
    assert not AuditCheckpoint.objects.filter(archive_before__isnull=False).exists()


def test_events_out_of_time_order_across_the_boundary_are_refused(monkeypatch, tmp_path):
    patient = uuid.uuid4()
    record_at(at(-1), patient, monkeypatch)
    record(patient)
    # A clock that went backwards: link 3 is dated before link 2's month.
    record_at(at(-1, 20), patient, monkeypatch)
    with pytest.raises(archive.ArchiveRefused, match="not in time order"):
        archive.archive_before(THIS_MONTH, tmp_path)
    assert not list(tmp_path.iterdir())
    assert verify_database().ok


def test_archives_follow_each_other(monkeypatch, tmp_path):
    _trail(monkeypatch)
    archive.archive_before(partitions.add_months(THIS_MONTH, -1), tmp_path)
    assert verify_database().ok
    archive.archive_before(THIS_MONTH, tmp_path)
    report = verify_database()
    assert report.ok, report.problems
    assert report.events == 2
    assert len(list(tmp_path.iterdir())) == 2


def test_refusals_name_the_reason(monkeypatch, tmp_path):
    with pytest.raises(CommandError, match="not a month"):
        call_command("audit", "archive", "--before", "2026-13", "--to", str(tmp_path))
    nxt = partitions.add_months(THIS_MONTH, 1)
    with pytest.raises(CommandError, match="before the current one"):
        call_command("audit", "archive", "--before", f"{nxt:%Y-%m}", "--to", str(tmp_path))
    with pytest.raises(CommandError, match="no partition ends"):
        call_command("audit", "archive", "--before", "2001-01", "--to", str(tmp_path))
    old = datetime(2001, 1, 1, tzinfo=UTC) - timedelta(days=3)
    record_at(old, uuid.uuid4(), monkeypatch)
    with pytest.raises(CommandError, match="default partition"):
        call_command("audit", "archive", "--before", "2001-01", "--to", str(tmp_path))


def test_the_worker_task_creates_partitions_and_queues_itself_for_tomorrow(monkeypatch):
    from healthspace.audit import tasks

    far = datetime(2031, 8, 3, 8, 0, tzinfo=UTC)
    record_at(far, uuid.uuid4(), monkeypatch)
    queued = []
    monkeypatch.setattr(
        type(tasks.audit_partitions_ensure),
        "using",
        lambda self, **kw: queued.append(kw) or self,
    )
    monkeypatch.setattr(type(tasks.audit_partitions_ensure), "enqueue", lambda self: None)
    assert tasks.audit_partitions_ensure.call() == "1 partition(s) created"
    assert "audit_event_y2031m08" in {p.name for p in partitions.partitions()}
    assert queued and queued[0]["run_after"] > datetime.now(UTC) + timedelta(hours=23)


def test_an_interrupted_archive_is_resumed(monkeypatch, tmp_path):
    _trail(monkeypatch)
    # A run that stopped after detaching (the process was killed): the verifier sees the
    # months missing, and the next run picks the detached table up.
    old = partitions.partition_name(partitions.add_months(THIS_MONTH, -2))
    sql(f'ALTER TABLE audit_event DETACH PARTITION "{old}"')
    assert not verify_database().ok
    result = archive.archive_before(THIS_MONTH, tmp_path)
    assert old in result.partitions and result.events == 7
    assert verify_database().ok
