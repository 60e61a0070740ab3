"""``healthspace keystore orphans [--delete] [--min-age HOURS] [--json] [--schedule]``:
live data keys whose subject is in no row of the main database (docs/keystore.md)."""

from __future__ import annotations

import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError

from healthspace.vault import orphans


class Command(BaseCommand):
    help = "Look after the key store: see docs/keystore.md."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        found = sub.add_parser(
            "orphans",
            help="count (or delete) live data keys that open nothing: their import or "
            "transaction never committed the patient or account they were made for",
        )
        found.add_argument(
            "--delete", action="store_true", help="delete them (audited, counts only)"
        )
        found.add_argument(
            "--min-age",
            type=float,
            default=orphans.DEFAULT_MIN_AGE.total_seconds() / 3600,
            metavar="HOURS",
            help="look only at keys older than this (default 1); keys made since the "
            "oldest transaction still open on the main database are never looked at",
        )
        found.add_argument("--json", action="store_true", help="one JSON object")
        found.add_argument(
            "--schedule",
            action="store_true",
            help="queue the daily worker task that deletes them (min age 24 hours)",
        )

    def handle(self, *args, subcommand: str, **options):
        if options["schedule"]:
            from healthspace.vault.tasks import keystore_orphans_sweep

            keystore_orphans_sweep.enqueue()
            self.stdout.write("queued: keystore_orphans_sweep, daily")
            return
        try:
            report = orphans.find(
                min_age=timedelta(hours=options["min_age"]), delete=options["delete"]
            )
        except ValueError as exc:  # a negative --min-age
            raise CommandError(f"--min-age: {exc}") from exc
        except OperationalError as exc:  # SQLite: another writer held the lock too long
            raise CommandError(
                "the main database is busy (an import running?): nothing was deleted in the "
                f"batch it stopped at; run this again later ({exc})"
            ) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "cutoff": report.cutoff.isoformat(),
                        "oldest_open_transaction": report.oldest_open_transaction.isoformat()
                        if report.oldest_open_transaction
                        else None,
                        "examined": report.examined,
                        "orphans": report.found,
                        "deleted": report.deleted,
                    },
                    sort_keys=True,
                )
            )
            return
        self.stdout.write(
            f"{report.examined} live key(s) made before {report.cutoff:%Y-%m-%d %H:%M:%S %Z}"
            " examined"
        )
        if report.oldest_open_transaction is not None and (
            report.cutoff == report.oldest_open_transaction
        ):
            self.stdout.write(
                "(the cutoff is the start of the oldest transaction still open on the main "
                "database: keys made since may belong to it)"
            )
        kinds = ", ".join(f"{kind} {n}" for kind, n in report.found.items())
        self.stdout.write(f"{report.total} orphan(s): {kinds}")
        if options["delete"]:
            self.stdout.write(f"{report.deleted} deleted")
        elif report.total:
            self.stdout.write("run again with --delete to delete them")
