"""Verify the audit chains and checkpoints. Reads only; trusts nothing it reads.

The walk itself (:func:`verify`) is kept apart from the database behind a small
:class:`Store` interface, so it can be tested against hand-made falsified chains as
well as against rows tampered with in the database. A verifier that passes what it
should reject is worse than none: every rule here has a test that breaks it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Q

from healthspace.audit import chain, checkpoints
from healthspace.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent

BATCH = 500
ARCHIVE_PREFIX = "archive:"


@dataclass(frozen=True)
class EventRow:
    id: int
    chain_key: str
    seq: int
    prev_hash: str
    hash: str
    occurred_at: datetime
    patient_id: uuid.UUID | None
    actor: str
    action: str
    outcome: str
    reason: str
    detail: Any


# What a problem means, in the words an investigator needs.
EDITED = "hash mismatch: the event's contents changed after it was written (edited)"
LINK = (
    "link mismatch: prev_hash is not the hash of the event before it "
    "(an event was deleted, reordered or inserted, or the one before was rewritten)"
)
GAP = "seq gap: events are missing before this one (deleted)"
OUT_OF_ORDER = "seq out of order or repeated (reordered or inserted)"
MISFILED = "event is filed in the wrong chain (patient or actor changed, or row moved)"
TRUNCATED = "head mismatch: the chain's head is beyond its last event (truncated)"
BEYOND_HEAD = "head mismatch: events after the recorded head (inserted or forged)"
HEAD_HASH = "head mismatch: the head's hash is not the last event's hash (rewritten)"
NO_HEAD = "head missing: the chain has events but no head row (head deleted)"
ORPHAN_HEAD = "head without events: the whole chain was deleted"
NOT_IN_CHAIN = "checkpointed event is missing (deleted or truncated after the checkpoint)"
REWRITTEN = "checkpointed event has a different hash (rewritten after the checkpoint)"
CHECKPOINT = "checkpoint invalid"
ARCHIVE_MARK = (
    "checkpoint marked as an archive, but its signed heads name no archive "
    "(archive boundaries not used)"
)
ARCHIVE_CONFLICT = "archive boundary contradicts a checkpoint (archived link has another hash)"
UNKNOWN_CHECKPOINT = "expected checkpoint (from an off-box copy) is not in the database"


@dataclass(frozen=True)
class Problem:
    chain_key: str
    seq: int | None
    event_id: int | None
    what: str
    detail: str = ""
    checkpoint_id: int | None = None

    def __str__(self) -> str:
        where = []
        if self.chain_key:
            where.append(f"chain {self.chain_key}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.event_id is not None:
            where.append(f"event id {self.event_id}")
        if self.checkpoint_id is not None:
            where.append(f"checkpoint id {self.checkpoint_id}")
        text = ", ".join(where) + f": {self.what}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class Report:
    events: int = 0
    chains: int = 0
    checkpoints: int = 0
    # Chains whose oldest links were archived: their walk starts at the signed boundary.
    archived_chains: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        counts = f"{self.events} events in {self.chains} chains, {self.checkpoints} checkpoints"
        if self.archived_chains:
            counts += f" ({self.archived_chains} chains resume after archived links)"
        if self.ok:
            return f"{counts}: OK"
        return f"{counts}: {len(self.problems)} problem(s); first: {self.first}"


class Store(Protocol):
    def events(self) -> Iterable[EventRow]:
        """Every event, ordered by (chain_key, seq)."""

    def heads(self, keys: Sequence[str]) -> Mapping[str, tuple[int, str]]:
        """{chain_key: (seq, head_hash)} for those of ``keys`` that have a head row."""

    def head_count(self) -> int: ...

    def heads_without_events(self) -> Iterable[tuple[str, int]]:
        """(chain_key, seq) of head rows whose chain has no events at all."""

    def checkpoints(self) -> Iterable[AuditCheckpoint]:
        """Every checkpoint, oldest first."""

    def events_at(
        self, links: Sequence[tuple[str, int]]
    ) -> Mapping[tuple[str, int], tuple[int, str]]:
        """{(chain_key, seq): (event id, hash)} for those links that exist."""

    def archive_checkpoints(self) -> Iterable[AuditCheckpoint]:
        """The checkpoints marked as archive checkpoints, oldest first (a finding aid:
        what they vouch for is read from their signed heads only)."""


@dataclass
class _Chain:
    key: str
    ordinal: int
    expected_seq: int = 1
    expected_prev: str = chain.GENESIS
    last: EventRow | None = None
    broken: bool = False


def archive_entry(heads: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The ``archive:YYYY-MM`` entry of an archive checkpoint's heads, if any."""
    for key, value in heads.items():
        if key.startswith(ARCHIVE_PREFIX):
            return key, value
    return None


