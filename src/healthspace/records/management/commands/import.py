from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.records.importer import import_paths


class Command(BaseCommand):
    help = (
        "Import FHIR R4 Bundles (.json, any Bundle type), single resources and NDJSON files "
        "or folders of them into patients' Summary Care Records. Each file is all-or-nothing; "
        "importing the same data again changes nothing."
    )
    # Django's system checks (URL configuration, templates, admin) are about serving, not
    # importing: they cost about a second of start-up per import (and the bulk workers,
    # forked after them, would carry every view module)
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="files or folders")
        parser.add_argument(
            "--assign-nhs-numbers",
            action="store_true",
            help="give patients without an NHS number one from the test range 999 000 0000 - "
            "999 999 9999 (test and synthetic data only, e.g. Synthea)",
        )
        parser.add_argument(
            "--bulk",
            action="store_true",
            help="PostgreSQL: stream NDJSON, validate and seal in worker processes, write with "
            "COPY (docs/import.md, 'Bulk import'); on SQLite the plain import",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="with --bulk: worker processes validating and sealing (0: in this process)",
        )
        parser.add_argument(
            "--source",
            default=None,
            help="the sending system's identifier (a URI); items are keyed by it and their ids",
        )

    def handle(self, *args, paths, assign_nhs_numbers, source, bulk, workers, **options):
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"not found: {', '.join(missing)}")
        from healthspace.ops.lifecycle import ServiceReadOnly

        try:
            if bulk:
                if workers < 0:
                    raise CommandError("--workers must be 0 or more")
                from healthspace.records.bulk import bulk_import_paths

                report = bulk_import_paths(
                    paths, source=source, assign_nhs_numbers=assign_nhs_numbers, workers=workers
                )
            else:
                report = import_paths(paths, source=source, assign_nhs_numbers=assign_nhs_numbers)
        except ServiceReadOnly as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            (self.stderr if line.startswith("ERROR") else self.stdout).write(line)
        if not report.ok:
            raise CommandError(
                f"{report.files_failed} file(s) failed; nothing of them was imported"
            )
