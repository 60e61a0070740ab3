"""HealthSpace's benchmark harness: every hot path beside its reference, in the same run.

    .venv/bin/python bench/run.py [--quick] [--patients N] [--json FILE] [--report-only]

1. Builds (or reuses, keyed by a fingerprint of the migrations, this harness's data
   version and the sizes) two PostgreSQL databases beside ``--database-url``:
   ``<db>_small`` with the measured patients only, imported through the real importer
   (synthetic patients of ``records.synthetic`` with ~25 SCR items each), and ``<db>``, a
   copy of it (``CREATE DATABASE ... TEMPLATE``) grown to ``--patients`` patients with
   filler rows written by SQL (docs/performance.md says how they are made).
2. Serves the real application as production does (``healthspace serve``: granian WSGI,
   bounded threads, persistent connections, ``HEALTHSPACE_ENV=production``, DEBUG off)
   with the reference views of ``bench/refapp`` in the same process, and checks each
   request once (any non-2xx is a functional failure: exit 2).
3. Drives each endpoint with wrk (a separate process, loopback, 8 connections, time
   bounded; ``bench/wrk/rotate.lua`` rotates patients, cookies and tokens), in rounds of
   alternating order (A B ... then ... B A), and prints one line per figure:
   ``NAME value unit ref=value ratio=x.xx goal=...``.

Exit status: 2 on a functional error (a non-2xx response, a server that does not start);
1 when a ratio misses its goal, unless ``--quick`` or ``--report-only`` (noise on a shared
machine must never fail CI); 0 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
STATE = ROOT / "build" / "bench"
LUA = BENCH / "wrk" / "rotate.lua"
# Bump when what the build writes changes: a reused database must be the same data.
DATA_VERSION = 3
SEED = 2026
PRACTICE = "Y00001"  # every measured patient is registered here; so is the clinician
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 HealthSpaceBench"
REF_ITEMS = 25  # R4 returns this many resources


@dataclass
class Profile:
    measured: int  # patients imported through the importer and rotated over
    patients: int  # population of the large database
    duration: float  # seconds of one wrk run
    rounds: int
    warmup: float
    connections: int = 8
    # population of the scale figure's comparison database (issue 8: the SCR view with
    # 1,000,000 patients against 10,000); the measured patients only when not above them
    scale_base: int = 0


QUICK = Profile(measured=60, patients=10_000, duration=3.0, rounds=2, warmup=1.0)
FULL = Profile(
    measured=300, patients=1_000_000, duration=10.0, rounds=3, warmup=3.0, scale_base=10_000
)


# --- environment shared by every stage ------------------------------------------------


def secrets_for(db: str) -> dict[str, str]:
    """Production secrets of the bench databases, made once and kept beside them (a
    reused database must be opened with the key that sealed it). Bench data only."""
    path = STATE / f"{db}.secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    STATE.mkdir(parents=True, exist_ok=True)
    from healthspace.config.env import new_secrets

    made = new_secrets()
    path.write_text(json.dumps(made))
    path.chmod(0o600)
    return made


def stage_env(base_url: str, db: str, secrets_db: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEALTHSPACE_", "SECURE_", "DB_", "DJANGO_"))
        and k not in ("DATABASE_URL", "SECRET_KEY", "ALLOWED_HOSTS")
    }
    env |= secrets_for(secrets_db)
    env |= {
        "HEALTHSPACE_ENV": "production",
        # TLS ends at a proxy in production; wrk sends X-Forwarded-Proto: https as it would
        "BEHIND_TLS_PROXY": "true",
        "HEALTHSPACE_DATA_DIR": str(STATE / "data"),
        "DATABASE_URL": f"{base_url}/{db}",
        "DJANGO_SETTINGS_MODULE": "refapp.settings",
        "PYTHONPATH": os.pathsep.join([str(BENCH), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        # the per-client API rate stays on (its cost is measured) but above the load
        "HEALTHSPACE_FHIR_RATE_LIMIT": "1000000000",
    }
    return env


# --- stages run in child processes (Django set up there, never here) -------------------


def child(stage: str, env: dict[str, str], *extra: str, timeout: float = 3600) -> dict:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(BENCH / "stages.py"), stage, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise HarnessError(f"stage {stage} failed (exit {done.returncode})")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("STAGE "):
            return json.loads(line[6:])
    raise HarnessError(f"stage {stage} printed no result")


class HarnessError(RuntimeError):
    """Something about the harness itself failed (exit 2), as opposed to a slow figure."""


def admin_connect(base_url: str):
    import psycopg

    return psycopg.connect(f"{base_url}/postgres", autocommit=True)


def db_exists(base_url: str, name: str) -> bool:
    with admin_connect(base_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def drop_db(base_url: str, name: str) -> None:
    with admin_connect(base_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fingerprint(*parts: object) -> str:
    migrations = sorted(
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("src/healthspace/*/migrations/*.py"), *BENCH.glob("refapp/**/*.py")]
    )
    digest = hashlib.sha256(json.dumps([DATA_VERSION, migrations, *map(str, parts)]).encode())
    return digest.hexdigest()[:16]


def ensure_databases(base_url: str, db: str, profile: Profile, log) -> dict[str, Any]:
    """The small database (measured patients) and the large one (grown with filler)."""
    small, large = f"{db}_small", db
    small_fp = fingerprint("small", profile.measured, SEED)
    large_fp = fingerprint("large", small_fp, profile.patients)
    marks_path = STATE / f"{db}.fingerprints.json"
    marks = json.loads(marks_path.read_text()) if marks_path.exists() else {}
    built: dict[str, Any] = {}

    def fresh(name: str, fp: str) -> bool:
        return (
            marks.get(name) == fp
            and db_exists(base_url, name)
            and db_exists(base_url, f"{name}_keystore")
        )

    if not fresh(small, small_fp):
        log(f"# building {small}: {profile.measured} patients through the importer")
        for name in (small, f"{small}_keystore", large, f"{large}_keystore"):
            drop_db(base_url, name)
        marks.pop(large, None)
        with admin_connect(base_url) as conn:
            conn.execute(f'CREATE DATABASE "{small}"')
            conn.execute(f'CREATE DATABASE "{small}_keystore"')
        started = time.perf_counter()
        built["small"] = child(
            "build", stage_env(base_url, small, db), str(profile.measured), str(SEED)
        )
        built["small"]["seconds"] = round(time.perf_counter() - started, 1)
        marks[small] = small_fp
        STATE.mkdir(parents=True, exist_ok=True)
        marks_path.write_text(json.dumps(marks))

    def grown(name: str, fp: str, patients: int, key: str) -> None:
        """``name``: a copy of the small database grown to ``patients`` by SQL filler."""
        if fresh(name, fp):
            return
        log(f"# building {name}: a copy of {small} grown to {patients} patients")
        for suffix in ("", "_keystore"):
            drop_db(base_url, f"{name}{suffix}")
        with admin_connect(base_url) as conn:
            for suffix in ("", "_keystore"):
                conn.execute(f'CREATE DATABASE "{name}{suffix}" TEMPLATE "{small}{suffix}"')
        started = time.perf_counter()
        built[key] = child("grow", stage_env(base_url, name, db), str(patients))
        built[key]["seconds"] = round(time.perf_counter() - started, 1)
        marks[name] = fp
        marks_path.write_text(json.dumps(marks))

    grown(large, large_fp, profile.patients, "large")
    compare = small
    if measured_below(profile.scale_base, profile):
        compare = f"{db}_base"
        grown(
            compare, fingerprint("base", small_fp, profile.scale_base), profile.scale_base, "base"
        )
    return {"small": compare, "large": large, "built": built}


def scale_base_of(profile: Profile) -> int:
    return profile.scale_base if measured_below(profile.scale_base, profile) else profile.measured


def measured_below(scale_base: int, profile: Profile) -> bool:
    """A comparison database of its own only between the measured patients and the large
    population."""
    return profile.measured < scale_base < profile.patients


# --- the server -----------------------------------------------------------------------


class Server:
    def __init__(self, env: dict[str, str], port: int, workers: int, threads: int) -> None:
        self.port = port
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="hs-bench-server-", suffix=".log"
        )
        argv = [
            sys.executable, "-m", "healthspace.cli", "serve", "--port", str(port),
            "--workers", str(workers), "--threads", str(threads),
            "--wsgi", "refapp.wsgi:application",
        ]  # fmt: skip
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"server exited ({self.proc.returncode}): {self.tail()}")
            try:
                probe = urllib.request.Request(  # noqa: S310 - http on loopback
                    f"{self.base}/fhir/R4/metadata", headers={"X-Forwarded-Proto": "https"}
                )
                with urllib.request.urlopen(probe, timeout=2) as r:  # noqa: S310 - http on loopback
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                raise HarnessError(f"server answered {exc.code}: {self.tail()}") from exc
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise HarnessError(f"server did not answer in {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def cpu_seconds(self) -> float:
        """User+system CPU of the server and its workers (Linux /proc), for CPU/request."""
        return sum(_cpu_of(pid)[1] for pid in [self.proc.pid, *_children(self.proc.pid)])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def postgres_cpu_seconds() -> float:
    """User+system CPU of every PostgreSQL process on this machine (its backends, WAL
    writer, checkpointer), for the database's CPU/request beside the application's. Only
    meaningful when the bench database is on this machine (the default, loopback)."""
    found = (_cpu_of(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return sum(seconds for comm, seconds in found if comm == "postgres")


def _cpu_of(pid: int | str) -> tuple[str, float]:
    """A process's name and user+system CPU seconds (/proc/<pid>/stat); ("", 0) once gone."""
    try:
        _pid, _, rest = Path(f"/proc/{pid}/stat").read_text().partition(" (")
    except OSError:
        return "", 0.0
    comm, _, fields = rest.rpartition(") ")
    parts = fields.split()
    return comm, (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(p) for p in found]
    for p in list(out):
        out += _children(p)
    return out


