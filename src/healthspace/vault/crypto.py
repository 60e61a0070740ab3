"""Envelope encryption with AES-256-GCM (``cryptography``), and keyed blind indexes.

Sealed value layout: version byte (1) | 96-bit random nonce | ciphertext+tag.
The associated data binds each ciphertext to its patient and purpose, so a value
copied into another patient's row or another column fails to open.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12


class VaultError(Exception):
    pass


class KeyDestroyed(VaultError):
    """The patient's data key was destroyed: their clinical data is gone for good."""


class CannotDecrypt(VaultError):
    pass


def kek_id(kek: bytes) -> str:
    return hashlib.sha256(b"healthspace-kek-id" + kek).hexdigest()[:16]


def wrap_key(kek: bytes, data_key: bytes, patient_id: uuid.UUID) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    aad = f"hs-datakey|{patient_id}".encode()
    return FORMAT_V1 + nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def unwrap_key(kek: bytes, wrapped: bytes, patient_id: uuid.UUID) -> bytes:
    if not wrapped or wrapped[:1] != FORMAT_V1:
        raise CannotDecrypt("unknown data key format")
    nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
    try:
        return AESGCM(kek).decrypt(nonce, body, f"hs-datakey|{patient_id}".encode())
    except InvalidTag as exc:
        raise CannotDecrypt("data key does not unwrap with this KEK") from exc


@dataclass(frozen=True)
class PatientCipher:
    """Seals and opens one patient's values. Obtain it from ``vault.services``."""

    patient_id: uuid.UUID
    _aead: AESGCM

    def _aad(self, purpose: str) -> bytes:
        return f"hs1|{self.patient_id}|{purpose}".encode()

    def seal(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext, self._aad(purpose))

    def open(self, sealed: bytes, *, purpose: str) -> bytes:
        sealed = bytes(sealed)
        if sealed[:1] != FORMAT_V1:
            raise CannotDecrypt("unknown ciphertext format")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, self._aad(purpose))
        except InvalidTag as exc:
            raise CannotDecrypt(f"value does not open for purpose {purpose!r}") from exc

    def seal_json(self, value: Any, *, purpose: str) -> bytes:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return self.seal(data, purpose=purpose)

    def open_json(self, sealed: bytes, *, purpose: str) -> Any:
        return json.loads(self.open(sealed, purpose=purpose))


def blind_index(index_key: bytes, purpose: str, value: str) -> str:
    """Keyed hash for equality look-ups of identifiers without storing them in the clear."""
    mac = hmac.new(index_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
    return mac.hexdigest()
