"""Data keys that open nothing, found and deleted (``healthspace keystore orphans``).

A new key is committed in the key store before anything is sealed with it (docs/keystore.md),
so a unit of work that dies between the two leaves a *live* key whose subject is in no row
of the main database: an import killed with SIGKILL (or by the OOM killer) while its file
was open, an outer transaction rolled back after its import had made keys. Such a key
opens nothing that exists and names nobody (its id is a random patient id or a random
portal subject), but it is still key material that backups of the key store carry about.

Which keys are orphans. A live key (``wrapped_key`` not NULL; destroyed keys are kept as
the record of a shredding) whose subject is in no row of the main database: for an SCR key
no ``records_patient`` row with that id, for a portal key no account with that
``portal_subject``. Only keys made before a **cutoff** are looked at, the earlier of:

- ``min_age`` ago (an hour by default; it also absorbs clock skew between the servers);
- the start of the oldest transaction still open on the main database (PostgreSQL:
  ``pg_stat_activity``, client backends only). A key is made inside the transaction that
  will commit its owner (the importer starts that transaction before it makes the key),
  so a key made after that start may belong to a transaction not yet committed, whatever
  its age: a 2 GB bulk import is one transaction. On SQLite each batch is decided under
  the main database's write lock instead, which no open transaction can share.

A key older than the cutoff whose owner is not visible therefore belongs to a transaction
that has ended without committing it: deleting it shreds nothing that exists. Subjects
are never reused (fresh ``uuid4`` ids), so no later transaction can give it an owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from healthspace.core.clock import now
from healthspace.vault.models import DataKey
from healthspace.vault.routers import KEYSTORE

DEFAULT_MIN_AGE = timedelta(hours=1)
BATCH = 1000
ACTION = "keystore.orphans-delete"


@dataclass
class Orphans:
    cutoff: datetime
    # set when an open transaction on the main database moved the cutoff back
    oldest_open_transaction: datetime | None
    examined: int = 0
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DataKey.Kind.values, 0))
    deleted: int = 0

    @property
    def total(self) -> int:
        return sum(self.found.values())


def oldest_open_transaction() -> datetime | None:
    """When the oldest transaction now open on the main database began (PostgreSQL; on
    SQLite, whose one writer this process would be waiting on, None)."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        return None
    with conn.cursor() as cursor:
        # the activity view is a snapshot held until the end of the caller's transaction:
        # a stale one could miss a transaction begun since
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            " AND xact_start IS NOT NULL"
        )
        return cursor.fetchone()[0]


def cutoff_for(min_age: timedelta) -> tuple[datetime, datetime | None]:
    if min_age < timedelta(0):
        raise ValueError("the minimum age of an orphan cannot be negative")
    # read before the open transactions: one begun after this makes its keys after it
    at = now() - min_age
    oldest = oldest_open_transaction()
    return (min(at, oldest) if oldest is not None else at), oldest


def _owned(kind: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if kind == DataKey.Kind.SCR:
        from healthspace.records.models import Patient

        return set(Patient.objects.filter(id__in=ids).values_list("id", flat=True))
    from healthspace.accounts.models import Account

    return set(
        Account.objects.filter(portal_subject__in=ids).values_list("portal_subject", flat=True)
    )


def _batches(cutoff: datetime):
    """Live keys made before the cutoff, ``BATCH`` at a time in id order (keyset paging:
    the key store may hold tens of millions)."""
    after: uuid.UUID | None = None
    while True:
        live = DataKey.objects.using(KEYSTORE).filter(
            wrapped_key__isnull=False, created_at__lt=cutoff
        )
        if after is not None:
            live = live.filter(patient_id__gt=after)
        rows = list(live.order_by("patient_id").values_list("patient_id", "kind")[:BATCH])
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def find(*, min_age: timedelta = DEFAULT_MIN_AGE, delete: bool = False) -> Orphans:
    """Count the orphaned keys by kind; with ``delete``, delete them (each batch in one
    key-store transaction with its audit event, and only keys still live and still made
    before the cutoff)."""
    cutoff, oldest = cutoff_for(min_age)
    report = Orphans(cutoff=cutoff, oldest_open_transaction=oldest)
    for rows in _batches(cutoff):
        report.examined += len(rows)
        # On SQLite every transaction takes the write lock when it begins (settings:
        # transaction_mode IMMEDIATE), so inside this one no transaction that could still
        # commit an owner is open: a long import makes this wait, then fail as "database
        # is locked", never decide wrongly. On PostgreSQL the cutoff does that job.
        with transaction.atomic():
            orphans: list[uuid.UUID] = []
            for kind in DataKey.Kind.values:
                ids = [pid for pid, k in rows if k == kind]
                if not ids:
                    continue
                missing = set(ids) - _owned(kind, ids)
                report.found[kind] += len(missing)
                orphans.extend(missing)
            if delete and orphans:
                report.deleted += _delete(orphans, cutoff)
    return report


def _delete(orphans: list[uuid.UUID], cutoff: datetime) -> int:
    """Delete one batch and record it, inside the batch's transaction of the main
    database (``find``). The two databases cannot share a transaction: the key store's
    commits first, then the event's; only a failure of that last commit could leave a
    delete unrecorded."""
    from healthspace.access.actors import Actor
    from healthspace.audit.services import audit_record

    with transaction.atomic(using=KEYSTORE):
        deleted, _ = (
            DataKey.objects.using(KEYSTORE)
            .filter(patient_id__in=orphans, wrapped_key__isnull=False, created_at__lt=cutoff)
            .delete()
        )
        if deleted:
            audit_record(
                actor=Actor.system("keystore"),
                action=ACTION,
                patient_id=None,
                outcome="success",
                reason="operator-command:keystore-orphans",
                # counts only: the ids name nobody and prove nothing to anyone
                detail={"deleted": deleted, "cutoff": cutoff.isoformat()},
            )
    return deleted
