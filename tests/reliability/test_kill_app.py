"""`kill -9` of the application server during 1,000 concurrent writes.

Eight patients, logged in through the login pages (password and authenticator app), write
from 16 client threads through the real pages: blood pressure readings, new messages to
their care team (multipart, as the form sends them) and changes of their SCR consent.
When 45% of the writes have been acknowledged, the whole server (granian and its worker)
gets SIGKILL: nothing of it can clean up. It is started again, the same sessions carry on
with the writes not yet sent, and then:

- every write the client saw acknowledged is stored, whole (the sealed note or message
  opens and is the one sent) and readable through the restarted service's pages;
- nothing is half-written: every reading, message and consent version has its audit event
  and every such event its row; threads hold as many messages as they say;
- writes stored without the client hearing back are at most those in flight at the kill;
- `healthspace audit verify` passes (exit status 0).
"""

from __future__ import annotations

import random
import threading
import time

from tests.reliability.harness import AppServer, Browser
from tests.reliability.load import Patient, Recorder, write

PATIENTS = 8
THREADS = 16
WRITES = 1000
KILL_AT = 0.45  # of the writes, acknowledged
# Bounds (never performance claims): the whole test stays within a few minutes.
PHASE_SECONDS = 120


def _plan(thread: int) -> list[str]:
    """The writes of one client thread. The first thread of each patient is the only one
    to change their consent, so that each of its changes is a real change."""
    count = WRITES // THREADS + (1 if thread < WRITES % THREADS else 0)
    cycle = (
        ("reading", "consent", "reading", "message")
        if thread < PATIENTS
        else ("message", "reading")
    )
    return [cycle[i % len(cycle)] for i in range(count)]


def test_kill_9_during_1000_concurrent_writes_loses_no_acknowledged_write(new_service, capsys):
    marks = {"begin": time.monotonic()}
    service = new_service("kill")
    seeded = service.script("seed", {"patients": PATIENTS})
    server = AppServer(service, threads=4, log_name="kill")
    marks["seeded"] = time.monotonic()
    server.start()
    patients = [Patient(u) for u in seeded["users"]]
    browsers = []
    for i in range(THREADS):
        if i < PATIENTS:
            browser = Browser(server.base)
            user = patients[i].user
            browser.log_in(user["email"], user["password"], user["totp"])
        else:  # a second tab of the same patient's browser
            browser = browsers[i - PATIENTS].tab()
        browsers.append(browser)

    marks["logged in"] = time.monotonic()
    plans = [_plan(i) for i in range(THREADS)]
    assert sum(map(len, plans)) == WRITES
    recorder = Recorder()
    killed = threading.Event()
    in_flight_at_kill: list[str] = []

    def run(i: int) -> None:
        deadline = time.monotonic() + PHASE_SECONDS
        while plans[i] and time.monotonic() < deadline:
            kind = plans[i][0]
            outcome = write(browsers[i], patients[i % PATIENTS], kind)
            recorder.add(outcome)
            if outcome.status is None and killed.is_set():
                in_flight_at_kill.append(kind)
                plans[i].pop(0)  # sent, fate unknown: not sent again
                return
            plans[i].pop(0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    began = time.monotonic()
    for t in threads:
        t.start()
    while recorder.acknowledged < WRITES * KILL_AT and any(t.is_alive() for t in threads):
        time.sleep(0.005)
    server.kill()
    killed.set()
    killed_after = time.monotonic() - began
    for t in threads:
        t.join(timeout=PHASE_SECONDS)
    marks["joined"] = time.monotonic()
    before_kill = recorder.of(acknowledged=True)
    refused_before_kill = [o for o in recorder.of(acknowledged=False) if o.status is not None]
    # Nothing was refused while the server was up (a refusal would hide a lost write).
    assert not refused_before_kill, [(o.kind, o.status, o.body[:300]) for o in refused_before_kill]

    restart_seconds = server.start()
    # the same sessions (stored in the database) go on with what was not sent yet
    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=PHASE_SECONDS)
    marks["phase b"] = time.monotonic()
    assert not any(plans), "writes left unsent after the restart"
    after_restart = [o for o in recorder.of() if o.started > began + killed_after]
    failed_after = [o for o in after_restart if not o.acknowledged and o.status is not None]
    assert not failed_after, [(o.kind, o.status) for o in failed_after]

    acked = recorder.of(acknowledged=True)
    sent = len(recorder.of())
    assert sent == WRITES
    report = service.script(
        "check-writes",
        {
            "users": seeded["users"],
            "readings": [[o.ident, o.token] for o in acked if o.kind == "reading"],
            "messages": [[o.ident, o.token] for o in acked if o.kind == "message"],
            "consents": {
                p.user["patient_id"]: sum(
                    1 for o in acked if o.kind == "consent" and o.patient_id == p.user["patient_id"]
                )
                for p in patients
            },
        },
    )
    marks["checked"] = time.monotonic()
    assert not report["problems"], report["problems"]
    for kind in ("readings", "messages"):
        assert not report[kind]["missing"], f"acknowledged {kind} lost: {report[kind]['missing']}"
        assert not report[kind]["wrong"], f"acknowledged {kind} changed: {report[kind]['wrong']}"
    stored_unacked = (
        report["readings"]["stored_unacknowledged"]
        + report["messages"]["stored_unacknowledged"]
        + report["consents"]["stored_unacknowledged"]
    )
    assert stored_unacked <= len(in_flight_at_kill)

    # what the restarted service shows: acknowledged messages, as the patient reads them
    sample = random.Random(9).sample(
        [o for o in acked if o.kind == "message"],
        k=min(25, sum(o.kind == "message" for o in acked)),
    )
    for o in sample:
        owner = browsers[
            next(i for i, p in enumerate(patients) if p.user["patient_id"] == o.patient_id)
        ]
        page = owner.get(f"/messages/{o.ident}/")
        assert page.status_code == 200 and o.token in page.text, (o.ident, page.status_code)
    verify = service.command("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    marks["verified"] = time.monotonic()
    server.stop()
    marks["stopped"] = time.monotonic()
    with capsys.disabled():
        print(
            "\n[reliability] kill -9 test, seconds from its start: "
            + ", ".join(f"{k} {v - marks['begin']:.1f}" for k, v in marks.items())
        )
        print(
            f"\n[reliability] kill -9 after {killed_after:.1f}s: {len(before_kill)} writes "
            f"acknowledged before the kill, {len(in_flight_at_kill)} in flight, "
            f"{stored_unacked} of those stored; restart {restart_seconds:.1f}s; "
            f"{len(acked)}/{WRITES} acknowledged in all, all present; audit verify ok"
        )
