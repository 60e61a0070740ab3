"""PostgreSQL restarted under load: clear 503s, nothing half-written, recovery by itself.

Four patients in two tabs each (8 client threads) save readings and read their record and
organiser, and a GP system reads their Patient resources through the FHIR API, without
pause. Meanwhile PostgreSQL (the private cluster) is restarted twice: `pg_ctl restart -m
fast` (a planned restart: sessions are ended) and a crash, `pg_ctl stop -m immediate`,
down for 2 seconds, then started (crash recovery from the WAL). The application is never
restarted. Then:

- every answer was a success, or 503 with Retry-After: an HTML page under the pages, an
  OperationOutcome under /fhir/. No 500, no traceback, no dropped connection, no time-out;
- 503s were seen (the outage did reach the requests in flight, so the test can fail);
- the service recovers by itself: every request started from RECOVERY_BOUND seconds after
  PostgreSQL is back succeeds (the measured recovery time is printed);
- every acknowledged reading is stored and whole, nothing is half-written (as in
  test_kill_app), `healthspace audit verify` passes;
- the server's log has one line per failed request and no patient data in it.
"""

from __future__ import annotations

import json
import threading
import time

from tests.reliability.harness import AppServer, Browser, backend_token, system_key
from tests.reliability.load import Outcome, Patient, Recorder, read, write

PATIENTS = 4
THREADS = 8
# the service must be back to normal this long after PostgreSQL is (a bound, not a claim)
RECOVERY_BOUND = 5.0
CYCLE = ("reading", "record", "fhir", "organiser")


def _clean_unavailable(o: Outcome) -> bool:
    if o.status != 503 or not (o.retry_after or "").isdigit():
        return False
    if o.kind == "fhir":
        try:
            body = json.loads(o.body)
        except ValueError:
            return False
        return (
            o.content_type.startswith("application/fhir+json")
            and body.get("resourceType") == "OperationOutcome"
            and body["issue"][0]["code"] == "transient"
        )
    return (
        o.content_type.startswith("text/html")
        and "Sorry, there is a problem with the service" in o.body
        and "Traceback" not in o.body
    )


def _timeline(bad: list[Outcome], outages: list[tuple[str, float, float]]) -> list[str]:
    """When each bad answer came, against the outages: what tells a failure at the cut
    from one in the recovery or in quiet running."""
    return [
        f"{o.kind}: "
        + "; ".join(
            f"{o.started - began:+.3f}s from {name!r} (back at {up - began:+.3f}s)"
            for name, began, up in outages
        )
        for o in bad[:10]
    ]


def test_postgresql_restart_during_load_gives_503s_and_recovers_by_itself(
    new_service, cluster, capsys
):
    service = new_service("pgrestart")
    key, jwks = system_key()
    seeded = service.script("seed", {"patients": PATIENTS, "jwks": jwks})
    server = AppServer(service, threads=4, log_name="pgrestart")
    server.start()
    token = backend_token(server.base, seeded["client_id"], key)
    patients = [Patient(u) for u in seeded["users"]]
    browsers: list[Browser] = []
    for i in range(THREADS):
        if i < PATIENTS:
            browser = Browser(server.base)
            user = patients[i].user
            browser.log_in(user["email"], user["password"], user["totp"])
        else:
            browser = browsers[i - PATIENTS].tab()
        browsers.append(browser)

    recorder = Recorder()
    stop = threading.Event()

    def run(i: int) -> None:
        patient = patients[i % PATIENTS]
        n = i
        while not stop.is_set():
            kind = CYCLE[n % len(CYCLE)]
            n += 1
            if kind == "reading":
                recorder.add(write(browsers[i], patient, "reading"))
            elif kind == "fhir":
                recorder.add(
                    read(
                        browsers[i],
                        "fhir",
                        token=token,
                        fhir=f"Patient/{patient.user['patient_id']}",
                    )
                )
            else:
                recorder.add(read(browsers[i], kind))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    outages: list[tuple[str, float, float]] = []
    try:
        time.sleep(3)
        down = time.monotonic()
        cluster.restart("fast")
        outages.append(("pg_ctl restart -m fast", down, time.monotonic()))
        time.sleep(RECOVERY_BOUND + 3)
        down = time.monotonic()
        cluster.stop("immediate")
        time.sleep(2)
        cluster.start()
        outages.append(("crash (stop -m immediate), 2 s down, start", down, time.monotonic()))
        time.sleep(RECOVERY_BOUND + 3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        if not cluster.running:
            cluster.start()

    outcomes = recorder.of()
    ok = [o for o in outcomes if o.acknowledged]
    unavailable = [o for o in outcomes if not o.acknowledged and _clean_unavailable(o)]
    bad = [o for o in outcomes if not o.acknowledged and not _clean_unavailable(o)]
    assert not bad, (
        [(o.kind, o.status, o.error, o.content_type, o.body[:400]) for o in bad[:10]],
        _timeline(bad, outages),
        server.log_text()[-3000:],
    )
    assert unavailable, "no request met the outage: the test did not test anything"
    assert server.starts == 1 and server.process.poll() is None, "the application was restarted"

    recovery = []
    for n, (name, began, up) in enumerate(outages):
        next_outage = outages[n + 1][1] if n + 1 < len(outages) else float("inf")
        late = [
            o for o in unavailable if o.started >= up + RECOVERY_BOUND and o.finished < next_outage
        ]
        assert not late, (
            f"{name}: still 503 {RECOVERY_BOUND}s after PostgreSQL was back (down "
            f"{up - began:.1f}s): 503s at "
            + ", ".join(f"{o.started - up:+.1f}s" for o in late[:20])
        )
        during = [
            o for o in unavailable if began - 1 <= o.finished and o.started <= up + RECOVERY_BOUND
        ]
        last_failure = max((o.finished for o in during), default=up)
        first_ok = min((o.finished for o in ok if o.started >= up), default=None)
        assert first_ok is not None, f"{name}: nothing succeeded after PostgreSQL was back"
        recovery.append(
            f"{name}: down {up - began:.1f}s, {len(during)} requests got 503, "
            f"last 503 {max(0.0, last_failure - up):.2f}s and first success "
            f"{first_ok - up:.2f}s after PostgreSQL was back"
        )

    acked = [o for o in ok if o.kind == "reading"]
    report = service.script(
        "check-writes",
        {"users": seeded["users"], "readings": [[o.ident, o.token] for o in acked]},
    )
    assert not report["problems"], report["problems"]
    assert not report["readings"]["missing"] and not report["readings"]["wrong"], report
    verify = service.command("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    server.stop()
    log = server.log_text()
    assert "database unavailable" in log
    assert "Traceback" not in log, log[-3000:]
    private = [u["nhs_number"] for u in seeded["users"]] + [u["email"] for u in seeded["users"]]
    private += [o.token for o in acked if o.token]
    assert not [p for p in private if p in log], "patient data in the server's log"
    with capsys.disabled():
        print(
            f"\n[reliability] PostgreSQL restarted under load: {len(outcomes)} requests, "
            f"{len(ok)} succeeded, {len(unavailable)} clean 503s "
            f"({sum(o.kind == 'fhir' for o in unavailable)} FHIR OperationOutcomes), 0 other; "
            f"{len(acked)} readings acknowledged, all present\n  " + "\n  ".join(recovery)
        )
