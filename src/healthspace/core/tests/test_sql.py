"""core.sql.objects and records: the same values as the ORM's, on both databases."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models.query_utils import DeferredAttribute
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from healthspace.accounts.models import UserSession
from healthspace.core import sql
from healthspace.records.models import Patient, ScrItem
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db


def _same(ours, theirs, fields):
    assert [o.pk for o in ours] == [t.pk for t in theirs]
    for o, t in zip(ours, theirs, strict=True):
        assert type(o) is type(t)
        assert o._state.adding is False and o._state.db == "default"
        for name in fields:
            assert getattr(o, name) == getattr(t, name), name
            assert type(getattr(o, name)) is type(getattr(t, name)), name


def test_deferred_reads_match_the_orm_field_for_field(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    fields = ("id", "patient_id", "section", "identity", "payload", "recorded_at", "version")
    ours = sql.objects(ScrItem, fields, where={"patient_id": patient.pk}, order_by=("identity",))
    theirs = list(ScrItem.objects.filter(patient_id=patient.pk).only(*fields).order_by("identity"))
    assert len(ours) > 5
    _same(ours, theirs, fields)
    # a field that was not read is deferred, as only() leaves it, and loads on access
    assert isinstance(type(ours[0]).__dict__["source_system"], DeferredAttribute)
    assert "source_system" in ours[0].get_deferred_fields()
    assert ours[0].source_system == theirs[0].source_system


def test_every_field_and_a_related_row_in_one_statement(synthetic_patients):
    patient = Patient.objects.select_related("registered_practice").order_by("nhs_number").first()
    assert patient.registered_practice is not None
    with CaptureQueriesContext(connection) as ctx:
        (ours,) = sql.objects(
            Patient, where={"pk": patient.pk}, related={"registered_practice": ("ods_code", "name")}
        )
        practice = ours.registered_practice  # cached: no second query
    assert len(ctx.captured_queries) == 1
    _same([ours], [patient], [f.attname for f in Patient._meta.concrete_fields])
    assert practice.pk == patient.registered_practice.pk
    assert practice.ods_code == patient.registered_practice.ods_code
    assert practice.name == patient.registered_practice.name
    # UUID and date columns come back as the ORM's types on SQLite too (SQLite stores text)
    assert isinstance(ours.id, uuid.UUID) and isinstance(ours.birth_date, date)
    assert bytes(ours.resource) == bytes(patient.resource)


def test_a_missing_related_row_is_cached_as_none(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    Patient.objects.filter(pk=patient.pk).update(registered_practice=None)
    with CaptureQueriesContext(connection) as ctx:
        (ours,) = sql.objects(
            Patient, ("id",), where={"pk": patient.pk}, related={"registered_practice": ("name",)}
        )
        assert ours.registered_practice is None
    assert len(ctx.captured_queries) == 1


def test_comparisons_nulls_order_and_limit():
    user = get_user_model().objects.create_user("sql-test", "sql@example.test", "x" * 20)
    now = timezone.now()
    for n in range(4):
        UserSession.objects.create(
            user=user,
            key_hash=f"{n:064d}",
            created_at=now - timedelta(hours=n),
            last_seen_at=now - timedelta(minutes=n),
            expires_at=now + timedelta(hours=1 - n),
            device="Firefox",
            ended_at=now if n == 3 else None,
        )
    ours = sql.objects(
        UserSession,
        ("id", "key_hash", "expires_at", "last_seen_at"),
        where={"user_id": user.pk, "expires_at__gt": now, "ended_at__isnull": True},
        order_by=("-last_seen_at",),
        limit=1,
    )
    theirs = list(
        UserSession.objects.filter(user_id=user.pk, expires_at__gt=now, ended_at__isnull=True)
        .only("id", "key_hash", "expires_at", "last_seen_at")
        .order_by("-last_seen_at")[:1]
    )
    _same(ours, theirs, ("key_hash", "expires_at", "last_seen_at"))
    assert ours[0].key_hash == f"{0:064d}"
    # the value of __isnull is part of the shape: both answers are right
    ended = sql.objects(UserSession, ("id",), where={"ended_at__isnull": False})
    assert [s.key_hash for s in ended] == [f"{3:064d}"]
    open_ones = sql.objects(UserSession, ("id",), where={"ended_at__isnull": True})
    assert len(open_ones) == 3
    assert sql.objects(UserSession, where={"pk": -1}) == []


def test_values_are_parameters_never_text_of_the_statement():
    hostile = "x' OR '1'='1"
    Session.objects.create(
        session_key="k" * 32, session_data="{}", expire_date=timezone.now() + timedelta(hours=1)
    )
    assert sql.objects(Session, where={"session_key": hostile}) == []
    assert len(sql.objects(Session, where={"session_key": "k" * 32})) == 1
    with pytest.raises(KeyError):
        sql.objects(Session, where={"session_key__contains": "k"})  # not a lookup it knows


def test_the_key_store_connection(synthetic_patients):
    patient = Patient.objects.order_by("nhs_number").first()
    ours = sql.objects(DataKey, where={"patient_id": patient.pk}, using="keystore")
    theirs = list(DataKey.objects.using("keystore").filter(patient_id=patient.pk))
    assert ours and [k.pk for k in ours] == [k.pk for k in theirs]
    assert ours[0]._state.db == "keystore"
    assert bytes(ours[0].wrapped_key) == bytes(theirs[0].wrapped_key)


def test_records_hold_the_values_the_instances_hold(synthetic_patients):
    from healthspace.audit.models import AuditEvent

    patient = Patient.objects.order_by("nhs_number").first()
    fields = ("id", "occurred_at", "actor", "action", "detail", "patient_id")
    where = {"patient_id": patient.pk}
    ours = sql.records(AuditEvent, fields, where=where, order_by=("-occurred_at", "-id"))
    theirs = sql.objects(AuditEvent, fields, where=where, order_by=("-occurred_at", "-id"))
    assert ours and len(ours) == len(theirs)
    for record, instance in zip(ours, theirs, strict=True):
        assert record.pk == record.id == instance.pk
        for name in fields:
            assert getattr(record, name) == getattr(instance, name), name
            assert type(getattr(record, name)) is type(getattr(instance, name)), name
    assert isinstance(ours[0].detail, dict)  # converted as the ORM converts it
    assert timezone.is_aware(ours[0].occurred_at)
    with pytest.raises(AttributeError):
        ours[0].reason  # noqa: B018 - a field not read is not there (no lazy load)
    assert sql.records(AuditEvent, ("id",), where={"pk": -1}) == []
