"""audit_record appends to a per-patient (or per-actor) chain inside the caller's transaction."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.audit import chain
from healthspace.audit.models import AuditChainHead, AuditEvent
from healthspace.audit.services import AuditOutsideTransaction, audit_record
from healthspace.audit.tests.conftest import CLINICIAN, record
from healthspace.audit.verify import verify_database

pytestmark = pytest.mark.django_db


def test_events_for_one_patient_form_a_chain_from_seq_1():
    patient = uuid.uuid4()
    events = [record(patient, n=n) for n in range(3)]
    assert [e.seq for e in events] == [1, 2, 3]
    assert {e.chain_key for e in events} == {str(patient)}
    assert events[0].prev_hash == chain.GENESIS
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    head = AuditChainHead.objects.get(chain_key=str(patient))
    assert (head.seq, head.head_hash) == (3, events[2].hash)


def test_each_patient_and_each_patientless_actor_has_its_own_chain():
    a, b = uuid.uuid4(), uuid.uuid4()
    record(a)
    record(b)
    record(a)
    login = record(None, action="account.login")
    other_login = record(None, actor=Actor("patient", "user:9"), action="account.login")
    assert AuditEvent.objects.get(patient_id=b).seq == 1
    assert AuditEvent.objects.filter(patient_id=a).order_by("seq").last().seq == 2
    assert (login.chain_key, login.seq) == ("actor:staff:user:7", 1)
    assert (other_login.chain_key, other_login.seq) == ("actor:patient:user:9", 1)
    assert AuditChainHead.objects.count() == 4
    assert verify_database().ok


def test_stored_hash_recomputes_from_the_row_as_read_back():
    event = record(uuid.uuid4(), detail={"count": 2.0, "names": ("a", "b")})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.detail == {"count": 2, "names": ["a", "b"], "roles": []}
    assert verify_database().ok


@pytest.mark.django_db(transaction=True)
def test_staff_events_carry_roles_organisation_and_request_id_at_the_time():
    from healthspace.core import requests

    actor = Actor("staff", "user:9", roles=frozenset({"clinician"}), organisation="Y00001")
    token = requests._current.set("abc123")
    try:
        with transaction.atomic():
            event = audit_record(
                actor=actor, action="scr.view", patient_id=None, outcome="success", reason="r"
            )
    finally:
        requests._current.reset(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.detail == {"roles": ["clinician"], "org": "Y00001", "request_id": "abc123"}
    assert verify_database().ok


@pytest.mark.django_db(transaction=True)
def test_signature_and_refusal_outside_a_transaction_are_unchanged():
    with pytest.raises(AuditOutsideTransaction):
        audit_record(actor=CLINICIAN, action="scr.view", patient_id=None, outcome="ok", reason="r")
    assert not AuditEvent.objects.exists()
    assert not AuditChainHead.objects.exists()


def test_a_failed_action_takes_its_audit_event_and_head_move_with_it():
    patient = uuid.uuid4()
    record(patient)

    def failing_action() -> None:
        with transaction.atomic():
            record(patient)
            raise RuntimeError("the action failed after auditing")

    with pytest.raises(RuntimeError):
        failing_action()
    head = AuditChainHead.objects.get(chain_key=str(patient))
    assert head.seq == 1
    assert record(patient).seq == 2
    assert verify_database().ok


def test_a_failed_audit_write_fails_the_action():
    patient = uuid.uuid4()
    with pytest.raises(TypeError, match="JSON"), transaction.atomic():
        audit_record(
            actor=CLINICIAN,
            action="scr.view",
            patient_id=patient,
            outcome="allowed",
            reason="r",
            detail={"not json": object()},
        )
    assert not AuditEvent.objects.filter(patient_id=patient).exists()


def test_a_new_chain_whose_head_row_was_created_concurrently_is_joined_not_duplicated():
    # The loser of the head-creation race finds the row already there (ignore_conflicts).
    patient = uuid.uuid4()
    with transaction.atomic():
        AuditChainHead.objects.bulk_create(
            [
                AuditChainHead(
                    chain_key=str(patient),
                    seq=0,
                    head_hash=chain.GENESIS,
                    updated_at="2026-01-01T00:00:00Z",
                )
            ]
        )
        assert record(patient).seq == 1
