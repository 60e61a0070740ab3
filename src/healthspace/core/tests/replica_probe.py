"""Run by test_replicas.py in a child process against a real primary and standby.

Settings come from the environment (DATABASE_URL = the primary, DATABASE_REPLICA_URL =
the standby), as in production. Prints one JSON object of observations; the test
asserts on them. Not a test module itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")
django.setup()

from django.db import connections, transaction  # noqa: E402

from healthspace.access.actors import Actor  # noqa: E402
from healthspace.audit.models import AuditEvent  # noqa: E402
from healthspace.audit.selectors import access_history_for_patient  # noqa: E402
from healthspace.audit.services import audit_record  # noqa: E402
from healthspace.core import replicas  # noqa: E402
from healthspace.core.replicas import replica_reads  # noqa: E402
from healthspace.ops.stats import month_parse, usage_report  # noqa: E402
from healthspace.vault.models import DataKey  # noqa: E402

CLINICIAN = Actor("staff", "user:7")


class Seen:
    """Which alias each SQL statement went to."""

    def __init__(self):
        self.by_alias: dict[str, list[str]] = {}

    def __enter__(self):
        self._cms = []
        for alias in connections:
            cm = connections[alias].execute_wrapper(self._wrapper(alias))
            cm.__enter__()
            self._cms.append(cm)
        return self

    def __exit__(self, *exc):
        for cm in reversed(self._cms):
            cm.__exit__(*exc)

    def _wrapper(self, alias):
        def wrap(execute, sql, params, many, context):
            verb = sql.split()[0].upper()
            if verb == "WITH" and "INSERT INTO" in sql.upper():
                verb = "INSERT"  # the audit's insert-and-advance (audit.services)
            self.by_alias.setdefault(alias, []).append(verb)
            return execute(sql, params, many, context)

        return wrap

    def aliases(self, verb=None):
        return sorted(a for a, verbs in self.by_alias.items() if verb is None or verb in verbs)


def scalar(alias, sql):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def view(patient, n):
    with transaction.atomic():
        return audit_record(
            actor=CLINICIAN,
            action="scr.view",
            patient_id=patient,
            outcome="success",
            reason="permission-given",
            detail={"n": n},
        )


def wait_for_replay(deadline=20.0):
    target = scalar("default", "SELECT pg_current_wal_insert_lsn()::text")
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if scalar("replica", f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            return
        time.sleep(0.05)
    raise SystemExit("replica did not catch up")


def main() -> None:
    out: dict[str, object] = {}
    out["ports"] = {
        "default": scalar("default", "SELECT inet_server_port()"),
        "replica": scalar("replica", "SELECT inet_server_port()"),
    }
    out["replica_in_recovery"] = scalar("replica", "SELECT pg_is_in_recovery()")
    patient = uuid.uuid4()
    for n in range(3):
        view(patient, n)
    wait_for_replay()

    # Replay paused: a row written now exists only on the primary, so a list that lacks it
    # was read on the replica.
    scalar("replica", "SELECT pg_wal_replay_pause()::text")
    newest = view(patient, 3)
    with Seen() as seen, replica_reads() as alias:
        out["block_alias"] = alias
        out["port_in_block"] = scalar(alias, "SELECT inet_server_port()")
        # The patient's "who looked" page (its entries name known staff only) ...
        access_history_for_patient(patient_id=patient, limit=50)
        # ... and the trail it is read from.
        ids = list(AuditEvent.objects.filter(patient_id=patient).values_list("id", flat=True))
    out["who_looked_sees_newest"] = newest.pk in ids
    out["who_looked_count"] = len(ids)
    out["who_looked_aliases"] = seen.aliases()
    primary_ids = list(AuditEvent.objects.filter(patient_id=patient).values_list("id", flat=True))
    out["primary_count"] = len(primary_ids)

    # In a transaction (that writes) inside a replica block: everything on the primary.
    with Seen() as seen, replica_reads(), transaction.atomic():
        view(patient, 4)
        in_tx = AuditEvent.objects.filter(patient_id=patient).count()
    out["in_transaction_count"] = in_tx
    out["in_transaction_aliases"] = seen.aliases()

    # Writes in a replica block go to the primary; the key store keeps its own database.
    with Seen() as seen, replica_reads():
        view(patient, 5)
        DataKey.objects.filter(patient_id=patient).exists()
    out["write_aliases"] = seen.aliases("INSERT")
    out["select_aliases_with_vault"] = seen.aliases("SELECT")

    # A call site: usage statistics count on the replica, audit their viewing on the primary.
    with Seen() as seen:
        usage_report(actor=Actor.system("stats"), month=month_parse(None))
    out["stats_select_aliases"] = seen.aliases("SELECT")
    out["stats_insert_aliases"] = seen.aliases("INSERT")
    scalar("replica", "SELECT pg_wal_replay_resume()::text")

    # The replica goes away: blocks read from the primary instead.
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the test stops the standby, then says go on
    connections["replica"].close()
    down: dict[str, object] = {}
    started = time.monotonic()
    with Seen() as seen, replica_reads() as alias:
        down["block_alias"] = alias
        access_history_for_patient(patient_id=patient, limit=50)
        down["who_looked_count"] = AuditEvent.objects.filter(patient_id=patient).count()
    down["aliases"] = seen.aliases()
    down["seconds"] = round(time.monotonic() - started, 3)
    with replica_reads() as alias:  # within RETRY_AFTER: not even tried
        down["second_block_alias"] = alias
    down["retry_after"] = replicas.RETRY_AFTER
    sys.stdout.write(json.dumps(down) + "\n")


if __name__ == "__main__":
    main()
