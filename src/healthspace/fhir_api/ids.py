"""Opaque FHIR ids for SCR items: the row's primary key, sealed in one AES block.

``item_id(pk)`` is 32 hex characters (a valid FHIR id); it reveals neither the row
number nor how many rows there are, and cannot be guessed: the block holds a MAC, so a
made-up id decodes to nothing (404) without touching the database. No column to keep in
step, no migration; the same item keeps its id for ever (the key is derived from
HEALTHSPACE_INDEX_KEY, so rotating that key changes every id).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings

KINDS = {"item": 1}
_HEX32 = re.compile(r"[0-9a-f]{32}")


@lru_cache(maxsize=4)
def _keys(index_key: bytes) -> tuple[bytes, bytes]:
    enc = hmac.new(index_key, b"healthspace fhir-id aes", hashlib.sha256).digest()
    mac = hmac.new(index_key, b"healthspace fhir-id mac", hashlib.sha256).digest()
    return enc, mac


def _mac(key: bytes, head: bytes) -> bytes:
    return hmac.new(key, head, hashlib.sha256).digest()[:7]


def encode(pk: int, kind: str = "item") -> str:
    return _encode(settings.HEALTHSPACE_INDEX_KEY, kind, pk)


@lru_cache(maxsize=16384)  # an id is the same for ever: a record's ids recur in every read
def _encode(index_key: bytes, kind: str, pk: int) -> str:
    enc, mac = _keys(index_key)
    head = struct.pack(">BQ", KINDS[kind], pk)
    block = head + _mac(mac, head)
    # one block of a unique plaintext: ECB is a keyed permutation here, nothing more
    encryptor = Cipher(algorithms.AES(enc), modes.ECB()).encryptor()  # noqa: S305 - one block, an id sealed with a MAC (see above)
    return (encryptor.update(block) + encryptor.finalize()).hex()


def decode(fhir_id: str, kind: str = "item") -> int | None:
    if not isinstance(fhir_id, str) or not _HEX32.fullmatch(fhir_id):
        return None
    enc, mac = _keys(settings.HEALTHSPACE_INDEX_KEY)
    decryptor = Cipher(algorithms.AES(enc), modes.ECB()).decryptor()  # noqa: S305 - one block, an id sealed with a MAC (see above)
    block = decryptor.update(bytes.fromhex(fhir_id)) + decryptor.finalize()
    head, tag = block[:9], block[9:]
    if not hmac.compare_digest(tag, _mac(mac, head)):
        return None
    got_kind, pk = struct.unpack(">BQ", head)
    if got_kind != KINDS[kind] or pk <= 0 or pk >= 2**63:
        return None
    return pk


item_id = encode
item_pk = decode
