"""Bulk import (records.bulk) and the population generator (records.population).

On PostgreSQL the bulk path (pieces, worker processes, COPY) must give the same SCR as
the plain importer, refuse what it refuses and leave nothing of a failed file. On SQLite
``bulk_import_paths`` is the plain importer: the generator's output must import there too.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from healthspace.audit.models import AuditChainHead, AuditEvent
from healthspace.audit.verify import verify_database
from healthspace.core import nhs_numbers
from healthspace.records import bulk, population
from healthspace.records.fhir_checks import FhirInputError, parse_json_bytes, validate_resource
from healthspace.records.importer import PATIENT_PURPOSE, import_paths, item_purpose
from healthspace.records.models import (
    Organisation,
    Patient,
    PatientIdentifier,
    ScrItem,
    ScrItemVersion,
)
from healthspace.records.tests.data import fhir_data_dir
from healthspace.vault import services as vault
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").split(":", 1)[0] not in ("postgres", "postgresql"),
    reason="the bulk path (COPY) is PostgreSQL's; on SQLite bulk_import_paths is the plain "
    "importer, tested with the generator's output below",
)


def _synthea() -> Path | None:
    path = (
        Path(os.environ.get("HEALTHSPACE_TEST_DATA", ""))
        if os.environ.get("HEALTHSPACE_TEST_DATA")
        else Path(__file__).resolve().parents[4].parent / "shared" / "data" / "fhir"
    )
    return path if path.is_dir() else None


def _generate(out: Path, patients: int, **kwargs) -> Path:
    files = list(
        population.generate(
            patients=patients, out=out, source=_synthea(), per_file=patients, **kwargs
        )
    )
    return Path(files[0][0])


def _counts() -> dict[str, int]:
    models = (
        Patient,
        PatientIdentifier,
        ScrItem,
        ScrItemVersion,
        DataKey,
        AuditEvent,
        AuditChainHead,
        Organisation,
    )
    return {m.__name__: m.objects.count() for m in models}


def _scr() -> dict[str, object]:
    """Every patient's SCR, opened: keyed by NHS number, without row ids or times."""
    out = {}
    for patient in Patient.objects.order_by("nhs_number"):
        cipher = vault.cipher_for(patient_id=patient.id)
        items = sorted(
            (
                item.section,
                item.resource_type,
                item.identity,
                item.content_hash,
                item.version,
                str(item.recorded_at),
                json.dumps(
                    cipher.open_json(item.payload, purpose=item_purpose(item.identity)),
                    sort_keys=True,
                ),
            )
            for item in patient.items.all()
        )
        out[patient.nhs_number] = {
            "resource": cipher.open_json(patient.resource, purpose=PATIENT_PURPOSE),
            "content_hash": patient.content_hash,
            "birth_date": str(patient.birth_date),
            "practice": patient.registered_practice and patient.registered_practice.ods_code,
            "identifiers": sorted(patient.identifiers.values_list("lookup", flat=True)),
            "items": items,
            "audit": list(
                AuditEvent.objects.filter(patient_id=patient.id).values_list(
                    "action", "outcome", "detail"
                )
            ),
        }
    return out


def _wipe() -> None:
    Patient.objects.all().delete()
    AuditEvent.objects.all().delete()
    AuditChainHead.objects.all().delete()
    DataKey.objects.all().delete()


# ---------------------------------------------------------------- generator


def test_generated_population_validates_imports_and_has_unique_test_numbers(tmp_path):
    path = _generate(tmp_path / "pop", 12)
    lines = [parse_json_bytes(line, where="t") for line in path.read_bytes().splitlines()]
    for resource in lines:
        validate_resource(resource, where="generated")
    patients = [r for r in lines if r["resourceType"] == "Patient"]
    numbers = [p["identifier"][0]["value"] for p in patients]
    assert len(patients) == 12 and len(set(numbers)) == 12
    assert all(nhs_numbers.is_valid(n) and int(n) >= 9_000_000_000 for n in numbers)
    kinds = Counter(r["resourceType"] for r in lines)
    assert kinds["Organization"] == 1 and kinds["Practitioner"] == 1
    assert sum(kinds.values()) - 14 >= 12 * 5  # ~25 clinical resources each on average

    report = bulk.bulk_import_paths([path], workers=0)  # plain importer on SQLite

    assert report.ok and report.patients_created == 12, report.errors
    assert ScrItem.objects.count() == sum(report.items_created.values()) > 12 * 5
    assert verify_database().ok