def archive_boundaries(
    store: Store,
    public_keys: Mapping[str, Ed25519PublicKey],
    found: list[tuple[tuple[int, int], Problem]] | None = None,
) -> dict[str, tuple[int, str]]:
    """{chain_key: (seq, hash)} of each chain's last archived link, from the signed heads
    of valid archive checkpoints (later archives extend earlier ones). A checkpoint whose
    signature or digest fails vouches for nothing (the checkpoint pass reports it)."""
    boundaries: dict[str, tuple[int, str]] = {}
    for cp in store.archive_checkpoints():
        bad = checkpoints.check_checkpoint(
            cp, public_keys=public_keys, previous_hash=cp.previous_checkpoint_hash
        )
        if bad is not None:
            continue
        if archive_entry(cp.heads) is None:
            if found is not None:
                found.append(((2, -1), Problem("", None, None, CHECKPOINT, ARCHIVE_MARK, cp.pk)))
            continue
        for key, value in cp.heads.items():
            if not key.startswith(ARCHIVE_PREFIX):
                boundaries[key] = (int(value[0]), str(value[1]))
    return boundaries


def verify(
    store: Store,
    *,
    public_keys: Mapping[str, Ed25519PublicKey],
    expected_checkpoints: Iterable[str] = (),
) -> Report:
    report = Report()
    # (sort key, problem): problems are reported in chain order, then checkpoint order,
    # although head checks run in batches after their chain has been walked.
    found: list[tuple[tuple[int, int], Problem]] = []
    # Chains whose first links were archived start from the signed boundary, not seq 1.
    boundaries = archive_boundaries(store, public_keys, found)
    walked: set[str] = set()  # archived chains that still have events
    pending: list[_Chain] = []
    matched_heads = 0

    def flush() -> None:
        nonlocal matched_heads
        if not pending:
            return
        heads = store.heads([c.key for c in pending])
        for c in pending:
            head = heads.get(c.key)
            if head is not None:
                matched_heads += 1
            problem = _head_problem(c, head)
            if problem is not None:
                found.append(((0, c.ordinal), problem))
        pending.clear()

    current: _Chain | None = None
    for event in store.events():
        report.events += 1
        if current is None or event.chain_key != current.key:
            if current is not None:
                pending.append(current)
                if len(pending) >= BATCH:
                    flush()
            current = _Chain(key=event.chain_key, ordinal=report.chains)
            report.chains += 1
            boundary = boundaries.get(event.chain_key)
            if boundary is not None:
                walked.add(event.chain_key)
                current.expected_seq, current.expected_prev = boundary[0] + 1, boundary[1]
                report.archived_chains += 1
        if current.broken:
            continue
        problem = _event_problem(current, event)
        if problem is not None:
            # Later links of a broken chain would only repeat the news.
            current.broken = True
            found.append(((0, current.ordinal), problem))
            continue
        current.expected_seq = event.seq + 1
        current.expected_prev = event.hash
        current.last = event
    if current is not None:
        pending.append(current)
    flush()

    if store.head_count() != matched_heads:
        for key, seq in store.heads_without_events():
            if key not in boundaries:
                found.append(((1, 0), Problem(key, seq, None, ORPHAN_HEAD, f"head at seq {seq}")))
    # Chains archived whole: their head must still be the last archived link.
    unwalked = sorted(set(boundaries) - walked)
    for start in range(0, len(unwalked), BATCH):
        batch = unwalked[start : start + BATCH]
        heads = store.heads(batch)
        for key in batch:
            problem = _archived_head_problem(key, heads.get(key), boundaries[key])
            if problem is not None:
                found.append(((1, 0), problem))

    seen_hashes = _verify_checkpoints(store, report, found, public_keys, boundaries)
    for expected in expected_checkpoints:
        if expected not in seen_hashes:
            found.append(((3, 0), Problem("", None, None, UNKNOWN_CHECKPOINT, expected)))

    found.sort(key=lambda item: item[0])
    report.problems = [problem for _, problem in found]
    return report


