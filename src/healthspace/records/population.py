"""A synthetic population of any size, written straight to NDJSON (``healthspace generate``).

Shapes come from real Synthea patients (or, without them, from ``records.synthetic``):
which resource types a patient has and how many (one Synthea patient's counts per type,
drawn at random and scaled to ``resources_per_patient`` on average), and the resources
themselves (codes, values, structure), drawn from all the Synthea resources of that type,
so codes keep Synthea's frequencies. Each output file starts with its practices
(Organization, ODS code) and a GP each (Practitioner), then every patient's lines: the
Patient (test NHS number, name, birth date, practice), then their items.

Fast because each Synthea resource is turned once into a template (JSON text with slots
for the id, the patient, the GP, the practice and the years), so a generated resource is
a string join, not a dict built and serialised. Deterministic for a seed and the options.

NHS numbers: the ``nhs-number`` package's synthetic region (900 000 0000 - 999 999 9999,
"not to be issued"), patient ``i`` getting the first valid number from 900 000 000 + 10 i
(at most one of two neighbouring 9-digit stems lacks a check digit), so every patient's
number is unique and valid for up to 10 million patients.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nhs_number

from healthspace.core import nhs_numbers
from healthspace.records import synthetic

NS = uuid.UUID("3d0c9a51-7a57-4a0e-8c41-5be0f6a9c2d7")
SOURCE = "urn:healthspace:generated"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SYNTHETIC_START = nhs_number.REGION_SYNTHETIC.ranges[0].start // 10  # 900000000
MAX_PATIENTS = 10_000_000
PATIENTS_PER_PRACTICE = 9_000  # about the average list size of an English GP practice
# Resource types that become SCR items (docs/import.md); others are left out.
ITEM_TYPES = (
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "DiagnosticReport",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
)
SYNTHEA_FOLDERS = ("synthea-smart-generated-sample-data", "synthea-jddamore-ips-server")
LAST_YEAR = 2026

M = "\ue000"  # a slot's mark in a template (private use: never in Synthea's text)
_URN = re.compile(r'"urn:uuid:([0-9a-f-]{36})"')
_YEAR = re.compile(r'"(1[89]\d\d|20\d\d)-(\d\d)')


def nhs_number_for(index: int) -> str:
    if not 0 <= index < MAX_PATIENTS:
        raise ValueError(f"patient index {index} outside 0..{MAX_PATIENTS - 1}")
    for last in (0, 1):
        stem = str(SYNTHETIC_START + 10 * index + last)
        check = nhs_number.calculate_checksum(stem)
        if check is not None and check != 10:
            return f"{stem}{check}"
    raise AssertionError("two neighbouring stems without a check digit")  # cannot happen


# ---------------------------------------------------------------- templates


class Template:
    """A resource as text with slots: ("id",), ("patient",), ("gp",), ("org",), ("year", y)."""

    __slots__ = ("birth", "last", "parts")

    def __init__(self, resource: dict[str, Any], types: dict[str, str], birth: int):
        text = json.dumps(
            {**resource, "id": f"{M}id{M}"}, separators=(",", ":"), ensure_ascii=False
        )
        slots = {"Patient": "patient", "Practitioner": "gp", "Organization": "org"}

        def ref(match: re.Match[str]) -> str:
            rtype = types.get(match.group(1))
            if rtype in slots:
                return f'"{M}{slots[rtype]}{M}"'
            # an encounter, a condition... of the template's own patient: kept by type
            return f'"{rtype or "Basic"}/{match.group(1)}"'

        text = _URN.sub(ref, text)
        text = _YEAR.sub(lambda m: f'"{M}year{m.group(1)}{M}-{m.group(2)}', text)
        parts: list[Any] = []
        for n, piece in enumerate(text.split(M)):
            if n % 2 == 0:
                parts.append(piece)
            elif piece.startswith("year"):
                parts.append(int(piece[4:]))
            else:
                parts.append(piece)  # a slot name, told apart by position
        self.parts = parts
        years = [p for p in parts[1::2] if type(p) is int]
        self.birth = birth  # the template patient's year of birth
        self.last = max(years, default=birth)

    def render(self, values: dict[str, str], birth: int) -> str:
        """The resource for a patient born in ``birth``: years moved by whole leap cycles
        (29 February stays a date) as far as the template patient's age needs, never past
        ``LAST_YEAR``."""
        shift = (birth - self.birth) // 4 * 4
        if self.last + shift > LAST_YEAR:
            shift -= -(-(self.last + shift - LAST_YEAR) // 4) * 4
        out = []
        parts = self.parts
        for n, part in enumerate(parts):
            if n % 2 == 0:
                out.append(part)
            elif type(part) is int:
                out.append(str(min(part + shift, LAST_YEAR)))
            else:
                out.append(values[part])
        return "".join(out)


@dataclass
class Model:
    templates: dict[str, list[Template]]
    profiles: list[dict[str, int]]  # per template patient: count per item type
    mean_items: float


def _bundles(source: Path | None) -> list[list[dict[str, Any]]]:
    files: list[Path] = []
    if source is not None:
        folders = [source / f for f in SYNTHEA_FOLDERS if (source / f).is_dir()] or [source]
        files = sorted(p for folder in folders for p in folder.glob("*.json"))
    bundles = []
    for path in files:
        data = json.loads(path.read_text())
        if data.get("resourceType") == "Bundle":
            bundles.append([e["resource"] for e in data.get("entry") or [] if "resource" in e])
    if not bundles:  # no Synthea data here: the small built-in population's shapes
        bundles = [[e["resource"] for e in b["entry"]] for b in synthetic.population(40, seed=7)]
    return bundles


def build_model(source: Path | None) -> Model:
    templates: dict[str, list[Template]] = defaultdict(list)
    profiles = []
    for resources in _bundles(source):
        types = {r["id"]: r["resourceType"] for r in resources if "id" in r}
        born = next((r.get("birthDate") for r in resources if r["resourceType"] == "Patient"), "")
        birth = int(born[:4]) if born[:4].isdigit() else 1970
        counts: dict[str, int] = defaultdict(int)
        for resource in resources:
            rtype = resource["resourceType"]
            if rtype in ITEM_TYPES:
                templates[rtype].append(Template(resource, types, birth))
                counts[rtype] += 1
        profiles.append(dict(counts))
    mean = sum(sum(p.values()) for p in profiles) / len(profiles)
    return Model(dict(templates), profiles, mean)


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class Shard:
    number: int
    first: int  # first patient index
    count: int
    out: str
    seed: int
    per_patient: float  # mean items per patient; 0: as the Synthea patients


def _practice(index: int, seed: int) -> tuple[str, str, str, str]:
    number = index // PATIENTS_PER_PRACTICE
    ods = f"Y{number:05d}" if number < 100_000 else f"Y{number}"
    return (
        ods,
        str(uuid.uuid5(NS, f"{seed}:org:{ods}")),
        str(uuid.uuid5(NS, f"{seed}:gp:{ods}")),
        (f"{synthetic.FAMILY[number % len(synthetic.FAMILY)]} Medical Practice {number}"),
    )


def _shard_preamble(shard: Shard) -> list[str]:
    lines = []
    seen = set()
    for index in range(shard.first, shard.first + shard.count, PATIENTS_PER_PRACTICE):
        for i in (index, min(shard.first + shard.count - 1, index + PATIENTS_PER_PRACTICE - 1)):
            ods, org_id, gp_id, name = _practice(i, shard.seed)
            if ods in seen:
                continue
            seen.add(ods)
            rng = random.Random(f"{shard.seed}:{ods}")
            lines.append(
                json.dumps(
                    {
                        "resourceType": "Organization",
                        "id": org_id,
                        "identifier": [{"system": ODS_SYSTEM, "value": ods}],
                        "name": name,
                    },
                    separators=(",", ":"),
                )
            )
            lines.append(
                json.dumps(
                    {
                        "resourceType": "Practitioner",
                        "id": gp_id,
                        "name": [
                            {
                                "family": rng.choice(synthetic.FAMILY),
                                "given": [rng.choice(synthetic.GIVEN)],
                                "prefix": ["Dr"],
                            }
                        ],
                    },
                    separators=(",", ":"),
                )
            )
    return lines


def _patient_lines(model: Model, shard: Shard, index: int, rng: random.Random) -> list[str]:
    pid = str(uuid.uuid5(NS, f"{shard.seed}:patient:{index}"))
    _, org_id, gp_id, _ = _practice(index, shard.seed)
    birth = 1930 + rng.randrange(0, 90)
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"source": SOURCE},
        "identifier": [{"system": nhs_numbers.NHS_NUMBER_SYSTEM, "value": nhs_number_for(index)}],
        "name": [
            {
                "use": "official",
                "family": rng.choice(synthetic.FAMILY),
                "given": [rng.choice(synthetic.GIVEN)],
            }
        ],
        "gender": rng.choice(("female", "male")),
        "birthDate": f"{birth}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "generalPractitioner": [{"reference": f"Organization/{org_id}"}],
    }
    lines = [json.dumps(patient, separators=(",", ":"), ensure_ascii=False)]
    values = {"patient": f"Patient/{pid}", "gp": f"Practitioner/{gp_id}", "org": ""}
    values["org"] = f"Organization/{org_id}"
    profile = rng.choice(model.profiles)
    scale = shard.per_patient / model.mean_items if shard.per_patient else 1.0
    n = 0
    for rtype, count in profile.items():
        wanted = int(count * scale + rng.random())
        pool = model.templates[rtype]
        for _ in range(wanted):
            values["id"] = f"{pid}.{n}"
            lines.append(rng.choice(pool).render(values, birth))
            n += 1
    return lines


def write_shard(shard: Shard, model: Model) -> tuple[str, int, int]:
    path = Path(shard.out) / f"population-{shard.number:05d}.ndjson"
    resources = 0
    with path.open("w", encoding="utf-8", buffering=1 << 20) as handle:
        preamble = _shard_preamble(shard)
        handle.write("\n".join(preamble) + "\n")
        resources += len(preamble)
        rng = random.Random(f"{shard.seed}:{shard.number}")
        for index in range(shard.first, shard.first + shard.count):
            lines = _patient_lines(model, shard, index, rng)
            handle.write("\n".join(lines))
            handle.write("\n")
            resources += len(lines)
    return str(path), shard.count, resources


_worker_model: Model | None = None


def _init(source: str | None) -> None:
    global _worker_model
    _worker_model = build_model(Path(source) if source else None)


def _run_shard(shard: Shard) -> tuple[str, int, int]:
    assert _worker_model is not None
    return write_shard(shard, _worker_model)


def generate(
    *,
    patients: int,
    out: Path,
    source: Path | None,
    per_file: int = 50_000,
    per_patient: float = 25.0,
    seed: int = 2026,
    jobs: int = 1,
    first: int = 0,
) -> Iterable[tuple[str, int, int]]:
    """Write ``patients`` patients into ``out`` (NDJSON files of ``per_file`` patients);
    yields (file, patients, resources) as each file is done."""
    if patients < 1 or first < 0 or first + patients > MAX_PATIENTS:
        raise ValueError(f"patients must be 1..{MAX_PATIENTS - first}")
    out.mkdir(parents=True, exist_ok=True)
    shards = [
        Shard(n, first + start, min(per_file, patients - start), str(out), seed, per_patient)
        for n, start in enumerate(range(0, patients, per_file))
    ]
    if jobs <= 1 or len(shards) == 1:
        model = build_model(source)
        for shard in shards:
            yield write_shard(shard, model)
        return
    with get_context("spawn").Pool(
        jobs, initializer=_init, initargs=(str(source) if source else None,)
    ) as pool:
        yield from pool.imap(_run_shard, shards)
