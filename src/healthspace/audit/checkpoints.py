"""Signed checkpoints of the chain heads (Ed25519), each chained to the one before.

A hash chain alone shows that rows were edited or removed *unless* whoever edited them
also recomputed every later hash and the head. A checkpoint signed with a key the
database does not hold, and copied off the server, pins each chain's head at that
moment: a rewrite or truncation of anything it covers no longer matches.

Format ``hs-audit-checkpoint-v1``: the signature is Ed25519 over the UTF-8 bytes of
the canonical JSON object (``audit.chain.canonical_json``)::

    {"v": "hs-audit-checkpoint-v1", "created_at": <UTC ISO>, "heads_digest": <hex>,
     "previous_checkpoint_hash": <hex or 64 zeros>, "key_id": <hex>}

``heads_digest`` is SHA-256 of the canonical JSON of ``heads`` ({chain_key: [seq, hash]});
a checkpoint's own hash (what the next one chains to) is SHA-256 of that payload plus
``"."`` plus the base64 signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from healthspace.audit import chain
from healthspace.audit.models import AuditChainHead, AuditCheckpoint
from healthspace.core.clock import now

VERSION = "hs-audit-checkpoint-v1"
# Heads are chosen by "updated since the previous checkpoint", but a transaction that
# updated a head just before a checkpoint may commit just after it. Re-attesting heads
# updated within this margin before the previous checkpoint closes that gap (an extra
# head costs a few bytes; a missed one leaves a chain unpinned until its next event).
OVERLAP = timedelta(hours=1)


# -- keys ------------------------------------------------------------------------------


def signing_key() -> Ed25519PrivateKey:
    seed = getattr(settings, "HEALTHSPACE_AUDIT_SIGNING_KEY", None)
    if not seed:
        raise ImproperlyConfigured("HEALTHSPACE_AUDIT_SIGNING_KEY is not set.")
    if len(seed) != 32:
        raise ImproperlyConfigured("HEALTHSPACE_AUDIT_SIGNING_KEY must be a 32-byte seed.")
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def public_key_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_text(public: Ed25519PublicKey) -> str:
    """How the public key is printed and kept off-box: base64 of the 32 raw bytes."""
    return base64.b64encode(public_key_raw(public)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not an Ed25519 public key (32 bytes, base64)") from exc


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key_raw(public)).hexdigest()[:16]


def configured_public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


# -- format ----------------------------------------------------------------------------


def heads_digest(heads: dict[str, Any]) -> str:
    return hashlib.sha256(chain.canonical_json(heads).encode("ascii")).hexdigest()


def payload_bytes(
    *, created_at: datetime, heads_digest: str, previous_checkpoint_hash: str, key_id: str
) -> bytes:
    return chain.canonical_json(
        {
            "v": VERSION,
            "created_at": chain.timestamp(created_at),
            "heads_digest": heads_digest,
            "previous_checkpoint_hash": previous_checkpoint_hash,
            "key_id": key_id,
        }
    ).encode("ascii")


def _payload_of(checkpoint: AuditCheckpoint) -> bytes:
    return payload_bytes(
        created_at=checkpoint.created_at,
        heads_digest=checkpoint.heads_digest,
        previous_checkpoint_hash=checkpoint.previous_checkpoint_hash,
        key_id=checkpoint.key_id,
    )


def checkpoint_hash(checkpoint: AuditCheckpoint) -> str:
    return hashlib.sha256(
        _payload_of(checkpoint) + b"." + checkpoint.signature.encode("ascii")
    ).hexdigest()


@dataclass(frozen=True)
class CheckpointProblem:
    checkpoint_id: int
    what: str


def check_checkpoint(
    checkpoint: AuditCheckpoint,
    *,
    public_keys: Mapping[str, Ed25519PublicKey],
    previous_hash: str,
) -> CheckpointProblem | None:
    """Is this checkpoint signed by a trusted key, consistent, and chained to ``previous_hash``?

    Does not look at events: the verifier checks each listed head against the chain.
    """
    public = public_keys.get(checkpoint.key_id)
    if public is None:
        return CheckpointProblem(
            checkpoint.pk, f"signed with key {checkpoint.key_id}, which is not a trusted key"
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        public.verify(signature, _payload_of(checkpoint))
    except (InvalidSignature, ValueError, binascii.Error):
        return CheckpointProblem(checkpoint.pk, "signature does not verify (checkpoint altered)")
    if heads_digest(checkpoint.heads) != checkpoint.heads_digest:
        return CheckpointProblem(checkpoint.pk, "heads do not match the signed heads digest")
    if checkpoint.previous_checkpoint_hash != previous_hash:
        return CheckpointProblem(
            checkpoint.pk,
            "does not chain to the checkpoint before it (a checkpoint was removed or reordered)",
        )
    return None


# -- writing ---------------------------------------------------------------------------


def checkpoint_create(*, full: bool = False) -> AuditCheckpoint:
    """Sign the heads of every chain changed since the previous checkpoint (or all, if
    ``full`` or there is none) and store the checkpoint. Run periodically; copy the
    output (``healthspace audit checkpoint``) off the server.
    """
    private = signing_key()
    with transaction.atomic():
        # Checkpoints chain, so two must not be written at once: lock the latest one.
        previous = AuditCheckpoint.objects.select_for_update().order_by("-pk").first()
        created_at = now()
        heads_qs = AuditChainHead.objects.order_by()
        # "Changed since" counts from the previous regular checkpoint: an archive
        # checkpoint (audit.archive) pins archived links, not the heads.
        since = AuditCheckpoint.objects.filter(archive_before__isnull=True).order_by("-pk").first()
        if since is not None and not full:
            heads_qs = heads_qs.filter(updated_at__gte=since.created_at - OVERLAP)
        heads = {
            key: [seq, head_hash]
            for key, seq, head_hash in heads_qs.values_list(
                "chain_key", "seq", "head_hash"
            ).iterator(chunk_size=2000)
        }
        return _sign_and_store(private, previous, created_at, heads)


def archive_checkpoint_create(*, heads: dict[str, list], archive_before) -> AuditCheckpoint:
    """Sign ``heads`` (archived links plus the archive entry) as the next checkpoint in the
    chain, marked as an archive checkpoint. Call inside the archive's transaction."""
    private = signing_key()
    with transaction.atomic():
        previous = AuditCheckpoint.objects.select_for_update().order_by("-pk").first()
        return _sign_and_store(private, previous, now(), heads, archive_before=archive_before)


def _sign_and_store(private, previous, created_at, heads, **extra) -> AuditCheckpoint:
    digest = heads_digest(heads)
    prev_hash = chain.GENESIS if previous is None else checkpoint_hash(previous)
    kid = key_id(private.public_key())
    signature = private.sign(
        payload_bytes(
            created_at=created_at,
            heads_digest=digest,
            previous_checkpoint_hash=prev_hash,
            key_id=kid,
        )
    )
    return AuditCheckpoint.objects.create(
        created_at=created_at,
        heads=heads,
        heads_digest=digest,
        previous_checkpoint_hash=prev_hash,
        signature=base64.b64encode(signature).decode(),
        key_id=kid,
        **extra,
    )