def _event_problem(c: _Chain, event: EventRow) -> Problem | None:
    def problem(what: str, detail: str = "") -> Problem:
        return Problem(c.key, event.seq, event.id, what, detail)

    if event.seq > c.expected_seq:
        return problem(GAP, f"seq {c.expected_seq} to {event.seq - 1} missing")
    if event.seq < c.expected_seq:
        return problem(OUT_OF_ORDER, f"expected seq {c.expected_seq}")
    if event.prev_hash != c.expected_prev:
        return problem(LINK)
    try:
        belongs = chain.chain_key_for(patient_id=event.patient_id, actor=event.actor)
        recomputed = chain.event_hash(
            chain_key=event.chain_key,
            seq=event.seq,
            prev_hash=event.prev_hash,
            occurred_at=event.occurred_at,
            patient_id=event.patient_id,
            actor=event.actor,
            action=event.action,
            outcome=event.outcome,
            reason=event.reason,
            detail=event.detail,
        )
    except (TypeError, ValueError) as exc:
        # Values no writer could have produced (a naive timestamp, a non-UUID patient).
        return problem(EDITED, f"unreadable field: {exc}")
    if recomputed != event.hash:
        return problem(EDITED)
    if belongs != event.chain_key:
        # The hash covers chain_key, so only a forger who recomputed it gets here.
        return problem(MISFILED, f"its patient/actor belong to chain {belongs}")
    return None


def _head_problem(c: _Chain, head: tuple[int, str] | None) -> Problem | None:
    if c.broken or c.last is None:
        return None
    last = c.last
    if head is None:
        return Problem(c.key, last.seq, last.id, NO_HEAD)
    seq, head_hash = head
    if seq > last.seq:
        return Problem(
            c.key,
            last.seq + 1,
            None,
            TRUNCATED,
            f"head at seq {seq}; last event is seq {last.seq} (event id {last.id})",
        )
    if seq < last.seq:
        return Problem(c.key, seq + 1, None, BEYOND_HEAD, f"head at seq {seq}")
    if head_hash != last.hash:
        return Problem(c.key, last.seq, last.id, HEAD_HASH)
    return None


def _archived_head_problem(
    key: str, head: tuple[int, str] | None, boundary: tuple[int, str]
) -> Problem | None:
    """A chain with no events left is whole only if its head is its last archived link."""
    if head is not None and tuple(head) == boundary:
        return None
    if head is None:
        return Problem(key, boundary[0], None, NO_HEAD, "every event was archived")
    if head[0] > boundary[0]:
        return Problem(
            key,
            boundary[0] + 1,
            None,
            TRUNCATED,
            f"head at seq {head[0]}; archived up to seq {boundary[0]}, no events after it",
        )
    return Problem(key, head[0], None, HEAD_HASH, "head does not match the last archived link")


