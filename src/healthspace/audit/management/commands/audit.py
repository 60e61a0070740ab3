"""``healthspace audit verify|checkpoint|public-key``: the tamper-evident audit trail.

See docs/audit.md for what each checks and how to keep checkpoints off the server.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from healthspace.audit import archive, checkpoints, partitions
from healthspace.audit.verify import verify_database

# Enough to start an investigation without flooding a terminal.
SHOWN_PROBLEMS = 20


class Command(BaseCommand):
    help = (
        "Verify the audit hash chains, write a signed checkpoint, print the public key, "
        "create monthly partitions, or archive old ones."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser(
            "verify",
            help="Recompute every chain and check every checkpoint; exit non-zero on tampering.",
        )
        verify.add_argument(
            "--public-key",
            action="append",
            default=[],
            metavar="BASE64",
            help="Trust this Ed25519 public key (from an off-box copy) instead of the "
            "configured signing key. Repeat for rotated keys.",
        )
        verify.add_argument(
            "--expect-checkpoint",
            action="append",
            default=[],
            metavar="HASH",
            help="A checkpoint hash kept off-box; fail if it is not in the checkpoint chain.",
        )
        checkpoint = sub.add_parser(
            "checkpoint",
            help="Sign the heads of the chains changed since the last checkpoint.",
        )
        checkpoint.add_argument(
            "--full", action="store_true", help="Include the head of every chain."
        )
        sub.add_parser("public-key", help="Print the checkpoint public key (base64) and its id.")
        ensure = sub.add_parser(
            "partitions",
            help="PostgreSQL: create the monthly partitions of the coming months (run daily) "
            "and move events out of the default partition.",
        )
        ensure.add_argument(
            "--months-ahead", type=int, default=partitions.MONTHS_AHEAD, metavar="N"
        )
        ensure.add_argument(
            "--schedule",
            action="store_true",
            help="Also queue the daily worker task that keeps creating them.",
        )
        store = sub.add_parser(
            "archive",
            help="PostgreSQL: detach the partitions before a month, export them to a file, "
            "sign the archive boundary in a checkpoint, and drop them.",
        )
        store.add_argument("--before", required=True, metavar="YYYY-MM")
        store.add_argument(
            "--to", required=True, metavar="DIR", help="Folder for the NDJSON archive file."
        )

    def handle(self, *args, subcommand: str, **options):
        try:
            if subcommand == "verify":
                return self._verify(options["public_key"], options["expect_checkpoint"])
            if subcommand == "checkpoint":
                return self._checkpoint(full=options["full"])
            if subcommand == "partitions":
                return self._partitions(options["months_ahead"], schedule=options["schedule"])
            if subcommand == "archive":
                return self._archive(options["before"], Path(options["to"]))
            return self._public_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    def _verify(self, public_keys_text: list[str], expected: list[str]) -> None:
        public_keys = None
        if public_keys_text:
            try:
                keys = [checkpoints.public_key_from_text(text) for text in public_keys_text]
            except ValueError as exc:
                raise CommandError(f"--public-key: {exc}") from exc
            public_keys = {checkpoints.key_id(key): key for key in keys}
        report = verify_database(public_keys=public_keys, expected_checkpoints=expected)
        if report.ok:
            self.stdout.write(report.summary())
            return
        for problem in report.problems[:SHOWN_PROBLEMS]:
            self.stderr.write(f"BROKEN {problem}")
        if len(report.problems) > SHOWN_PROBLEMS:
            self.stderr.write(f"... and {len(report.problems) - SHOWN_PROBLEMS} more")
        raise CommandError(f"AUDIT TRAIL TAMPERED: {report.summary()}")

    def _checkpoint(self, *, full: bool) -> None:
        cp = checkpoints.checkpoint_create(full=full)
        # One JSON line: what to ship off the server (the hash is what --expect-checkpoint
        # takes; the rest lets anyone re-check the signature with the public key).
        self.stdout.write(
            json.dumps(
                {
                    "checkpoint_id": cp.pk,
                    "checkpoint_hash": checkpoints.checkpoint_hash(cp),
                    "created_at": cp.created_at.isoformat(),
                    "chains": len(cp.heads),
                    "heads_digest": cp.heads_digest,
                    "previous_checkpoint_hash": cp.previous_checkpoint_hash,
                    "key_id": cp.key_id,
                    "signature": cp.signature,
                },
                sort_keys=True,
            )
        )

    def _partitions(self, months_ahead: int, *, schedule: bool) -> None:
        if months_ahead < 0:
            raise CommandError("--months-ahead must be 0 or more")
        if schedule and partitions.is_partitioned():
            from healthspace.audit.tasks import audit_partitions_ensure

            audit_partitions_ensure.enqueue()
            self.stdout.write("Queued the daily partition task for `healthspace worker`.")
        if not partitions.is_partitioned():
            self.stdout.write("The audit trail is one table on this database: nothing to do.")
            return
        created = partitions.ensure_partitions(months_ahead=months_ahead)
        left = partitions.default_partition_rows()
        self.stdout.write(
            f"{len(created)} partition(s) created"
            + (f": {', '.join(created)}" if created else "")
            + f"; {left} event(s) in the default partition"
        )

    def _archive(self, before_text: str, directory: Path) -> None:
        try:
            before = partitions.parse_month(before_text)
        except ValueError as exc:
            raise CommandError(f"--before: {exc}") from exc
        try:
            result = archive.archive_before(before, directory)
        except archive.ArchiveRefused as exc:
            raise CommandError(f"Nothing archived: {exc}") from exc
        cp = result.checkpoint
        # Like a checkpoint: one JSON line to ship off the server with the file.
        self.stdout.write(
            json.dumps(
                {
                    "archive": str(result.path),
                    "sha256": result.sha256,
                    "events": result.events,
                    "chains": result.chains,
                    "partitions": list(result.partitions),
                    "checkpoint_id": cp.pk,
                    "checkpoint_hash": checkpoints.checkpoint_hash(cp),
                    "created_at": cp.created_at.isoformat(),
                    "key_id": cp.key_id,
                    "signature": cp.signature,
                },
                sort_keys=True,
            )
        )

    def _public_key(self) -> None:
        public = checkpoints.configured_public_key()
        self.stdout.write(checkpoints.public_key_text(public))
        self.stdout.write(f"key id {checkpoints.key_id(public)}")
