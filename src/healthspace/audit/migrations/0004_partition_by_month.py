"""Partition ``audit_event`` by month on PostgreSQL (SQLite keeps one table).

Works on a fresh database and on one that already holds events: the table is renamed
aside, a partitioned table with the same columns takes its name, a partition is created
for every month that has events (and the next months, plus a default partition), the
rows are copied across in one statement, the old table is dropped, and the primary key
and indexes are built on the filled partitions (faster than maintaining them row by row).
The id sequence continues where the old one stopped. Everything runs in the migration's
transaction: a failure leaves the old table as it was. The table is locked against
writers for the copy (about 1M rows/s here): on a large trail, run it in a maintenance
window.

The Django model is unchanged: ``id`` stays the model's primary key (ids come from one
sequence, so they are unique), while the table's key is ``(id, occurred_at)``, because a
key on a partitioned table must include the partition key. Not Django 6.1's
``CompositePrimaryKey``: Django does not migrate an existing table to or from one, ``pk``
would become a tuple (the FHIR AuditEvent id, ``audit_event_id`` references in cases and
staff, keyset paging all use the integer id), and a partitioned table is beyond what its
schema editor creates anyway. The model's unique
``(chain_key, seq)`` constraint is realised as a unique index on each partition (see
``audit.partitions`` for why that, with the head row's compare-and-set, still stops two
writers appending the same link).
"""

from datetime import UTC, datetime

from django.db import migrations

from healthspace.audit import partitions

COLUMNS = (
    "id, occurred_at, patient_id, actor, action, outcome, reason, detail, "
    "chain_key, seq, prev_hash, hash"
)


def _run(cursor, statements):
    for statement in statements:
        cursor.execute(statement)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT min(occurred_at), coalesce(max(id), 0) FROM audit_event")
        oldest, max_id = cursor.fetchone()
        _run(
            cursor,
            [
                "ALTER TABLE audit_event RENAME TO audit_event_unpartitioned",
                """
                CREATE TABLE audit_event (
                    id bigint NOT NULL,
                    occurred_at timestamp with time zone NOT NULL,
                    patient_id uuid NULL,
                    actor varchar(200) NOT NULL,
                    action varchar(64) NOT NULL,
                    outcome varchar(16) NOT NULL,
                    reason varchar(200) NOT NULL,
                    detail jsonb NOT NULL,
                    chain_key varchar(64) NOT NULL,
                    seq bigint NOT NULL CONSTRAINT audit_event_seq_check CHECK (seq >= 0),
                    prev_hash varchar(64) NOT NULL,
                    hash varchar(64) NOT NULL
                ) PARTITION BY RANGE (occurred_at)
                """,
                f"CREATE TABLE {partitions.DEFAULT_PARTITION} PARTITION OF audit_event DEFAULT",
                f"CREATE UNIQUE INDEX {partitions.DEFAULT_PARTITION}_chain_seq "
                f"ON {partitions.DEFAULT_PARTITION} (chain_key, seq)",
            ],
        )
        this_month = partitions.month_start(datetime.now(UTC))
        month = partitions.month_start(oldest) if oldest is not None else this_month
        last = partitions.add_months(max(this_month, month), partitions.MONTHS_AHEAD)
        while month <= last:
            _run(cursor, partitions.create_partition_sql(month))
            month = partitions.add_months(month, 1)
        _run(
            cursor,
            [
                f"INSERT INTO audit_event ({COLUMNS}) SELECT {COLUMNS} "  # noqa: S608 (names are constants or partition names matched by a regex)
                "FROM audit_event_unpartitioned",
                "DROP TABLE audit_event_unpartitioned",
                "CREATE SEQUENCE audit_event_id_seq OWNED BY audit_event.id",
                f"SELECT setval('audit_event_id_seq', {int(max_id) + 1}, false)",
                "ALTER TABLE audit_event ALTER COLUMN id SET DEFAULT nextval('audit_event_id_seq')",
                "ALTER TABLE audit_event ADD CONSTRAINT audit_event_pkey "
                "PRIMARY KEY (id, occurred_at)",
                "CREATE INDEX audit_patient_ts ON audit_event (patient_id, occurred_at DESC)",
                "CREATE INDEX audit_action_ts ON audit_event (action, occurred_at)",
            ],
        )


def unpartition(apps, schema_editor):
    """Back to one table with the constraints Django's model state describes."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit_event")
        (max_id,) = cursor.fetchone()
        _run(
            cursor,
            [
                "ALTER TABLE audit_event RENAME TO audit_event_partitioned",
                "CREATE TABLE audit_event (LIKE audit_event_partitioned INCLUDING CONSTRAINTS)",
                f"INSERT INTO audit_event ({COLUMNS}) SELECT {COLUMNS} "  # noqa: S608 (names are constants or partition names matched by a regex)
                "FROM audit_event_partitioned",
                "DROP TABLE audit_event_partitioned CASCADE",
                "ALTER TABLE audit_event ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY",
                f"SELECT setval(pg_get_serial_sequence('audit_event', 'id'), {int(max_id) + 1}, "
                "false)",
                "ALTER TABLE audit_event ADD CONSTRAINT audit_event_pkey PRIMARY KEY (id)",
                "ALTER TABLE audit_event ADD CONSTRAINT audit_chain_seq_unique "
                "UNIQUE (chain_key, seq)",
                "CREATE INDEX audit_patient_ts ON audit_event (patient_id, occurred_at DESC)",
                "CREATE INDEX audit_action_ts ON audit_event (action, occurred_at)",
            ],
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_action_time_index")]

    operations = [migrations.RunPython(partition, unpartition)]
