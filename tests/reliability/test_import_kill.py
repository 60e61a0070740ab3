"""An import killed half way (SIGKILL) leaves no partial Bundle; running it again
completes it, with the same result as a clean import.

Twelve Synthea patients (one Bundle each, from the shared FHIR data) are imported with
`healthspace import` twice: once cleanly (the reference), and once into another fresh
service, killed with SIGKILL as soon as at least two Bundles are committed (polled in the
database), before the last. Then:

- every patient stored after the kill has their whole record: the same items, sections,
  versions and opened FHIR resources as in the reference (a Bundle is all-or-nothing);
- `healthspace keystore orphans --delete` removes the data key the open Bundle left
  behind, and only it: every live key left is a stored patient's;
- running the same import again exits 0 and leaves exactly the reference: the same
  patients, items and contents, no extra item versions (it is idempotent);
- `healthspace audit verify` passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from healthspace.records.tests.data import fhir_data_dir
from tests.reliability.harness import PYTHON, REPO_ROOT

BUNDLES = 12
KILL_AFTER = 2  # committed Bundles
KILL_TIMEOUT = 180
LIVE_SCR_KEYS = "SELECT count(*) FROM vault_data_key WHERE wrapped_key IS NOT NULL AND kind = 'scr'"


def _wait_for_the_killed_transaction(db, timeout: float = 30) -> None:
    """PostgreSQL ends a dead client's backend when it next reads its socket; until then
    its open transaction holds the orphan sweep's cutoff back (vault.orphans)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            " AND xact_start IS NOT NULL"
        ).fetchone()[0]
        if not open_:
            return
        time.sleep(0.05)
    raise AssertionError("the killed import's transaction is still open")


def test_an_import_killed_half_way_leaves_whole_bundles_and_completes_when_run_again(
    new_service, capsys
):
    folder = fhir_data_dir() / "synthea-smart-generated-sample-data"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing from the shared data")
    # the smallest Bundles, in a fixed order: the kill lands half way in a bounded time
    files = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_size, p.name))[:BUNDLES]
    args = ["import", "--assign-nhs-numbers", *map(str, files)]

    reference = new_service("import_reference")
    began = time.monotonic()
    reference.command(*args)
    clean_seconds = time.monotonic() - began
    expected = reference.script("scr-digest")
    assert len(expected["patients"]) == BUNDLES and expected["items"] > 0

    service = new_service("import_killed")
    process = subprocess.Popen(
        [PYTHON, "-m", "healthspace.cli", *args],
        cwd=REPO_ROOT,
        env=service.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    committed = 0
    deadline = time.monotonic() + KILL_TIMEOUT
    with (
        service.cluster.connect(service.database) as db,
        service.cluster.connect(service.keystore) as keys,
    ):
        while time.monotonic() < deadline and process.poll() is None:
            # keys first: a key counted before its patient's commit is read is a Bundle
            # still open (its key is committed first); kill inside it, if it can be caught
            made = keys.execute(LIVE_SCR_KEYS).fetchone()[0]
            committed = db.execute("SELECT count(*) FROM records_patient").fetchone()[0]
            if committed >= KILL_AFTER and (made > committed or committed >= BUNDLES - 1):
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, (
        f"the import was not killed half way (exit {process.returncode}, "
        f"{committed} Bundles committed)"
    )

    after_kill = service.script("scr-digest")
    stored = after_kill["patients"]
    assert KILL_AFTER <= len(stored) < BUNDLES, f"{len(stored)} of {BUNDLES} patients stored"
    partial = {
        nhs: (got["items"], expected["patients"][nhs]["items"])
        for nhs, got in stored.items()
        if got != expected["patients"].get(nhs)
    }
    assert not partial, f"partial Bundles after the kill (items stored, expected): {partial}"

    # the open Bundle's data key was committed first and stays behind: an orphan
    with service.cluster.connect(service.database) as db:
        _wait_for_the_killed_transaction(db)
    with service.cluster.connect(service.keystore) as keys:
        left_behind = keys.execute(LIVE_SCR_KEYS).fetchone()[0] - len(stored)
    assert left_behind in (0, 1), left_behind  # one Bundle (one patient) at most was open
    swept = json.loads(
        service.command("keystore", "orphans", "--delete", "--min-age", "0", "--json").stdout
    )
    assert swept["deleted"] == left_behind, swept
    with service.cluster.connect(service.keystore) as keys:
        live = keys.execute(LIVE_SCR_KEYS).fetchone()[0]
    assert live == len(stored), f"{live} live SCR keys for {len(stored)} patients"

    rerun = service.command(*args, check=False)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert service.script("scr-digest") == expected
    verify = service.command("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with capsys.disabled():
        print(
            f"\n[reliability] import of {BUNDLES} Bundles ({expected['items']} SCR items; "
            f"clean import {clean_seconds:.1f}s) killed with {len(stored)} committed, each "
            f"whole; {swept['deleted']} orphaned data key deleted; run again: identical to the clean import; audit verify ok"
        )
