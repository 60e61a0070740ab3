"""Import throughput of the Synthea sample, against fhir.resources validation in the same run.

    .venv/bin/python bench/import_rate.py [--database-url URL] [--repeat 3]

Prints ``NAME value unit ref=value ratio=x.xx``. The reference (ref) is parsing and
validating the same resources with fhir.resources alone (no checks of ours, no mapping,
no encryption, no database), timed in the same process, so the ratio says what the rest
of the import costs on whatever machine runs it. Uses a throw-away SQLite file, or a
fresh PostgreSQL database created next to the one in --database-url.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HEALTHSPACE_TEST_DATA", ROOT.parent / "shared" / "data" / "fhir"))
FOLDERS = ("synthea-smart-generated-sample-data", "synthea-jddamore-ips-server")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(p for f in FOLDERS for p in (DATA / f).glob("*.json"))
    if not files:
        print(f"no Synthea data under {DATA}", file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="hs-bench-")
    os.environ["HEALTHSPACE_DATA_DIR"] = tmp
    created_db = None
    if args.database_url:
        import psycopg

        created_db = f"hs_bench_{uuid.uuid4().hex[:8]}"
        admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created_db}"')
        os.environ["DATABASE_URL"] = args.database_url.rsplit("/", 1)[0] + f"/{created_db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from fhir.resources.R4B import get_fhir_model_class

    from healthspace.records.importer import import_paths
    from healthspace.records.models import Patient, ScrItem
    from healthspace.vault.models import DataKey

    call_command("migrate", verbosity=0)
    resources = [e["resource"] for p in files for e in json.loads(p.read_text())["entry"]]
    n = len(resources)

    def reference() -> float:
        start = time.perf_counter()
        for r in resources:
            get_fhir_model_class(r["resourceType"]).model_validate(r)
        return time.perf_counter() - start

    def first_import() -> float:
        Patient.objects.all().delete()
        DataKey.objects.all().delete()
        start = time.perf_counter()
        report = import_paths(files, assign_nhs_numbers=True)
        elapsed = time.perf_counter() - start
        assert report.ok and report.patients_created == len(files), report.errors
        return elapsed

    def reimport() -> float:
        start = time.perf_counter()
        report = import_paths(files, assign_nhs_numbers=True)
        elapsed = time.perf_counter() - start
        assert report.ok and not report.items_created and not report.items_updated
        return elapsed

    ref, imp, again = [], [], []
    for _ in range(args.repeat):  # alternate, so drift hits both alike
        ref.append(reference())
        imp.append(first_import())
        again.append(reimport())
    ref_rate = n / statistics.median(ref)
    engine = "postgresql" if args.database_url else "sqlite"
    items = ScrItem.objects.count()
    print(
        f"# {n} resources in {len(files)} Synthea bundles -> {items} SCR items; {engine}; "
        f"median of {args.repeat}; machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    for name, times in (("import_first", imp), ("import_again_unchanged", again)):
        rate = n / statistics.median(times)
        print(f"{name} {rate:.0f} resources/s ref={ref_rate:.0f} ratio={rate / ref_rate:.2f}")
    if created_db:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{created_db}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
