"""Orphaned data keys: live keys whose patient or account never committed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from healthspace.accounts.models import Account
from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now
from healthspace.records.models import Patient
from healthspace.vault import orphans
from healthspace.vault import services as vault
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db


def _aged(subject: uuid.UUID, hours: float = 2) -> None:
    DataKey.objects.filter(patient_id=subject).update(created_at=now() - timedelta(hours=hours))


def _patient() -> uuid.UUID:
    patient = Patient.objects.create(
        nhs_number="9999999999", resource=b"", content_hash="x", source_system="test"
    )
    vault.datakey_create(patient_id=patient.id)
    _aged(patient.id)
    return patient.id


def _orphan(kind: str = DataKey.Kind.SCR, hours: float = 2) -> uuid.UUID:
    subject = uuid.uuid4()
    vault.datakey_create(patient_id=subject, kind=kind)
    _aged(subject, hours)
    return subject


def _account_with_portal_key() -> uuid.UUID:
    user = get_user_model().objects.create_user("kept", password="x")
    account = Account.objects.create(user=user)
    vault.portal_cipher_for(subject_id=account.portal_subject)
    _aged(account.portal_subject)
    return account.portal_subject


def test_only_live_keys_of_nobody_older_than_the_cutoff_are_orphans():
    kept = [_patient(), _account_with_portal_key()]
    scr, portal = _orphan(), _orphan(DataKey.Kind.PORTAL)
    young = _orphan(hours=0.5)  # its transaction may still be committing it
    shredded = _orphan()
    vault.datakey_destroy(patient_id=shredded)  # the record of a shredding stays

    report = orphans.find()
    assert report.examined == 4  # young and shredded are not looked at
    assert report.found == {"scr": 1, "portal": 1}
    assert report.deleted == 0
    assert DataKey.objects.count() == 6  # counting changes nothing
    assert not AuditEvent.objects.filter(action=orphans.ACTION).exists()

    report = orphans.find(delete=True)
    assert report.deleted == 2
    left = set(DataKey.objects.values_list("patient_id", flat=True))
    assert left == {*kept, young, shredded}
    assert scr not in left and portal not in left
    event = AuditEvent.objects.get(action=orphans.ACTION)
    assert event.patient_id is None and event.actor == "system:cli:keystore"
    assert event.detail["deleted"] == 2
    assert str(scr) not in json.dumps(event.detail)  # counts only
    # the kept keys still open what they seal
    vault.cipher_for(patient_id=kept[0])
    assert orphans.find(delete=True).deleted == 0


def test_keys_are_examined_in_batches(monkeypatch):
    monkeypatch.setattr(orphans, "BATCH", 2)
    made = [_orphan() for _ in range(5)]
    kept = _patient()
    report = orphans.find(delete=True)
    assert (report.examined, report.deleted) == (6, 5)
    assert list(DataKey.objects.values_list("patient_id", flat=True)) == [kept]
    assert AuditEvent.objects.filter(action=orphans.ACTION).count() == 3  # one per batch
    assert not DataKey.objects.filter(patient_id__in=made).exists()


def test_a_negative_age_is_refused():
    with pytest.raises(ValueError, match="negative"):
        orphans.find(min_age=timedelta(hours=-1))
    with pytest.raises(CommandError, match="negative"):
        call_command("keystore", "orphans", "--min-age", "-1")


def test_the_command_counts_then_deletes():
    _patient()
    _orphan()
    out = StringIO()
    call_command("keystore", "orphans", stdout=out)
    assert "1 orphan(s): scr 1, portal 0" in out.getvalue()
    assert "--delete" in out.getvalue()
    assert DataKey.objects.count() == 2

    out = StringIO()
    call_command("keystore", "orphans", "--delete", "--json", stdout=out)
    got = json.loads(out.getvalue())
    assert got["examined"] == 2 and got["deleted"] == 1
    assert got["orphans"] == {"scr": 1, "portal": 0}
    assert DataKey.objects.count() == 1


def test_schedule_queues_the_daily_sweep():
    from django_tasks_db.models import DBTaskResult

    call_command("keystore", "orphans", "--schedule", stdout=StringIO())
    queued = DBTaskResult.objects.get()
    assert queued.task_path == "healthspace.vault.tasks.keystore_orphans_sweep"


# SQLite has no pg_stat_activity and no concurrent writer to wait for: there each batch is
# decided under the write lock instead (test_each_batch_is_decided_inside_a_transaction_...)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="pg_stat_activity is PostgreSQL's; SQLite's write lock is tested below",
)
def test_keys_made_since_the_oldest_open_transaction_are_never_orphans():
    """A transaction on the main database that began before a key was made may still
    commit its owner, however old the key: an open transaction moves the cutoff back."""
    settings = connection.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
    )
    try:
        other.execute("SELECT 1")  # its transaction begins (psycopg is not autocommit)
        began = other.execute(
            "SELECT xact_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        began = began.fetchone()[0]
        subject = uuid.uuid4()
        vault.datakey_create(patient_id=subject)  # made now, after the transaction began
        report = orphans.find(min_age=timedelta(0), delete=True)
        assert report.oldest_open_transaction is not None
        assert report.oldest_open_transaction <= began
        assert report.cutoff == report.oldest_open_transaction
        assert report.deleted == 0
        assert DataKey.objects.filter(patient_id=subject).exists()
    finally:
        other.rollback()
        other.close()
    assert orphans.find(min_age=timedelta(0), delete=True).deleted == 1


def test_the_daily_task_deletes_orphans_a_day_old_and_queues_itself(monkeypatch):
    from healthspace.vault import tasks

    old, recent = _orphan(hours=25), _orphan(hours=3)
    queued = []
    task_type = type(tasks.keystore_orphans_sweep)
    monkeypatch.setattr(task_type, "using", lambda self, **kw: queued.append(kw) or self)
    monkeypatch.setattr(task_type, "enqueue", lambda self: None)
    assert tasks.keystore_orphans_sweep.call() == "1 orphaned data key(s) deleted"
    assert list(DataKey.objects.values_list("patient_id", flat=True)) == [recent]
    assert old != recent
    assert queued and queued[0]["run_after"] > now() + timedelta(hours=23)


def test_each_batch_is_decided_inside_a_transaction_of_the_main_database(monkeypatch):
    """On SQLite that transaction holds the write lock from its start (IMMEDIATE), so no
    other transaction that could commit an owner is open while a batch is decided."""
    from django.db import OperationalError

    _orphan()
    outside = len(connection.atomic_blocks)
    depths = []
    owned = orphans._owned
    monkeypatch.setattr(
        orphans,
        "_owned",
        lambda kind, ids: depths.append(len(connection.atomic_blocks)) or owned(kind, ids),
    )
    assert orphans.find(delete=True).deleted == 1
    assert depths and all(depth > outside for depth in depths)

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(orphans, "find", locked)
    with pytest.raises(CommandError, match="busy"):
        call_command("keystore", "orphans", "--delete", stdout=StringIO())
