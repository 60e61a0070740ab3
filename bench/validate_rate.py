"""FHIR validation rate: our validator against fhir.resources, same resources, same run.

    .venv/bin/python bench/validate_rate.py [--repeat 5] [--data ../shared/data/fhir]

Reads every resource of the SMART Synthea bundles of the shared data (in place), then
times, alternating, CPU seconds (``time.process_time``) of one process for:

- ``ref``: fhir.resources (R4B) ``model_validate`` of every resource, nothing else;
- ``validate_resource``: the importer's validator (records.fhir_checks), our walk with
  the library asked only where the walk cannot show it would pass (records.fhir_lexical);
- ``validate_resource_always_library``: the same walk with the library asked for every
  resource (the validator before the fast path).

Prints ``NAME value unit ref=value ratio=x.xx`` lines, ratio = rate / ref rate (higher is
faster), medians of ``--repeat``, and the share of resources the library was skipped for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fhir"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")
    sys.path.insert(0, str(ROOT / "src"))

    from fhir.resources.R4B import get_fhir_model_class

    from healthspace.records import fhir_checks

    folder = args.data / "synthea-smart-generated-sample-data"
    if not folder.is_dir():
        print(f"shared FHIR data not found at {folder}", file=sys.stderr)
        return 2
    resources = []
    for path in sorted(folder.glob("*.json")):
        resources += [e["resource"] for e in json.loads(path.read_bytes())["entry"]]

    def library() -> None:
        for r in resources:
            get_fhir_model_class(r["resourceType"]).model_validate(r)

    def fast() -> None:
        for r in resources:
            fhir_checks._validate(r, "", skip_entry_resources=False)

    def always() -> None:
        for r in resources:
            fhir_checks._validate(r, "", skip_entry_resources=False, always_library=True)

    runs: dict[str, list[float]] = {"ref": [], "fast": [], "always": []}
    library()  # warm the model classes and the walk's tables
    fast()
    for _ in range(args.repeat):
        for name, fn in (("ref", library), ("fast", fast), ("always", always)):
            start = time.process_time()
            fn()
            runs[name].append(len(resources) / (time.process_time() - start))

    skipped = 0
    for r in resources:
        walker = fhir_checks._Walker()
        walker.resource(r, "", None)
        skipped += not walker.problems and not walker.uncertain

    ref = statistics.median(runs["ref"])
    print(
        f"# {len(resources)} resources (50 SMART Synthea bundles); median of {args.repeat}; "
        f"CPU seconds of one process; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}"
    )
    print(f"validate_fhir_resources {ref:.0f} resources/cpu-s")
    for name, label in (
        ("fast", "validate_resource"),
        ("always", "validate_resource_always_library"),
    ):
        rate = statistics.median(runs[name])
        print(f"{label} {rate:.0f} resources/cpu-s ref={ref:.0f} ratio={rate / ref:.2f}")
    print(f"validate_library_skipped {skipped / len(resources):.3f} of resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
