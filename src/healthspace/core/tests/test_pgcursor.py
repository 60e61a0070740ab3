"""core.pgcursor: the statements asked for are prepared on PostgreSQL, nothing else is,
the rows are the same either way, and the switch turns it off."""

from __future__ import annotations

import itertools
import uuid
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from healthspace.access.actors import Actor
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import audit_record
from healthspace.core import pgcursor, sql
from healthspace.core.tests.test_sql import _same
from healthspace.records.models import Patient, ScrItem

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _statement(model) -> str:
    table, col = sql.names(model)
    return f"SELECT {col['id']}, {col['nhs_number']} FROM {table} WHERE {col['id']} = %s"  # noqa: S608 - quoted names from model metadata


@postgres_only
def test_a_preferred_statement_is_prepared_and_reads_the_same_rows(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    statement = _statement(Patient)
    plain = sql.rows(statement + " ", [patient.pk])  # another text: not preferred
    assert isinstance(connection.connection.cursor(), pgcursor.PreparingCursor)
    assert not [s for s in _prepared_statements() if "nhs_number" in s]
    first = sql.rows(statement, [patient.pk], prepared=True)
    again = sql.rows(statement, [patient.pk], prepared=True)
    assert first == again == plain == [(patient.pk, patient.nhs_number)]
    found = [s for s in _prepared_statements() if "nhs_number" in s]
    # bound on the server: the value is a parameter of the prepared statement, once
    assert len(found) == 1 and "$1" in found[0] and str(patient.pk) not in found[0]


@postgres_only
def test_prepared_model_reads_match_the_orm_field_for_field(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    fields = ("id", "patient_id", "section", "identity", "payload", "recorded_at", "version")
    theirs = list(ScrItem.objects.filter(patient_id=patient.pk).only(*fields).order_by("id"))
    for _ in range(2):  # prepared on the first run, executed by name on the second
        ours = sql.objects(
            ScrItem, fields, where={"patient_id": patient.pk}, order_by=("id",), prepared=True
        )
        _same(ours, theirs, fields)
    assert [s for s in _prepared_statements() if "records_scritem" in s]


@postgres_only
def test_unasked_statements_keep_client_side_binding(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    for _ in range(8):  # more than psycopg's own threshold of 5
        list(Patient.objects.filter(pk=patient.pk))
        sql.objects(ScrItem, ("id",), where={"patient_id": patient.pk}, order_by=("-id",))
    assert not [s for s in _prepared_statements() if "records_" in s]


@postgres_only
def test_a_prepared_statement_survives_a_rollback_and_an_error(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    statement = _statement(Patient)
    assert sql.rows(statement, [patient.pk], prepared=True)

    def fail_after_the_read():
        with transaction.atomic():
            sql.rows(statement, [patient.pk], prepared=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")

    with pytest.raises(DatabaseError):
        fail_after_the_read()
    assert sql.rows(statement, [patient.pk], prepared=True) == [(patient.pk, patient.nhs_number)]
    with pytest.raises(DatabaseError), transaction.atomic():
        sql.rows(statement, ["not a uuid"], prepared=True)  # a bad value: the server's error
    assert sql.rows(statement, [uuid.uuid4()], prepared=True) == []


def test_the_audit_append_runs_prepared_and_chains(synthetic_patients):
    """The insert-and-advance statement is preferred; on both databases the chain holds."""
    patient = Patient.objects.order_by("nhs_number").first()
    actor = Actor.system("pgcursor-test")
    for n in range(3):
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="scr.view",
                patient_id=patient.pk,
                outcome="success",
                reason="test",
                detail={"n": n, "at": timezone.now().isoformat()},
            )
    events = list(AuditEvent.objects.filter(patient_id=patient.pk, reason="test").order_by("seq"))
    assert [e.detail["n"] for e in events] == [0, 1, 2]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    if connection.vendor == "postgresql":
        assert [s for s in _prepared_statements() if "INSERT INTO" in s]


def test_the_switch_leaves_a_connection_as_django_made_it():
    raw = SimpleNamespace(cursor_factory="django's", prepare_threshold=None)
    made = SimpleNamespace(vendor="postgresql", connection=raw)
    with override_settings(HEALTHSPACE_DB_PREPARED_STATEMENTS=False):
        pgcursor.install(None, made)
    assert raw.cursor_factory == "django's" and raw.prepare_threshold is None
    pgcursor.install(None, SimpleNamespace(vendor="sqlite", connection=raw))
    assert raw.cursor_factory == "django's"
    pgcursor.install(None, made)
    assert raw.cursor_factory is pgcursor.PreparingCursor and raw.prepare_threshold == 5


def test_the_registry_is_bounded(monkeypatch):
    monkeypatch.setattr(pgcursor, "_PREPARED", set())
    for n in range(pgcursor._MOST_PREPARED + 10):
        assert pgcursor.prefer_prepared(f"SELECT {n}") == f"SELECT {n}"
    assert len(pgcursor._PREPARED) == pgcursor._MOST_PREPARED
