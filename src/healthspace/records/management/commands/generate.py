from __future__ import annotations

import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.records import population

DEFAULT_SYNTHEA = Path(__file__).resolve().parents[6] / "shared" / "data" / "fhir"


class Command(BaseCommand):
    help = (
        "Write a synthetic population (test-range NHS numbers, shapes and codes from Synthea) "
        "as NDJSON files ready for `healthspace import --bulk` (docs/cli.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, required=True)
        parser.add_argument("--out", type=Path, required=True, help="folder for the files")
        parser.add_argument(
            "--synthea",
            type=Path,
            default=None,
            help="folder of Synthea Bundles to draw shapes from (default: "
            "$HEALTHSPACE_TEST_DATA, else ../shared/data/fhir; without any, the built-in "
            "synthetic patients)",
        )
        parser.add_argument("--per-file", type=int, default=50_000, help="patients per file")
        parser.add_argument(
            "--resources-per-patient",
            type=float,
            default=25.0,
            help="mean clinical resources per patient (default 25, about England's average; "
            "0: as many as the Synthea patients, about 100)",
        )
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
        parser.add_argument(
            "--first", type=int, default=0, help="index of the first patient (to add more later)"
        )

    def handle(self, *args, patients, out, synthea, per_file, resources_per_patient, seed,
               jobs, first, **options):  # fmt: skip
        if per_file < 1 or resources_per_patient < 0:
            raise CommandError("--per-file must be 1 or more, --resources-per-patient 0 or more")
        if synthea is None:
            env = os.environ.get("HEALTHSPACE_TEST_DATA")
            synthea = Path(env) if env else DEFAULT_SYNTHEA
        source = synthea if synthea.is_dir() else None
        start = time.perf_counter()
        total_patients = total_resources = 0
        try:
            for path, count, resources in population.generate(
                patients=patients,
                out=out,
                source=source,
                per_file=per_file,
                per_patient=resources_per_patient,
                seed=seed,
                jobs=jobs,
                first=first,
            ):
                total_patients += count
                total_resources += resources
                self.stdout.write(f"{path}: {count} patients, {resources} resources")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.perf_counter() - start
        self.stdout.write(
            f"{total_patients} patients, {total_resources} resources in {elapsed:.1f} s "
            f"({total_patients / elapsed:.0f} patients/s); shapes from "
            f"{source or 'the built-in synthetic patients'}"
        )
