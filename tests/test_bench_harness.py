"""The benchmark harness (bench/run.py) still works: its wrk script rotates requests and
counts every non-2xx answer, its goals compare the right way, and (on PostgreSQL) a tiny
run builds its databases, serves the application with the references, answers every hot
path 2xx under load and prints every figure. Timings are never asserted here: the figures
are the harness's business (docs/performance.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("healthspace_bench_run", ROOT / "bench" / "run.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

WRK = shutil.which("wrk")
CI = os.environ.get("CI") == "true"


def _need_wrk():
    if WRK is None:
        if CI:
            pytest.fail("wrk is missing (apt-get install wrk): the benchmark needs it in CI")
        pytest.skip("wrk is not installed (apt-get install wrk)")


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None, str | None]] = []

    def do_GET(self):
        type(self).seen.append(
            (self.path, self.headers.get("Cookie"), self.headers.get("X-Forwarded-Proto"))
        )
        status = 500 if self.path.startswith("/fail") else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _endpoint(tmp_path: Path, server, lines: list[str]) -> bench.Endpoint:
    requests = tmp_path / "requests.txt"
    requests.write_text("\n".join(lines) + "\n")

    class Fixed:
        base = f"http://127.0.0.1:{server.server_address[1]}"

        def cpu_seconds(self) -> float:
            return 0.0

    return bench.Endpoint("selfcheck", requests, Fixed())  # type: ignore[arg-type]


def test_the_wrk_script_rotates_paths_and_sends_each_lines_headers(tmp_path, recorder):
    _need_wrk()
    lines = [f"/p/{n}\tCookie: s=c{n}\tX-Forwarded-Proto: https" for n in range(3)]
    run = bench.wrk(_endpoint(tmp_path, recorder, lines), 1, 2)
    assert run.requests > 3 and run.non2xx == 0 and run.socket_errors == 0
    assert run.rps > 0 and 0 < run.p50_ms <= run.p99_ms
    seen = set(_Recorder.seen)
    # every line was sent, each with its own cookie, and nothing else
    assert seen == {(f"/p/{n}", f"s=c{n}", "https") for n in range(3)}


def test_the_wrk_script_counts_every_response_that_is_not_2xx(tmp_path, recorder):
    _need_wrk()
    run = bench.wrk(_endpoint(tmp_path, recorder, ["/ok", "/fail"]), 1, 2)
    assert run.requests >= 2
    failed = sum(1 for path, *_ in _Recorder.seen if path == "/fail")
    # every other request fails; the server may have seen a few more than wrk counted
    # (answers still in flight when the time was up)
    assert 0 < run.non2xx <= failed
    assert run.non2xx >= run.requests // 2 - 4


def test_goals_compare_the_right_way():
    assert bench.Figure("x", 70, "req/s", 100, 0.70, ">=0.70").met
    assert not bench.Figure("x", 69, "req/s", 100, 0.69, ">=0.70").met
    assert bench.Figure("p99", 20, "ms", 10, 2.0, "<=2.00").met
    assert not bench.Figure("p99", 21, "ms", 10, 2.1, "<=2.00").met
    assert "MISSED" in bench.Figure("p99", 21, "ms", 10, 2.1, "<=2.00").line()
    line = bench.Figure("a_b", 1234.4, "req/s", 2000, 0.617, ">=0.70", "ref=R4").line()
    assert line.startswith("a_b 1234 req/s ref=2000 ratio=0.62 goal=>=0.70")


def _postgres_base() -> tuple[str, str] | None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    base, name = url.rsplit("/", 1)
    return base, name.split("?")[0]


@pytest.mark.skipif(_postgres_base() is None, reason="the harness runs on PostgreSQL only")
def test_a_tiny_run_serves_every_hot_path_2xx_and_prints_every_figure(tmp_path):
    _need_wrk()
    base, name = _postgres_base()  # type: ignore[misc]
    db = f"{name}_bench_selftest"
    out = tmp_path / "bench.json"
    argv = [
        sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--measured", "4",
        "--patients", "40", "--duration", "1", "--rounds", "1", "--database-url", base,
        "--db", db, "--port", str(18390 + os.getpid() % 8), "--json", str(out),
        "--workers", "1", "--threads", "2",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        names = {line.split()[0] for line in done.stdout.splitlines() if "ratio=" in line}
        assert names == {
            "scr_html_throughput", "scr_html_p99", "fhir_summary_throughput",
            "fhir_summary_p99", "fhir_read_throughput", "who_looked_throughput",
            "export_resources", "scale_scr_p50",
        }  # fmt: skip
        assert "Index Scan" in done.stdout  # the who-looked plan is shown
        assert "# ceiling: R4 through the middleware" in done.stdout
        report = json.loads(out.read_text())
        for endpoint, runs in report["runs"].items():
            assert runs and all(r["non2xx"] == 0 and r["requests"] > 0 for r in runs), endpoint
        assert report["runs"]["R4mw"] and report["checks"]["R4mw"]["entries"] == 25
        assert all(r["db_cpu_ms"] is not None for r in report["runs"]["scr_html"])
        assert report["checks"]["scr_html"]["content_type"].startswith("text/html")
        assert report["checks"]["export"]["entries"] > 4
        assert report["data"]["patients"] == 40
        if shutil.which("valgrind"):  # on every machine of this project's kind
            counted = subprocess.run(
                [*argv, "--instructions", "fhir_read", "--profile-requests", "3"],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert counted.returncode == 0, counted.stdout[-3000:] + counted.stderr[-5000:]
            line = counted.stdout.strip().splitlines()[-1]
            assert line.startswith("fhir_read_instructions ") and " M/request " in line, line
            assert float(line.split()[1]) > 1  # a request is millions of instructions
    finally:
        for suffix in ("", "_keystore", "_small", "_small_keystore"):
            bench.drop_db(base, f"{db}{suffix}")
