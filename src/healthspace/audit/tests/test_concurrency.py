"""Concurrent writers on PostgreSQL: chains stay whole, and there is no global lock."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from healthspace.access.actors import Actor
from healthspace.audit.models import AuditChainHead, AuditEvent
from healthspace.audit.services import audit_record
from healthspace.audit.verify import verify_database

THREADS = 20
PATIENTS = 20

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (row locks); SQLite serialises all writers. "
        "Run with DATABASE_URL=postgresql://...",
    ),
]


def _view(actor: Actor, patient_id: uuid.UUID | None) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="scr.view",
            patient_id=patient_id,
            outcome="allowed",
            reason="direct care",
            detail={"sections": ["allergies"]},
        )


def _in_own_connection(work):
    def run(*args):
        try:
            return work(*args)
        finally:
            connections.close_all()

    return run


def test_twenty_threads_viewing_the_same_twenty_new_patients_keep_every_chain_whole():
    # Every chain is new, so threads also race to create its head row.
    patients = [uuid.uuid4() for _ in range(PATIENTS)]

    @_in_own_connection
    def clinician(n: int) -> None:
        actor = Actor("staff", f"user:{n}")
        for i in range(PATIENTS):
            _view(actor, patients[(i + n) % PATIENTS])  # each starts at a different patient
        _view(actor, None)  # a patientless event: the clinician's own chain

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(clinician, range(THREADS)))

    report = verify_database()
    assert report.ok, report.problems[:3]
    assert report.events == THREADS * PATIENTS + THREADS
    assert report.chains == PATIENTS + THREADS
    heads = dict(AuditChainHead.objects.values_list("chain_key", "seq"))
    assert all(heads[str(p)] == THREADS for p in patients)


def test_writers_to_different_patients_do_not_wait_for_each_other():
    # Each thread appends inside a transaction it keeps open until every other thread has
    # appended too. With a global audit lock only one could get that far, and the barrier
    # would time out.
    barrier = threading.Barrier(THREADS, timeout=15)
    patients = [uuid.uuid4() for _ in range(THREADS)]
    for p in patients:  # existing chains: the head rows are there to lock
        _view(Actor("staff", "user:0"), p)

    @_in_own_connection
    def clinician(n: int) -> None:
        with transaction.atomic():
            audit_record(
                actor=Actor("staff", f"user:{n}"),
                action="scr.view",
                patient_id=patients[n],
                outcome="allowed",
                reason="direct care",
            )
            barrier.wait()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(clinician, range(THREADS)))

    assert AuditEvent.objects.count() == 2 * THREADS
    assert verify_database().ok