def _verify_checkpoints(
    store: Store,
    report: Report,
    found: list[tuple[tuple[int, int], Problem]],
    public_keys: Mapping[str, Ed25519PublicKey],
    boundaries: Mapping[str, tuple[int, str]],
) -> set[str]:
    seen: set[str] = set()
    previous_hash = chain.GENESIS
    for index, cp in enumerate(store.checkpoints()):
        report.checkpoints += 1
        bad = checkpoints.check_checkpoint(cp, public_keys=public_keys, previous_hash=previous_hash)
        previous_hash = checkpoints.checkpoint_hash(cp)
        seen.add(previous_hash)
        if bad is not None:
            found.append(((2, index), Problem("", None, None, CHECKPOINT, bad.what, cp.pk)))
            # An unsigned list of heads proves nothing about the events.
            continue
        links = []
        for key, value in cp.heads.items():
            if key.startswith(ARCHIVE_PREFIX):
                continue  # the archive's manifest, not a link
            link = (key, int(value[0]), str(value[1]))
            boundary = boundaries.get(key)
            if boundary is not None and link[1] <= boundary[0]:
                # Archived: no longer in the database. The boundary link itself is
                # pinned by the (signed) archive checkpoint, so both must agree.
                if link[1] == boundary[0] and link[2] != boundary[1]:
                    found.append(
                        ((2, index), Problem(key, link[1], None, ARCHIVE_CONFLICT, "", cp.pk))
                    )
                continue
            links.append(link)
        for start in range(0, len(links), BATCH):
            batch = links[start : start + BATCH]
            stored = store.events_at([(key, seq) for key, seq, _ in batch])
            for key, seq, pinned in batch:
                event = stored.get((key, seq))
                if event is None:
                    found.append(((2, index), Problem(key, seq, None, NOT_IN_CHAIN, "", cp.pk)))
                elif event[1] != pinned:
                    found.append(((2, index), Problem(key, seq, event[0], REWRITTEN, "", cp.pk)))
    return seen


# -- the database as a Store --------------------------------------------------------------

# The columns of one event as the verifier reads it (and as an archive file keeps it).
EVENT_FIELDS = (
    "id",
    "chain_key",
    "seq",
    "prev_hash",
    "hash",
    "occurred_at",
    "patient_id",
    "actor",
    "action",
    "outcome",
    "reason",
    "detail",
)


class DatabaseStore:
    def events(self) -> Iterator[EventRow]:
        rows = (
            AuditEvent.objects.order_by("chain_key", "seq")
            .values_list(*EVENT_FIELDS)
            .iterator(chunk_size=2000)
        )
        for row in rows:
            yield EventRow(*row)

    def heads(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        return {
            key: (seq, head_hash)
            for key, seq, head_hash in AuditChainHead.objects.filter(
                chain_key__in=list(keys)
            ).values_list("chain_key", "seq", "head_hash")
        }

    def head_count(self) -> int:
        return AuditChainHead.objects.count()

    def heads_without_events(self) -> Iterator[tuple[str, int]]:
        orphans = AuditChainHead.objects.exclude(
            chain_key__in=AuditEvent.objects.values("chain_key")
        ).order_by("chain_key")
        yield from orphans.values_list("chain_key", "seq").iterator(chunk_size=2000)

    def checkpoints(self) -> Iterator[AuditCheckpoint]:
        yield from AuditCheckpoint.objects.order_by("pk").iterator(chunk_size=100)

    def archive_checkpoints(self) -> Iterator[AuditCheckpoint]:
        yield from AuditCheckpoint.objects.filter(archive_before__isnull=False).order_by("pk")

    def events_at(self, links: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, str]]:
        if not links:
            return {}
        match = Q()
        for key, seq in links:
            match |= Q(chain_key=key, seq=seq)
        return {
            (key, seq): (pk, digest)
            for pk, key, seq, digest in AuditEvent.objects.filter(match).values_list(
                "id", "chain_key", "seq", "hash"
            )
        }


def verify_database(
    *,
    public_keys: Mapping[str, Ed25519PublicKey] | None = None,
    expected_checkpoints: Iterable[str] = (),
) -> Report:
    """Verify everything stored, in one consistent snapshot.

    Events, heads and checkpoints must be read as of one moment: otherwise an event
    appended while the walk runs makes its head look "beyond the last event". On
    PostgreSQL a REPEATABLE READ, READ ONLY transaction gives that without blocking
    writers; on SQLite the transaction holds the write lock until the walk ends.
    """
    if public_keys is None:
        try:
            public = checkpoints.configured_public_key()
            public_keys = {checkpoints.key_id(public): public}
        except ImproperlyConfigured:
            # Chains can still be verified; any checkpoint then fails as "not trusted".
            public_keys = {}
    # Inside an enclosing transaction (as in tests) its isolation level is already set.
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return verify(
            DatabaseStore(), public_keys=public_keys, expected_checkpoints=expected_checkpoints
        )
