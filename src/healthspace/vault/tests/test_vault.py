"""Envelope encryption and crypto-shredding."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from healthspace.records.models import Patient, ScrItem
from healthspace.vault import services as vault
from healthspace.vault.crypto import CannotDecrypt, KeyDestroyed
from healthspace.vault.models import DataKey


@pytest.fixture
def patient_id() -> uuid.UUID:
    return uuid.uuid4()


def test_sealed_value_opens_only_for_its_patient_and_purpose(db, patient_id):
    cipher = vault.datakey_create(patient_id=patient_id)
    other = vault.datakey_create(patient_id=uuid.uuid4())
    sealed = cipher.seal(b"penicillin allergy", purpose="scr-item:a")

    assert b"penicillin" not in sealed
    assert vault.cipher_for(patient_id=patient_id).open(sealed, purpose="scr-item:a") == (
        b"penicillin allergy"
    )
    with pytest.raises(CannotDecrypt):
        cipher.open(sealed, purpose="scr-item:b")  # moved to another row
    with pytest.raises(CannotDecrypt):
        other.open(sealed, purpose="scr-item:a")  # moved to another patient


def test_each_seal_uses_a_fresh_nonce(db, patient_id):
    cipher = vault.datakey_create(patient_id=patient_id)
    assert cipher.seal(b"same", purpose="p") != cipher.seal(b"same", purpose="p")


def test_data_key_is_stored_only_wrapped(db, patient_id):
    vault.datakey_create(patient_id=patient_id)
    row = DataKey.objects.get(patient_id=patient_id)
    assert len(bytes(row.wrapped_key)) == 1 + 12 + 32 + 16  # version, nonce, key, tag


def test_destroyed_key_cannot_be_used(db, patient_id):
    cipher = vault.datakey_create(patient_id=patient_id)
    sealed = cipher.seal(b"x", purpose="p")
    vault.datakey_destroy(patient_id=patient_id)

    with pytest.raises(KeyDestroyed):
        vault.cipher_for(patient_id=patient_id)
    assert vault.ciphers_for(patient_ids=[patient_id]) == {}
    row = DataKey.objects.get(patient_id=patient_id)
    assert row.wrapped_key is None and row.destroyed_at is not None
    assert sealed  # the ciphertext may survive anywhere (backups); without the key it is noise


def _raw_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
        return cursor.fetchall()


def _as_text(rows: list[tuple]) -> str:
    parts = []
    for row in rows:
        for value in row:
            if isinstance(value, bytes | memoryview):
                parts.append(bytes(value).decode("latin-1"))
            else:
                parts.append(str(value))
    return "\n".join(parts)


CLINICAL_TABLES = ("records_patient", "records_scritem", "records_scritemversion")


def test_no_clinical_text_in_the_raw_tables_and_none_readable_after_shredding(
    synthetic_patients,
):
    patient = Patient.objects.order_by("nhs_number").first()
    cipher = vault.cipher_for(patient_id=patient.id)
    items = list(ScrItem.objects.filter(patient=patient))
    opened = [
        cipher.open_json(i.payload, purpose=f"scr-item:{i.identity}")["resource"] for i in items
    ]
    texts = {
        r.get("code", r.get("medicationCodeableConcept", r.get("vaccineCode", {}))).get("text")
        for r in opened
    }
    texts.discard(None)
    family = cipher.open_json(patient.resource, purpose="patient")["name"][0]["family"]
    assert len(texts) >= 5

    raw = _as_text([row for table in CLINICAL_TABLES for row in _raw_rows(table)])
    for text in [*texts, family]:
        assert text not in raw, f"{text!r} stored in the clear"

    vault.datakey_destroy(patient_id=patient.id)
    with pytest.raises(KeyDestroyed):
        vault.cipher_for(patient_id=patient.id)
    # Every sealed value of the patient is still there, and none opens with any key we hold.
    for other in vault.ciphers_for(
        patient_ids=Patient.objects.values_list("id", flat=True)
    ).values():
        for item in items:
            with pytest.raises(CannotDecrypt):
                other.open(bytes(item.payload), purpose=f"scr-item:{item.identity}")


def test_an_accounts_portal_key_is_made_on_first_use_and_kept(db):
    subject = uuid.uuid4()
    first = vault.portal_cipher_for(subject_id=subject)
    sealed = first.seal(b"home blood pressure 128/82", purpose="organiser:reading:1")
    again = vault.portal_cipher_for(subject_id=subject)
    assert again.open(sealed, purpose="organiser:reading:1") == b"home blood pressure 128/82"
    row = DataKey.objects.get(patient_id=subject)
    assert row.kind == DataKey.Kind.PORTAL


def test_portal_and_scr_keys_are_destroyed_apart(db, patient_id):
    scr = vault.datakey_create(patient_id=patient_id)
    subject = uuid.uuid4()
    portal = vault.portal_cipher_for(subject_id=subject)
    in_scr = scr.seal(b"penicillin allergy", purpose="scr-item:a")
    in_portal = portal.seal(b"message to my GP", purpose="messaging:message:1")

    vault.datakey_destroy(patient_id=subject)  # the account is closed

    with pytest.raises(KeyDestroyed):
        vault.portal_cipher_for(subject_id=subject)
    assert vault.cipher_for(patient_id=patient_id).open(in_scr, purpose="scr-item:a")
    with pytest.raises(CannotDecrypt):
        scr.open(in_portal, purpose="messaging:message:1")


def test_an_scr_key_is_never_handed_out_as_a_portal_key(db, patient_id):
    vault.datakey_create(patient_id=patient_id)
    with pytest.raises(vault.VaultError):
        vault.portal_cipher_for(subject_id=patient_id)


def test_keys_live_in_the_key_store_never_beside_the_data(db, patient_id):
    from django.db import connections

    vault.datakey_create(patient_id=patient_id)
    main_tables = connections["default"].introspection.table_names()
    assert "vault_data_key" not in main_tables  # a backup of the main database has no keys
    assert "records_scritem" in main_tables
    assert "vault_data_key" in connections["keystore"].introspection.table_names()
    assert DataKey.objects.using("keystore").filter(patient_id=patient_id).exists()


def test_a_unit_that_fails_after_its_keys_were_made_discards_them(db, write_bundles, monkeypatch):
    from healthspace.records import importer, synthetic
    from healthspace.records.fhir_checks import FhirInputError

    def fail_after_the_patient_and_its_key(*args, **kwargs):
        raise FhirInputError("the disk is full")

    monkeypatch.setattr(importer, "_write_items", fail_after_the_patient_and_its_key)
    report = importer.import_paths(
        [write_bundles([synthetic.patient_bundle(1)])], source=synthetic.SOURCE
    )
    assert report.files_failed == 1
    assert not Patient.objects.exists()
    assert not DataKey.objects.exists()  # the key committed first, and was discarded
