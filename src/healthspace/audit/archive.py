"""Archive old monthly partitions of the audit trail: detach, export, sign, drop.

``healthspace audit archive --before YYYY-MM --to DIR`` takes every partition wholly
before that month and:

1. detaches it from ``audit_event`` (a catalogue change in its own short transaction;
   writers only write the current month);
2. streams its events, ordered by (chain_key, seq), to an NDJSON file in DIR (mode 0600:
   it names patients and staff), checking each chain on the way from where the previous
   archive left it (the hashes must recompute and link, the seqs must follow): a trail
   that is already broken is refused, never laundered into an archive;
3. refuses if any event left in the table sits at or below an archived link of its chain
   (a clock that went backwards across the month boundary): the archive must be each
   chain's *oldest* links;
4. writes an **archive checkpoint**: an ordinary signed checkpoint, chained to the one
   before, whose heads are each archived chain's last archived link plus the entry
   ``"archive:YYYY-MM": [events, sha256 of the file]``;
5. drops the detached tables, in the same transaction as the checkpoint.

If anything fails, the partitions are attached again and the file removed: nothing has
changed. ``healthspace audit verify`` then starts each archived chain at the signed
boundary (seq k+1 with prev_hash = the hash of link k) instead of seq 1, so it still finds
any edit, deletion or truncation in what remains. The file's digest is signed, so a copy
kept off the server can be checked against the checkpoint (``sha256sum``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection, transaction

from healthspace.audit import chain, checkpoints, partitions, verify
from healthspace.audit.models import AuditCheckpoint
from healthspace.core.clock import now

FORMAT = "hs-audit-archive-v1"
FIELDS = verify.EVENT_FIELDS  # an archived event holds what the verifier reads
FETCH = 5000


class ArchiveRefused(Exception):
    """Nothing was archived; the message says why."""


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    sha256: str
    events: int
    chains: int
    partitions: tuple[str, ...]
    checkpoint: AuditCheckpoint


def archive_before(before: date, directory: Path) -> ArchiveResult:
    if not partitions.is_partitioned():
        raise ArchiveRefused(
            "the audit trail is not partitioned (archiving needs PostgreSQL; SQLite keeps "
            "one table)"
        )
    if before > partitions.month_start(now()):
        raise ArchiveRefused("only months before the current one can be archived")
    checkpoints.signing_key()  # fail before touching anything if the key is missing
    public = checkpoints.configured_public_key()
    directory.mkdir(parents=True, exist_ok=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT count(*) FROM "{partitions.DEFAULT_PARTITION}" WHERE occurred_at < %s',  # noqa: S608 (names are constants or partition names matched by a regex)
            [partitions._bound(before)],
        )
        if cursor.fetchone()[0]:
            raise ArchiveRefused(
                "the default partition holds events older than the archive boundary: run "
                "`healthspace audit partitions` first, which moves them into their months"
            )
    targets = [p for p in partitions.partitions() if p.upper <= before]
    if not targets:
        raise ArchiveRefused(f"no partition ends on or before {before:%Y-%m}")
    path = directory / f"audit-archive-before-{before:%Y-%m}.ndjson"
    if path.exists():
        raise ArchiveRefused(f"{path} already exists")
    try:
        for part in targets:
            if part.attached:
                _detach(part.name)
        with transaction.atomic():
            result = _export_and_drop(before, targets, path, public)
        return result
    except BaseException:
        path.unlink(missing_ok=True)
        # Put back every target still detached, including one left detached by an
        # interrupted earlier run: the trail is whole again, as before the command.
        attached = {p.name for p in partitions.partitions() if p.attached}
        for part in targets:
            if part.name not in attached:
                _attach(part)
        raise


def _detach(name: str) -> None:
    # DETACH ... CONCURRENTLY is not allowed beside a default partition, so this takes the
    # table's ACCESS EXCLUSIVE lock, for a catalogue change only (no scan, no copy): a
    # moment, in its own transaction. lock_timeout keeps it from queueing writers behind
    # it for long when a long transaction holds the table; retry later if it times out.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute(f'ALTER TABLE "{partitions.TABLE}" DETACH PARTITION "{name}"')


def _attach(part: partitions.Partition) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{partitions.TABLE}" ATTACH PARTITION "{part.name}" FOR VALUES '
            f"FROM ('{partitions._bound(part.month)}') TO ('{partitions._bound(part.upper)}')"
        )


def _export_and_drop(
    before: date, targets: list[partitions.Partition], path: Path, public: Ed25519PublicKey
) -> ArchiveResult:
    # Serialise archives and checkpoints: the boundaries read now must be the latest.
    AuditCheckpoint.objects.select_for_update().order_by("-pk").first()
    previous = verify.archive_boundaries(_Boundaries(), {checkpoints.key_id(public): public})
    # Names are constants or partition names matched by a regex.
    union = " UNION ALL ".join(
        f'SELECT {", ".join(FIELDS)} FROM "{p.name}"'  # noqa: S608 - names from the catalogue, matched
        for p in targets
    )
    _refuse_overlap(union)
    sha = hashlib.sha256()
    boundaries: dict[str, list] = {}
    events = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        header = {
            "format": FORMAT,
            "before": f"{before:%Y-%m}",
            "partitions": [p.name for p in targets],
            "created_at": chain.timestamp(now()),
        }
        line = (json.dumps(header, sort_keys=True) + "\n").encode()
        out.write(line)
        sha.update(line)
        current: verify._Chain | None = None
        # A server-side cursor: the partitions are streamed, never held in memory.
        with connection.connection.cursor(name="audit_archive") as cursor:
            cursor.itersize = FETCH
            cursor.execute(f"SELECT * FROM ({union}) AS archived ORDER BY chain_key, seq")  # noqa: S608 (names are constants or partition names matched by a regex)
            for row in cursor:
                if isinstance(row[-1], str):  # Django has psycopg hand jsonb over as text
                    row = (*row[:-1], json.loads(row[-1]))
                event = verify.EventRow(*row)
                if current is None or current.key != event.chain_key:
                    current = verify._Chain(key=event.chain_key, ordinal=0)
                    if event.chain_key in previous:
                        seq, digest = previous[event.chain_key]
                        current.expected_seq, current.expected_prev = seq + 1, digest
                problem = verify._event_problem(current, event)
                if problem is not None:
                    raise ArchiveRefused(
                        f"the trail to be archived is broken ({problem}); run "
                        "`healthspace audit verify` and investigate before archiving"
                    )
                current.expected_seq, current.expected_prev = event.seq + 1, event.hash
                boundaries[event.chain_key] = [event.seq, event.hash]
                events += 1
                line = (_line(event) + "\n").encode()
                out.write(line)
                sha.update(line)
        out.flush()
        os.fsync(out.fileno())
    if events == 0:
        raise ArchiveRefused(f"the partitions before {before:%Y-%m} hold no events")
    digest = sha.hexdigest()
    heads = dict(boundaries)
    heads[f"{verify.ARCHIVE_PREFIX}{before:%Y-%m}"] = [events, digest]
    cp = checkpoints.archive_checkpoint_create(heads=heads, archive_before=before)
    with connection.cursor() as cursor:
        for part in targets:
            cursor.execute(f'DROP TABLE "{part.name}"')
    return ArchiveResult(
        path=path,
        sha256=digest,
        events=events,
        chains=len(boundaries),
        partitions=tuple(p.name for p in targets),
        checkpoint=cp,
    )


def _refuse_overlap(union: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.chain_key, a.top FROM (SELECT chain_key, max(seq) AS top FROM ({union}) "  # noqa: S608 (names are constants or partition names matched by a regex)
            "AS archived GROUP BY chain_key) AS a WHERE EXISTS (SELECT 1 FROM "
            f'"{partitions.TABLE}" e WHERE e.chain_key = a.chain_key AND e.seq <= a.top) '
            "LIMIT 1"
        )
        row = cursor.fetchone()
    if row is not None:
        raise ArchiveRefused(
            f"chain {row[0]} has events left in the table at or below its last archived "
            f"link (seq {row[1]}): its events are not in time order across the boundary; "
            "archive an earlier month"
        )


def _line(event: verify.EventRow) -> str:
    return json.dumps(
        {
            "id": event.id,
            "chain_key": event.chain_key,
            "seq": event.seq,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
            "occurred_at": chain.timestamp(event.occurred_at),
            "patient_id": None if event.patient_id is None else str(event.patient_id),
            "actor": event.actor,
            "action": event.action,
            "outcome": event.outcome,
            "reason": event.reason,
            "detail": event.detail,
        },
        sort_keys=True,
        ensure_ascii=True,
    )


class _Boundaries:
    """Just enough of a verify.Store to read the archive checkpoints."""

    def archive_checkpoints(self):
        return verify.DatabaseStore().archive_checkpoints()