def test_generator_is_deterministic_and_numbers_stay_unique_across_indexes(tmp_path):
    one = _generate(tmp_path / "a", 5, seed=9).read_bytes()
    two = _generate(tmp_path / "b", 5, seed=9).read_bytes()
    assert one == two
    stems = {population.nhs_number_for(i) for i in range(0, 200_000, 7)}
    assert len(stems) == len(range(0, 200_000, 7))
    assert all(nhs_numbers.is_valid(n) for n in stems)


def test_generate_command_writes_files(tmp_path, capsys):
    from django.core.management import call_command

    call_command(
        "generate", "--patients", "7", "--out", str(tmp_path), "--per-file", "3", "--jobs", "1"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "population-00000.ndjson",
        "population-00001.ndjson",
        "population-00002.ndjson",
    ]
    assert "7 patients" in capsys.readouterr().out


# ---------------------------------------------------------------- pieces


def test_pieces_cut_before_patients_and_cover_the_file(tmp_path, monkeypatch):
    path = _generate(tmp_path / "pop", 30)
    pieces = list(bulk.ndjson_pieces(path, source=None, assign=False, piece_resources=100))
    assert len(pieces) > 3
    assert pieces[0].start == 0 and pieces[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert pieces[0].with_preamble and not any(p.with_preamble for p in pieces[1:])
    assert all(p.one_patient is False for p in pieces)
    for piece in pieces[1:]:
        entries, context = bulk.read_piece(piece)
        assert entries[0][1]["resourceType"] == "Patient"
        assert {r["resourceType"] for _, r in context} == {"Organization", "Practitioner"}


def test_scanning_a_big_file_keeps_memory_flat(tmp_path):
    """The writer's scan of a file holds no more than a line: over 10 MB of NDJSON (about 20 MB), < 2 MB."""
    path = _generate(tmp_path / "pop", 1200)
    assert path.stat().st_size > 10 * 2**20
    tracemalloc.start()
    try:
        count = sum(1 for _ in bulk.ndjson_pieces(path, source=None, assign=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 10 and peak < 2 * 2**20


# ---------------------------------------------------------------- the bulk path (PostgreSQL)


@postgres_only
@pytest.mark.parametrize("workers", [0, 2])
def test_bulk_gives_the_same_scr_as_the_plain_importer(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(bulk, "PIECE_RESOURCES", 150)
    folder = tmp_path / "in"
    folder.mkdir()
    _generate(folder, 25)
    synthea = _synthea()
    if synthea is not None:
        for name in sorted((synthea / "synthea-jddamore-ips-server").glob("*.json"))[:2]:
            shutil.copy(name, folder / name.name)
    plain = import_paths([folder], assign_nhs_numbers=True)
    assert plain.ok, plain.errors
    expected = _scr()
    _wipe()

    fast = bulk.bulk_import_paths([folder], assign_nhs_numbers=True, workers=workers)

    assert fast.ok, fast.errors
    assert fast.lines() == plain.lines()
    assert _scr() == expected
    assert verify_database().ok
    # idempotent: again changes nothing but the audit trail
    before = _counts()
    again = bulk.bulk_import_paths([folder], assign_nhs_numbers=True, workers=workers)
    assert again.ok and not again.items_created and not again.items_updated
    after = _counts()
    assert {k: v for k, v in after.items() if not k.startswith("Audit")} == {
        k: v for k, v in before.items() if not k.startswith("Audit")
    }
    assert verify_database().ok


@postgres_only
def test_a_failing_file_leaves_nothing_and_other_files_go_on(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "PIECE_RESOURCES", 100)
    bad = _generate(tmp_path / "bad", 20)
    with bad.open("a") as handle:  # the very last line: pieces before it were written
        handle.write(
            json.dumps({"resourceType": "Observation", "id": "no-code", "status": "final"}) + "\n"
        )
    good = _generate(tmp_path / "good", 3, first=100)
    before = _counts()

    report = bulk.bulk_import_paths([bad, good], workers=0)

    assert report.files_failed == 1 and report.files_ok == 1
    assert "Observation/no-code: code: field required" in report.errors[0]
    assert report.patients_created == 3
    after = _counts()
    assert after["Patient"] - before["Patient"] == 3
    assert after["DataKey"] - before["DataKey"] == 3  # the failed file's keys discarded
    assert after["AuditEvent"] - before["AuditEvent"] == 3
    assert verify_database().ok


@postgres_only
def test_a_patient_twice_in_one_file_fails_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "PIECE_RESOURCES", 50)
    path = _generate(tmp_path / "pop", 6)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + lines[2:]) + "\n")  # the patients again
    before = _counts()

    report = bulk.bulk_import_paths([path], workers=0)

    assert report.files_failed == 1
    assert "9000" not in report.errors[0]  # no NHS number in the message
    assert _counts() == before


def _invalid_cases() -> list[Path]:
    from healthspace.records.tests.test_import_invalid_cases import MUST_CATCH, _cases

    folder = fhir_data_dir() / "invalid-fhir-test-cases"
    return [folder / name for name, category in _cases() if category.split(":")[0] in MUST_CATCH]


@postgres_only
def test_invalid_cases_are_refused_by_the_bulk_path_too(tmp_path):
    """Each case as its own file, and as a line of an NDJSON file after a valid patient."""
    cases = _invalid_cases()
    assert len(cases) >= 25
    before = _counts()
    patient = _generate(tmp_path / "pop", 1).read_text()
    as_lines = 0
    for case in cases:
        report = bulk.bulk_import_paths([case], assign_nhs_numbers=True, workers=0)
        assert report.files_failed == 1, case.name
        assert report.errors[0].startswith(case.name)
        try:
            resource = json.loads(case.read_bytes())
        except ValueError:
            continue  # JSON syntax: a line of it is no JSON either
        if not isinstance(resource, dict) or resource.get("resourceType") == "Bundle":
            continue  # Bundles rules apply to Bundle files, checked above
        line = tmp_path / f"{case.stem}.ndjson"
        line.write_text(patient + json.dumps(resource) + "\n")
        report = bulk.bulk_import_paths([line], assign_nhs_numbers=True, workers=0)
        assert report.files_failed == 1, case.name
        as_lines += 1
    assert as_lines >= 10
    assert _counts() == before


@postgres_only
def test_bulk_read_piece_reports_bad_json_with_its_line(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_text('{"resourceType":"Organization","id":"o"}\n{"resourceType": \n')
    piece = next(bulk.ndjson_pieces(path, source=None, assign=False))
    with pytest.raises(FhirInputError, match="line 2"):
        bulk.read_piece(piece)
    assert connection.vendor == "postgresql"


_KILLED_IMPORTER = """
import django, sys, time
django.setup()
from healthspace.records import bulk
pipeline = bulk._Pipeline(2)
pipeline.pool.submit(int).result()  # the pool's workers are running
print(*pipeline.pool._processes, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited (nobody may be there to reap it)


@pytest.mark.django_db(databases=[])
@pytest.mark.skipif(
    not Path("/proc/self/stat").exists(),
    reason="finds the workers by their parent pid in /proc (Linux only); CI runs on Linux",
)
def test_workers_leave_when_the_importer_is_killed():
    """SIGKILL of the importer (nothing of it runs, no shutdown): its workers notice they
    have lost their parent and exit, instead of waiting for work forever."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_IMPORTER], env=env, stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(_running(pid) for pid in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in workers)
    finally:
        proc.kill()
        proc.wait()
        for pid in workers:  # left behind only if the test failed
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
