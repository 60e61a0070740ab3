"""Per-patient data keys: create, load (one query for many patients), destroy."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import transaction

from healthspace.core import sql
from healthspace.core.clock import now
from healthspace.vault.crypto import (
    KeyDestroyed,
    PatientCipher,
    VaultError,
    blind_index,
    kek_id,
    unwrap_key,
    wrap_key,
)
from healthspace.vault.models import DataKey
from healthspace.vault.routers import KEYSTORE


def _kek() -> bytes:
    return settings.HEALTHSPACE_KEK


def datakey_create(*, patient_id: uuid.UUID, kind: str = DataKey.Kind.SCR) -> PatientCipher:
    """A new data key, committed in the key store before anything is sealed with it (data
    whose key was lost would be lost too). A caller whose own transaction then fails
    discards it with ``datakeys_discard``."""
    data_key = AESGCM.generate_key(bit_length=256)
    DataKey.objects.create(
        patient_id=patient_id,
        kind=kind,
        wrapped_key=wrap_key(_kek(), data_key, patient_id),
        kek_id=kek_id(_kek()),
    )
    return PatientCipher(patient_id, AESGCM(data_key))


def portal_cipher_for(*, subject_id: uuid.UUID) -> PatientCipher:
    """The cipher of an account's own data (organiser, messages), its key made on first
    use. Raises KeyDestroyed once the account was closed (the key shredded)."""
    # plain SQL (core.sql), as cipher_for: read on every organiser and message page
    found = sql.objects(DataKey, where={"patient_id": subject_id}, prepared=True)
    row = found[0] if found else None
    if row is None:
        with transaction.atomic(using=KEYSTORE):
            # two first uses at once: one key wins, the other reads it
            data_key = AESGCM.generate_key(bit_length=256)
            DataKey.objects.bulk_create(
                [
                    DataKey(
                        patient_id=subject_id,
                        kind=DataKey.Kind.PORTAL,
                        wrapped_key=wrap_key(_kek(), data_key, subject_id),
                        kek_id=kek_id(_kek()),
                    )
                ],
                ignore_conflicts=True,
            )
        row = DataKey.objects.get(patient_id=subject_id)
    if row.kind != DataKey.Kind.PORTAL:
        raise VaultError(f"key {subject_id} is not an account's portal key")
    return _cipher(row)


def _cipher(row: DataKey) -> PatientCipher:
    if row.wrapped_key is None:
        raise KeyDestroyed(f"data key of patient {row.patient_id} was destroyed")
    return PatientCipher(
        row.patient_id, AESGCM(unwrap_key(_kek(), bytes(row.wrapped_key), row.patient_id))
    )


def cipher_for(*, patient_id: uuid.UUID) -> PatientCipher:
    # plain SQL (core.sql.objects): read on every audited read of a record
    found = sql.objects(DataKey, where={"patient_id": patient_id}, prepared=True)
    if not found:
        raise VaultError(f"no data key for patient {patient_id}")
    return _cipher(found[0])


def ciphers_for(*, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PatientCipher]:
    """One query for many patients; patients whose key was destroyed are left out."""
    rows = DataKey.objects.filter(patient_id__in=list(patient_ids), wrapped_key__isnull=False)
    return {row.patient_id: _cipher(row) for row in rows}


def datakey_destroy(*, patient_id: uuid.UUID) -> None:
    """Crypto-shred: after this commits, nothing sealed for the patient can be opened.

    Committed in the key store at once, whatever transaction the caller is in: a
    shredding that the caller's rollback could undo would not be one."""
    with transaction.atomic(using=KEYSTORE):
        updated = DataKey.objects.filter(patient_id=patient_id, wrapped_key__isnull=False).update(
            wrapped_key=None, destroyed_at=now()
        )
    if not updated and not DataKey.objects.filter(patient_id=patient_id).exists():
        raise VaultError(f"no data key for patient {patient_id}")


def datakeys_discard(*, subject_ids: Iterable[uuid.UUID]) -> int:
    """Delete keys made for subjects whose own rows were rolled back (an import that
    failed half way): the key store commits on its own, before the data it will open, so
    a failed unit leaves its new keys behind unless its caller discards them. Never call
    it for a subject whose data was committed: that would shred it."""
    ids = list(subject_ids)
    if not ids:
        return 0
    with transaction.atomic(using=KEYSTORE):
        deleted, _ = DataKey.objects.filter(patient_id__in=ids).delete()
    return deleted


def index(purpose: str, value: str) -> str:
    return blind_index(settings.HEALTHSPACE_INDEX_KEY, purpose, value)


def datakeys_destroy_all() -> dict[str, int]:
    """Crypto-shred every data key of every kind (the service's final purge,
    docs/lifecycle.md); returns how many live keys of each kind were destroyed. Committed
    in the key store at once, like ``datakey_destroy``."""
    destroyed: dict[str, int] = {kind: 0 for kind in DataKey.Kind.values}
    with transaction.atomic(using=KEYSTORE):
        live = DataKey.objects.select_for_update().filter(wrapped_key__isnull=False)
        for kind in DataKey.Kind.values:
            destroyed[kind] = live.filter(kind=kind).update(wrapped_key=None, destroyed_at=now())
    return destroyed


def datakeys_live() -> int:
    """How many data keys can still open something."""
    return DataKey.objects.filter(wrapped_key__isnull=False).count()
