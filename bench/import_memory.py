"""Resident memory of ``healthspace import --bulk`` over one big NDJSON file, sampled.

    .venv/bin/python bench/import_memory.py FILE.ndjson [--workers 2] [--max-minutes 60]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Imports FILE into a fresh PostgreSQL database (created beside --database-url, dropped at
the end) and every 10 s prints the resident memory (VmRSS) of the importer, of each
worker and their sum, with how far the importer's scan of the file has got. A file of
2 GB from ``healthspace generate --patients 100000 --per-file 100000`` is the case of
docs/import.md. Stops the import after --max-minutes (the file's transaction then rolls
back, as a failed file's does). Prints the peak (sum of the processes' RSS, which counts the pages the forked workers
share with the importer more than once, and PSS, which does not) and exits 1 if the RSS
sum reached 400 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PY = sys.executable
LIMIT_MB = 400


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pss_mb(pid: int) -> float:
    """Proportional set size: pages shared with the forked workers counted once in all."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _position(pid: int, path: Path) -> int | None:
    """Offset of the importer's open handle on the file (its scan, a few pieces ahead)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.path.realpath(f"/proc/{pid}/fd/{fd}") == str(path.resolve()):
                for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                    if line.startswith("pos:"):
                        return int(line.split()[1])
    except OSError:
        pass
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=60)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    import psycopg

    # stopped from outside: still drop the databases (finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))

    base = args.database_url.rsplit("/", 1)[0]
    admin = base + "/postgres"
    name = f"hs_bulkimport_mem_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{name}",
        "HEALTHSPACE_DATA_DIR": tempfile.mkdtemp(prefix="hs-mem-"),
    }
    size = args.file.stat().st_size
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'CREATE DATABASE "{name}_keystore"')
    peak = peak_pss = 0.0
    try:
        for db in ("default", "keystore"):
            subprocess.run(  # noqa: S603 - our own fixed argv
                [PY, "-m", "healthspace.cli", "migrate", "--database", db, "-v", "0"],
                env=env,
                check=True,
            )
        start = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 - our own fixed argv
            [PY, "-m", "healthspace.cli", "import", "--bulk", "--workers", str(args.workers),
             str(args.file)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        print(f"# {args.file} ({size / 2**20:.0f} MiB), workers={args.workers}")
        while proc.poll() is None:
            time.sleep(10)
            main_mb = _rss_mb(proc.pid)
            workers = [_rss_mb(c) for c in _children(proc.pid)]
            total = main_mb + sum(workers)
            pss = _pss_mb(proc.pid) + sum(_pss_mb(c) for c in _children(proc.pid))
            peak = max(peak, total)
            peak_pss = max(peak_pss, pss)
            pos = _position(proc.pid, args.file)
            done = f"{100 * pos / size:5.1f}% scanned" if pos is not None else "      -"
            minutes = (time.monotonic() - start) / 60
            print(
                f"t={minutes:5.1f} min {done} importer={main_mb:.0f} MiB "
                f"workers={'+'.join(f'{w:.0f}' for w in workers) or '-'} MiB "
                f"total={total:.0f} MiB (PSS {pss:.0f})",
                flush=True,
            )
            if minutes > args.max_minutes:
                proc.terminate()
                print("# stopped at --max-minutes: the file's transaction rolls back")
                break
        out = proc.communicate()[0]
        print(out[-2000:])
        elapsed = time.monotonic() - start
        print(
            f"import_peak_rss_total {peak:.0f} MiB goal=<{LIMIT_MB} (sum of the processes' "
            f"RSS; PSS {peak_pss:.0f} MiB; {elapsed:.0f} s)"
        )
    finally:
        if "proc" in locals() and proc.poll() is None:
            proc.terminate()
            proc.wait()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_keystore" WITH (FORCE)')
    return 1 if peak >= LIMIT_MB else 0


if __name__ == "__main__":
    sys.exit(main())
