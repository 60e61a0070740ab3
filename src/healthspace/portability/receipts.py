"""Signed deletion receipts: what was deleted, when, and which data keys were destroyed.

Format ``hs-deletion-receipt-v1``: a JSON object; ``signature`` is Ed25519 (key
``HEALTHSPACE_RECEIPT_SIGNING_KEY``) over the UTF-8 bytes of the canonical JSON
(``audit.chain.canonical_json``: sorted keys, no spaces, ASCII) of every other field::

    {"v": "hs-deletion-receipt-v1", "receipt_id": <uuid>, "kind": "account-closure" |
     "record-deletion", "issued_at": <UTC ISO>, "account": "user:<id>" | null,
     "deleted": {<what>: <count>}, "keys_destroyed": [{"kind", "key_id", "destroyed_at"}],
     "kept": <words>, "key_id": <signing key id>, "signature": <base64>}

A receipt names no clinical content: counts of rows, the ids of the destroyed keys (random
ids that name nobody once the key is gone), times. ``healthspace verify-receipt FILE``
checks one against the configured public key (or ``--public-key``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from healthspace.audit.chain import canonical_json, timestamp

VERSION = "hs-deletion-receipt-v1"
FIELDS = frozenset(
    {
        "v",
        "receipt_id",
        "kind",
        "issued_at",
        "account",
        "deleted",
        "keys_destroyed",
        "kept",
        "key_id",
        "signature",
    }
)


class ReceiptInvalid(ValueError):
    pass


def signing_key() -> Ed25519PrivateKey:
    seed = getattr(settings, "HEALTHSPACE_RECEIPT_SIGNING_KEY", None)
    if not seed or len(seed) != 32:
        raise ImproperlyConfigured("HEALTHSPACE_RECEIPT_SIGNING_KEY must be a 32-byte seed.")
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_text(public: Ed25519PublicKey | None = None) -> str:
    return base64.b64encode(_raw(public or signing_key().public_key())).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ReceiptInvalid("not an Ed25519 public key (32 bytes, base64)") from exc


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def _signed_bytes(receipt: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in receipt.items() if k != "signature"}).encode()


def issue(
    *,
    kind: str,
    issued_at: datetime,
    account: str | None,
    deleted: dict[str, int],
    keys_destroyed: list[dict[str, str]],
    kept: str,
) -> dict[str, Any]:
    private = signing_key()
    receipt: dict[str, Any] = {
        "v": VERSION,
        "receipt_id": str(uuid.uuid4()),
        "kind": kind,
        "issued_at": timestamp(issued_at),
        "account": account,
        "deleted": {k: int(v) for k, v in sorted(deleted.items())},
        "keys_destroyed": keys_destroyed,
        "kept": kept,
        "key_id": key_id(private.public_key()),
    }
    receipt["signature"] = base64.b64encode(private.sign(_signed_bytes(receipt))).decode()
    return receipt


def dumps(receipt: dict[str, Any]) -> str:
    return json.dumps(receipt, indent=2, sort_keys=True) + "\n"


def verify(text: str | bytes, public: Ed25519PublicKey | None = None) -> dict[str, Any]:
    """The receipt, if it is one and its signature holds; else ReceiptInvalid (why)."""
    try:
        receipt = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReceiptInvalid("not JSON") from exc
    if not isinstance(receipt, dict) or receipt.get("v") != VERSION:
        raise ReceiptInvalid(f"not a {VERSION} receipt")
    if set(receipt) != FIELDS:
        raise ReceiptInvalid("fields missing or added")
    public = public or signing_key().public_key()
    if receipt["key_id"] != key_id(public):
        raise ReceiptInvalid("signed with another key (key_id does not match)")
    try:
        signature = base64.b64decode(str(receipt["signature"]), validate=True)
        public.verify(signature, _signed_bytes(receipt))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise ReceiptInvalid("the signature does not match: the receipt was changed") from exc
    return receipt