# --- load -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    cpu_ms: float | None = None
    db_cpu_ms: float | None = None


@dataclass
class Endpoint:
    name: str
    requests_file: Path
    server: Server
    resources_per_request: float = 1.0
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def wrk(endpoint: Endpoint, seconds: float, connections: int) -> Run:
    wrk_bin = shutil.which("wrk") or "/usr/bin/wrk"
    cpu_before = endpoint.server.cpu_seconds()
    db_before = postgres_cpu_seconds()
    done = subprocess.run(  # noqa: S603 - fixed argv
        [
            wrk_bin,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            endpoint.server.base,
        ],
        env={**os.environ, "BENCH_REQUESTS": str(endpoint.requests_file)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    cpu = endpoint.server.cpu_seconds() - cpu_before
    db_cpu = postgres_cpu_seconds() - db_before
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise HarnessError(f"wrk failed on {endpoint.name}: {done.stdout[-800:]}{done.stderr}")
    data = json.loads(line[6:])
    seconds_run = data["duration_us"] / 1e6
    requests = data["requests"]
    return Run(
        name=endpoint.name,
        rps=requests / seconds_run,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=requests,
        non2xx=data["non2xx"],
        socket_errors=data["connect_errors"] + data["write_errors"],
        cpu_ms=(cpu * 1000 / requests) if requests else None,
        db_cpu_ms=(db_cpu * 1000 / requests) if requests else None,
    )


def check_once(endpoint: Endpoint) -> dict[str, Any]:
    """The functional self-check: the first request of each file answers 2xx with the
    body it should; a Bundle's entry count is the resources the request carries."""
    line = endpoint.requests_file.read_text().splitlines()[0].split("\t")
    headers = dict(h.split(": ", 1) for h in line[1:])
    request = urllib.request.Request(endpoint.server.base + line[0], headers=headers)  # noqa: S310 - http on loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http on loopback
            status, body = response.status, response.read()
            content_type = response.headers.get("Content-Type", "")
            location = response.headers.get("Location")
    except urllib.error.HTTPError as exc:
        raise HarnessError(
            f"{endpoint.name}: {line[0]} answered {exc.code}; server log: "
            f"{endpoint.server.tail()[-2500:]}"
        ) from exc
    if not 200 <= status < 300 or location:
        raise HarnessError(f"{endpoint.name}: {line[0]} answered {status} -> {location}")
    out: dict[str, Any] = {"status": status, "bytes": len(body), "content_type": content_type}
    if "json" in content_type:
        doc = json.loads(body)
        if doc.get("resourceType") == "Bundle":
            out["entries"] = len(doc.get("entry", []))
    elif "<html" not in body[:2000].decode(errors="replace").lower():
        raise HarnessError(f"{endpoint.name}: not an HTML page")
    return out


# --- figures --------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    ref: float
    ratio: float
    goal: str  # ">=0.70" or "<=2.00"
    note: str = ""

    @property
    def met(self) -> bool:
        bound = float(self.goal[2:])
        return self.ratio >= bound if self.goal.startswith(">=") else self.ratio <= bound

    def line(self) -> str:
        fmt = (lambda v: f"{v:.2f}") if self.unit == "ms" else (lambda v: f"{v:.0f}")
        mark = "" if self.met else "  MISSED"
        note = f"  # {self.note}" if self.note else ""
        return (
            f"{self.name} {fmt(self.value)} {self.unit} ref={fmt(self.ref)} "
            f"ratio={self.ratio:.2f} goal={self.goal}{mark}{note}"
        )


def middleware_ceiling(eps: dict[str, Endpoint]) -> str | None:
    """Not a goal: R4's own view served through the application's middleware with a
    clinician's session (R4mw), as a share of bare R4. No page behind a session (the SCR
    page) can do better than this share, whatever its own work costs."""
    if not {"R4", "R4mw", "scr_html"} <= eps.keys():
        return None
    mw, r4, scr = (eps[k].median("rps") for k in ("R4mw", "R4", "scr_html"))
    return (
        f"# ceiling: R4 through the middleware with a clinician's session {mw:.0f} req/s "
        f"= {mw / r4:.2f} x R4; the SCR page is {scr / mw:.2f} x that"
    )


def figures(eps: dict[str, Endpoint], profile: Profile) -> list[Figure]:
    r2, r3, r4 = eps["R2"], eps["R3"], eps["R4"]
    out = []
    for name in ("scr_html", "fhir_summary"):
        ep = eps[name]
        rps, ref = ep.median("rps"), r4.median("rps")
        out.append(Figure(f"{name}_throughput", rps, "req/s", ref, rps / ref, ">=0.70", "ref=R4"))
        p99, ref99 = ep.median("p99_ms"), r4.median("p99_ms")
        out.append(Figure(f"{name}_p99", p99, "ms", ref99, p99 / ref99, "<=2.00", "ref=R4 p99"))
    ep = eps["fhir_read"]
    out.append(
        Figure(
            "fhir_read_throughput",
            ep.median("rps"),
            "req/s",
            r3.median("rps"),
            ep.median("rps") / r3.median("rps"),
            ">=0.80",
            "ref=R3",
        )
    )
    ep = eps["who_looked"]
    out.append(
        Figure(
            "who_looked_throughput",
            ep.median("rps"),
            "req/s",
            r2.median("rps"),
            ep.median("rps") / r2.median("rps"),
            ">=0.80",
            "ref=R2",
        )
    )
    ep = eps["export"]
    res = ep.median("rps") * ep.resources_per_request
    ref_res = r4.median("rps") * REF_ITEMS
    out.append(
        Figure(
            "export_resources",
            res,
            "resources/s",
            ref_res,
            res / ref_res,
            ">=1.00",
            f"ref=R4 x {REF_ITEMS} resources; {ep.resources_per_request:.0f} resources/export",
        )
    )
    if "scr_html_small" in eps:
        large, small = eps["scr_html"].median("p50_ms"), eps["scr_html_small"].median("p50_ms")
        out.append(
            Figure(
                "scale_scr_p50",
                large,
                "ms",
                small,
                large / small,
                "<=1.30",
                f"{profile.patients} patients vs {scale_base_of(profile)} (ref)",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under 3 minutes; report only")
    parser.add_argument("--patients", type=int, help="population of the large database")
    parser.add_argument("--measured", type=int, help="patients imported and rotated over")
    parser.add_argument("--duration", type=float, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, help="alternating rounds per endpoint")
    parser.add_argument("--json", type=Path, help="write every run and figure here")
    parser.add_argument("--report-only", action="store_true", help="never exit 1 on a ratio")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    parser.add_argument("--db", default="hs_bench_run", help="name of the large database")
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--only", help="comma-separated endpoints (with their references)")
    parser.add_argument("--no-scale", action="store_true", help="skip the small-database server")
    parser.add_argument(
        "--no-prepared",
        action="store_true",
        help="serve with DB_PREPARED_STATEMENTS=false (the hot statements planned per request)",
    )
    parser.add_argument(
        "--scale-base",
        type=int,
        help="patients in the scale figure's comparison database (full run 10,000; "
        "quick: the measured patients only)",
    )
    parser.add_argument(
        "--profile",
        metavar="ENDPOINT",
        help="instead of load: cProfile N requests of one endpoint in-process, with its queries",
    )
    parser.add_argument("--profile-requests", type=int, default=100)
    parser.add_argument(
        "--instructions",
        metavar="ENDPOINT",
        help="instead of load: the CPU instructions one request of an endpoint costs in the "
        "application, counted by valgrind's callgrind (the same on a busy machine; about a "
        "minute; the database's work is not counted)",
    )
    parser.add_argument("--profile-sort", default="tottime", help="pstats sort key")
    args = parser.parse_args(argv)
    base_profile = QUICK if args.quick else FULL
    profile = Profile(
        measured=args.measured or base_profile.measured,
        patients=args.patients or base_profile.patients,
        duration=args.duration or base_profile.duration,
        rounds=args.rounds or base_profile.rounds,
        warmup=base_profile.warmup,
        scale_base=args.scale_base if args.scale_base is not None else base_profile.scale_base,
    )
    profile.patients = max(profile.patients, profile.measured)
    base_url = args.database_url.rstrip("/")
    started = time.perf_counter()

    def log(text: str) -> None:
        print(text, flush=True)

    servers: list[Server] = []
    # `timeout` (CI) sends SIGTERM: stop the servers on the way out, never leave them behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    try:
        dbs = ensure_databases(base_url, args.db, profile, log)
        run_dir = Path(tempfile.mkdtemp(prefix="hs-bench-"))
        main_env = stage_env(base_url, dbs["large"], args.db)
        small_env = stage_env(base_url, dbs["small"], args.db)
        for served in (main_env, small_env):
            served["DB_PREPARED_STATEMENTS"] = "false" if args.no_prepared else "true"
        prepared = child("prepare", main_env, str(run_dir / "large"))
        if args.profile:
            return _profile(main_env, prepared, args)
        if args.instructions:
            return _instructions(main_env, prepared, args)
        prepared_small = (
            None
            if args.no_scale
            else child("prepare", small_env, str(run_dir / "small"), "no-static")
        )
        server = Server(main_env, args.port, args.workers, args.threads)
        servers.append(server)
        small_server = None
        if prepared_small:
            small_server = Server(small_env, args.port + 1, args.workers, args.threads)
            servers.append(small_server)
        for s in servers:
            s.wait_ready()
        eps: dict[str, Endpoint] = {
            name: Endpoint(name, Path(path), server) for name, path in prepared["files"].items()
        }
        if small_server and prepared_small:
            eps["scr_html_small"] = Endpoint(
                "scr_html_small", Path(prepared_small["files"]["scr_html"]), small_server
            )
        if args.only:
            wanted = set(args.only.split(",")) | {"R2", "R3", "R4", "R4mw"}
            eps = {k: v for k, v in eps.items() if k in wanted}
        checks = {}
        for ep in eps.values():
            checks[ep.name] = check_once(ep)
            if "entries" in checks[ep.name] and ep.name == "export":
                ep.resources_per_request = checks[ep.name]["entries"]
        log(
            f"# machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
            f"{_memory_gb():.0f} GB; Python {platform.python_version()}; "
            f"{prepared['postgres']}; granian {args.workers} workers x {args.threads} threads; "
            f"wrk -t1 -c{profile.connections}, {profile.duration:g} s x {profile.rounds} rounds "
            "(alternating order), medians"
        )
        log(
            f"# data: {prepared['patients']} patients ({profile.measured} measured, "
            f"{prepared['items_per_patient']:.1f} SCR items each), {prepared['items']} items, "
            f"{prepared['audit_events']} audit events; comparison database {scale_base_of(profile)} patients"
        )
        for ep in eps.values():  # warm caches and connections
            wrk(ep, profile.warmup, profile.connections)
        order = list(eps.values())
        for round_no in range(profile.rounds):
            for ep in order if round_no % 2 == 0 else list(reversed(order)):
                run = wrk(ep, profile.duration, profile.connections)
                ep.runs.append(run)
                if run.non2xx or run.socket_errors:
                    raise HarnessError(
                        f"{ep.name}: {run.non2xx} non-2xx responses, {run.socket_errors} "
                        f"socket errors under load; server log: {server.tail()[-1500:]}"
                    )
        for ep in eps.values():
            cpu = [r.cpu_ms for r in ep.runs if r.cpu_ms is not None]
            db_cpu = [r.db_cpu_ms for r in ep.runs if r.db_cpu_ms is not None]
            log(
                f"# {ep.name:<15} {ep.median('rps'):8.0f} req/s  p50 {ep.median('p50_ms'):6.2f} ms"
                f"  p99 {ep.median('p99_ms'):6.2f} ms  app CPU {statistics.median(cpu):.2f} ms/req"
                f"  db CPU {statistics.median(db_cpu):.2f} ms/req"
                f"  runs {', '.join(f'{r.rps:.0f}' for r in ep.runs)}"
            )
        for line in prepared.get("explain", []):
            log(f"# EXPLAIN who_looked: {line}")
        figs = figures(eps, profile) if not args.only else []
        for fig in figs:
            log(fig.line())
        ceiling = middleware_ceiling(eps)
        if ceiling:
            log(ceiling)
        missed = [f.name for f in figs if not f.met]
        elapsed = time.perf_counter() - started
        log(f"# {len(figs) - len(missed)}/{len(figs)} goals met; {elapsed:.0f} s")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "profile": asdict(profile),
                        "machine": {
                            "cpus": os.cpu_count(),
                            "python": platform.python_version(),
                            "postgres": prepared["postgres"],
                            "memory_gb": round(_memory_gb(), 1),
                        },
                        "data": {k: v for k, v in prepared.items() if k != "files"},
                        "built": dbs["built"],
                        "checks": checks,
                        "runs": {k: [asdict(r) for r in v.runs] for k, v in eps.items()},
                        "figures": [{**asdict(f), "met": f.met} for f in figs],
                        "seconds": round(elapsed, 1),
                    },
                    indent=2,
                )
            )
        if missed and not (args.quick or args.report_only):
            return 1
        return 0
    except HarnessError as exc:
        print(f"bench: FUNCTIONAL ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        for s in servers:
            s.stop()


def _profile(env: dict[str, str], prepared: dict, args) -> int:
    """Print the profile of one endpoint (stages.py profile) and its query counts."""
    if args.profile not in prepared["files"]:
        raise HarnessError(f"no endpoint {args.profile!r}; one of {', '.join(prepared['files'])}")
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            str(BENCH / "stages.py"),
            "profile",
            prepared["files"][args.profile],
            str(args.profile_requests),
            args.profile_sort,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    print(done.stdout)
    if done.returncode != 0:
        raise HarnessError(f"profile failed: {done.stderr[-3000:]}")
    return 0


def _callgrind(env: dict[str, str], requests_file: str, count: int) -> int:
    """Instructions of the ``requests`` stage (warm-up and ``count`` requests) under
    callgrind: counted, not timed, so the same whatever else the machine does."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise HarnessError("--instructions needs valgrind (Debian: apt-get install valgrind)")
    done = subprocess.run(  # noqa: S603 - valgrind on our own interpreter and script
        [
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(BENCH / "stages.py"),
            "requests",
            requests_file,
            str(count),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise HarnessError(f"callgrind failed: {done.stderr[-3000:]}")
    for line in done.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    raise HarnessError("callgrind printed no instruction count")


def _instructions(env: dict[str, str], prepared: dict, args) -> int:
    """Instructions a request of one endpoint costs: two runs, ``BASE`` and ``BASE + N``
    requests, and the difference over N (start-up and warm-up cancel out)."""
    if args.instructions not in prepared["files"]:
        raise HarnessError(
            f"no endpoint {args.instructions!r}; one of {', '.join(prepared['files'])}"
        )
    base, extra = 5, args.profile_requests
    path = prepared["files"][args.instructions]
    few = _callgrind(env, path, base)
    many = _callgrind(env, path, base + extra)
    per = (many - few) / extra
    print(
        f"{args.instructions}_instructions {per / 1e6:.2f} M/request "
        f"({extra} requests; callgrind, application only)"
    )
    return 0


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
