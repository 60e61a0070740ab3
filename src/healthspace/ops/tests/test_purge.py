"""The final purge: every data key destroyed, logins ended, a closure report, the audit
trail still verifiable; and a backup of the main database taken before the purge,
restored beside the purged key store, holds no readable clinical text.

Real data: Synthea patients from the shared FHIR data, imported as the operator would.
The backup is real: SQLite's backup API to a file, or pg_dump to a file and pg_restore
into a fresh database on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client

from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import Account
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput
from healthspace.ops import backups, lifecycle
from healthspace.ops.demo import ensure_demo_logins
from healthspace.ops.purge import purge
from healthspace.records.importer import import_paths, item_purpose
from healthspace.records.models import Patient, ScrItem
from healthspace.records.tests.data import fhir_data_dir
from healthspace.vault import services as vault
from healthspace.vault.crypto import KeyDestroyed
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

SYNTHEA = "synthea-smart-generated-sample-data"
FILES = (
    "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json",
    "Gustavo_Mejia_59a8543c-e24f-4a01-b28b-47ccde6bc11d.json",
)
NOTE = "Purge test: knee pain worse after physiotherapy"
MESSAGE = "Purge test: could my metformin dose be reviewed?"


def _texts_of(resource: dict[str, Any]) -> set[str]:
    out = set()
    for key in ("code", "medicationCodeableConcept", "vaccineCode"):
        concept = resource.get(key) or {}
        out.add(concept.get("text"))
        out.update(c.get("display") for c in concept.get("coding", []))
    return {t for t in out if t and len(t) >= 8}


@pytest.fixture
def closing(settings, tmp_path) -> set[str]:
    """Two real patients, their logins, organiser notes and a message; returns the
    clinical strings known to be in them (read through the vault, before anything)."""
    from healthspace.messaging.services import thread_open_by_patient
    from healthspace.organiser.services import note_add

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.HEALTHSPACE_CLOSURE_REPORT_DIR = tmp_path / "closure"
    base = fhir_data_dir() / SYNTHEA
    report = import_paths([base / name for name in FILES], assign_nhs_numbers=True)
    assert report.ok, report.errors
    ensure_demo_logins(count=2)
    owner = get_user_model().objects.get(username="patient1@demo.healthspace.test")
    actor = actor_for_user(owner)
    note_add(actor=actor, owner_id=owner.pk, title="Knee", text=NOTE)
    thread_open_by_patient(actor=actor, user_id=owner.pk, subject="Medicines", body=MESSAGE)
    signed_in_client(owner)
    known = {NOTE, MESSAGE}
    for patient in Patient.objects.all():
        cipher = vault.cipher_for(patient_id=patient.id)
        for item in ScrItem.objects.filter(patient=patient):
            resource = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
            known |= _texts_of(resource["resource"])
        names = cipher.open_json(patient.resource, purpose="patient")["name"]
        known |= {n["family"] for n in names if len(n.get("family", "")) >= 5}
    assert len(known) >= 20, known
    return known


def _read_only() -> None:
    lifecycle.closure_announce(closure_date=now().date().replace(year=now().year + 1))
    lifecycle.read_only()


# --- backups, as an operator takes them ------------------------------------------------


def _backup_main_database(path: Path) -> None:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        target = sqlite3.connect(path)
        connection.connection.backup(target)
        target.close()
        return
    backups.pg_dump_custom(connection.settings_dict, path)


@contextmanager
def _restored(backup: Path) -> Iterator[Any]:
    """A fresh database restored from the backup, as a DB-API connection."""
    if connection.vendor == "sqlite":
        copy = backup.with_suffix(".restored")
        shutil.copy(backup, copy)
        restored = sqlite3.connect(copy)
        try:
            yield restored
        finally:
            restored.close()
        return
    with backups.pg_restored(connection.settings_dict, backup) as restored:
        yield restored


_tables, _rows, _clear_text_found = backups.tables, backups.rows, backups.clear_text_found


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# --- the test the issue asks for -------------------------------------------------------


def test_purge_and_a_restored_pre_purge_backup_leave_no_readable_clinical_text(closing, tmp_path):
    backup = tmp_path / "main-before-purge.backup"
    _backup_main_database(backup)
    item_sql = "SELECT patient_id, identity, payload FROM records_scritem"
    subject_sql = "SELECT portal_subject FROM accounts_account"

    # Control: the backup, with the key store as it is now, opens (so the test can fail).
    with _restored(backup) as db:
        assert "vault_data_key" not in _tables(db)  # the keys were never in this backup
        assert not _clear_text_found(db, closing)  # sealed at rest, even before the purge
        patient_id, identity, payload = _rows(db, item_sql + " WHERE section = 'medications'")[0]
        opened = vault.cipher_for(patient_id=_uuid(patient_id)).open_json(
            bytes(payload), purpose=item_purpose(identity)
        )
        assert _texts_of(opened["resource"]) & closing
        subjects = {_uuid(s) for (s,) in _rows(db, subject_sql)}

    _read_only()
    report, _ = purge(confirmed=True)
    assert report.keys_left_readable == 0

    # The same backup restored after the purge, beside the purged key store.
    with _restored(backup) as db:
        assert not _clear_text_found(db, closing)
        items = _rows(db, item_sql)
        patients = {_uuid(p) for (p, *_rest) in items}
        assert len(patients) == len(FILES) and subjects
        # no key that opens anything of theirs is left, of either kind
        assert vault.ciphers_for(patient_ids=patients | subjects) == {}
        assert not DataKey.objects.filter(wrapped_key__isnull=False).exists()
        for patient_id, _identity, _payload in items:
            with pytest.raises(KeyDestroyed):
                vault.cipher_for(patient_id=_uuid(patient_id))
        for subject in subjects & set(DataKey.objects.values_list("patient_id", flat=True)):
            with pytest.raises(KeyDestroyed):
                vault.portal_cipher_for(subject_id=subject)


# --- the purge itself ----------------------------------------------------------------


def test_purge_destroys_every_key_ends_every_login_and_reports(closing, tmp_path, capsys):
    patients, accounts = Patient.objects.count(), Account.objects.count()
    portal_keys = DataKey.objects.filter(kind=DataKey.Kind.PORTAL).count()
    assert Session.objects.exists() and portal_keys >= 1
    with pytest.raises(InvalidInput, match="read-only"):
        purge(confirmed=True)
    _read_only()
    with pytest.raises(InvalidInput, match="confirm"):
        purge(confirmed=False)
    assert DataKey.objects.filter(wrapped_key__isnull=False).count() == patients + portal_keys

    call_command("service", "purge", "--yes-destroy-everything", "--report-dir", str(tmp_path))
    out = capsys.readouterr().out
    assert "HealthSpace closure report" in out and f"patient records: {patients}" in out

    assert not DataKey.objects.filter(wrapped_key__isnull=False).exists()
    assert not Session.objects.exists()
    assert not get_user_model().objects.filter(is_active=True).exists()
    assert lifecycle.status(fresh=True).purged
    (json_path,) = tmp_path.glob("closure-report-*.json")
    report = json.loads(json_path.read_text())
    assert report["patients"] == patients and report["accounts"] == accounts
    assert report["keys_destroyed"] == {"scr": patients, "portal": portal_keys}
    assert report["keys_left_readable"] == 0 and report["audit_verified"] is True
    assert report["audit_events_kept"] > 0
    assert json_path.with_suffix(".txt").read_text().startswith("HealthSpace closure report")

    # the audit trail stays, and verifies; the purge is in it
    call_command("audit", "verify")
    from healthspace.audit.models import AuditEvent

    event = AuditEvent.objects.get(action=lifecycle.STATE_CHANGE, detail__to="purged")
    assert event.actor == "system:cli:service-purge"
    # nobody can log in, and the record page opens nothing
    response = Client().post(
        "/login/", {"username": "patient1@demo.healthspace.test", "password": "x"}
    )
    assert response.status_code == 503


def test_a_purge_run_again_after_a_crash_finishes_the_job(closing, tmp_path, monkeypatch):
    from healthspace.ops import purge as purge_module

    _read_only()
    monkeypatch.setattr(purge_module, "_revoke_oauth", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        purge(confirmed=True)
    # the keys went at once (the key store commits on its own); the state did not move
    assert not DataKey.objects.filter(wrapped_key__isnull=False).exists()
    assert lifecycle.status(fresh=True).read_only and not lifecycle.status().purged
    monkeypatch.undo()
    report, _ = purge(confirmed=True)
    assert report.keys_destroyed == {"scr": 0, "portal": 0} and report.keys_left_readable == 0
    assert lifecycle.status(fresh=True).purged
