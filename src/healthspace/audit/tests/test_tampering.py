"""Rows tampered with in the raw database: `healthspace audit verify` names the first broken event.

Each case edits the database behind the application's back (SQL, as someone with
database access would) and checks that verification fails and points at the right link.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from healthspace.audit import chain, verify
from healthspace.audit.checkpoints import checkpoint_create
from healthspace.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from healthspace.audit.tests.conftest import record
from healthspace.audit.verify import verify_database

pytestmark = pytest.mark.django_db


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def forged_hash(event: AuditEvent, **changes) -> str:
    fields = dict(
        chain_key=event.chain_key,
        seq=event.seq,
        prev_hash=event.prev_hash,
        occurred_at=event.occurred_at,
        patient_id=event.patient_id,
        actor=event.actor,
        action=event.action,
        outcome=event.outcome,
        reason=event.reason,
        detail=event.detail,
    )
    return chain.event_hash(**{**fields, **changes})


def edit_detail(e):
    sql("UPDATE audit_event SET detail = %s WHERE id = %s", ['{"sections": [], "n": 1}', e[1].pk])
    return 2, e[1], verify.EDITED


def edit_outcome(e):
    sql("UPDATE audit_event SET outcome = 'denied' WHERE id = %s", [e[1].pk])
    return 2, e[1], verify.EDITED


def edit_actor(e):
    sql("UPDATE audit_event SET actor = 'staff:user:99' WHERE id = %s", [e[1].pk])
    return 2, e[1], verify.EDITED


def edit_time(e):
    sql("UPDATE audit_event SET occurred_at = %s WHERE id = %s", [e[0].occurred_at, e[1].pk])
    return 2, e[1], verify.EDITED


def move_to_another_patient(e):
    sql("UPDATE audit_event SET patient_id = %s WHERE id = %s", [uuid.uuid4().hex, e[1].pk])
    return 2, e[1], verify.EDITED


def edit_and_rehash_one_row(e):
    # A forger who knows the format rehashes the row: the next link no longer matches.
    new = forged_hash(e[1], outcome="denied")
    sql("UPDATE audit_event SET outcome = 'denied', hash = %s WHERE id = %s", [new, e[1].pk])
    return 3, e[2], verify.LINK


def delete_middle(e):
    sql("DELETE FROM audit_event WHERE id = %s", [e[1].pk])
    return 3, e[2], verify.GAP


def delete_first(e):
    sql("DELETE FROM audit_event WHERE id = %s", [e[0].pk])
    return 2, e[1], verify.GAP


def swap_seq(e):
    # Through a spare number: the (chain_key, seq) unique constraint forbids a direct swap.
    sql("UPDATE audit_event SET seq = 1000 WHERE id = %s", [e[1].pk])
    sql("UPDATE audit_event SET seq = 2 WHERE id = %s", [e[2].pk])
    sql("UPDATE audit_event SET seq = 3 WHERE id = %s", [e[1].pk])
    return 2, e[2], verify.LINK


def insert_forged_row_with_bad_hash(e):
    _insert_forged(e[2], seq=4, prev_hash=e[2].hash, digest="f" * 64)
    return 4, None, verify.EDITED


def insert_forged_row_rehashed_but_head_left(e):
    digest = forged_hash(e[2], seq=4, prev_hash=e[2].hash, reason="forged")
    _insert_forged(e[2], seq=4, prev_hash=e[2].hash, digest=digest, reason="forged")
    return 4, None, verify.BEYOND_HEAD


def truncate_tail(e):
    sql("DELETE FROM audit_event WHERE id = %s", [e[2].pk])
    return 3, None, verify.TRUNCATED


def rewrite_head(e):
    sql(
        "UPDATE audit_chain_head SET head_hash = %s WHERE chain_key = %s",
        ["0" * 64, e[0].chain_key],
    )
    return 3, e[2], verify.HEAD_HASH


def delete_head(e):
    sql("DELETE FROM audit_chain_head WHERE chain_key = %s", [e[0].chain_key])
    return 3, e[2], verify.NO_HEAD


def delete_whole_chain(e):
    sql("DELETE FROM audit_event WHERE chain_key = %s", [e[0].chain_key])
    return 3, None, verify.ORPHAN_HEAD


def _insert_forged(template: AuditEvent, *, seq, prev_hash, digest, reason="direct care"):
    sql(
        "INSERT INTO audit_event (occurred_at, patient_id, actor, action, outcome, reason, "
        "detail, chain_key, seq, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s, %s)",
        [
            template.occurred_at,
            template.patient_id.hex,
            template.actor,
            template.action,
            template.outcome,
            reason,
            json.dumps(template.detail),
            template.chain_key,
            seq,
            prev_hash,
            digest,
        ],
    )


TAMPERING = [
    edit_detail,
    edit_outcome,
    edit_actor,
    edit_time,
    move_to_another_patient,
    edit_and_rehash_one_row,
    delete_middle,
    delete_first,
    swap_seq,
    insert_forged_row_with_bad_hash,
    insert_forged_row_rehashed_but_head_left,
    truncate_tail,
    rewrite_head,
    delete_head,
    delete_whole_chain,
]


def test_an_untouched_trail_verifies(patient_chain):
    record(None, action="account.login")
    out = _verify_ok()
    assert out == "4 events in 2 chains, 0 checkpoints: OK\n"


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__)
def test_tampering_is_detected_and_the_first_broken_event_named(patient_chain, tamper):
    patient, events = patient_chain
    other = uuid.uuid4()
    record(other)  # an untouched chain alongside must not hide or be blamed
    seq, event, what = tamper(events)

    report = verify_database()

    assert not report.ok
    first = report.first
    assert (first.chain_key, first.seq, first.what) == (str(patient), seq, what)
    if event is not None:
        assert first.event_id == event.pk
    with pytest.raises(CommandError) as failure:
        call_command("audit", "verify")
    message = str(failure.value)
    assert str(patient) in message and f"seq {seq}" in message and what in message
    assert str(other) not in message


def test_the_first_broken_event_is_reported_first_when_several_chains_are_broken(db):
    patients = sorted((uuid.uuid4() for _ in range(3)), key=str)
    chains = {p: [record(p, n=n) for n in range(2)] for p in patients}
    sql("UPDATE audit_event SET reason = 'x' WHERE id = %s", [chains[patients[2]][0].pk])
    sql("UPDATE audit_event SET reason = 'x' WHERE id = %s", [chains[patients[1]][1].pk])
    report = verify_database()
    assert [(p.chain_key, p.seq) for p in report.problems] == [
        (str(patients[1]), 2),
        (str(patients[2]), 1),
    ]


# -- after a checkpoint: the forger also recomputes every hash and the head -----------------


def test_truncation_after_a_checkpoint_is_detected_even_with_the_head_rewound(patient_chain):
    patient, events = patient_chain
    checkpoint = checkpoint_create()
    sql("DELETE FROM audit_event WHERE id = %s", [events[2].pk])
    sql(
        "UPDATE audit_chain_head SET seq = 2, head_hash = %s WHERE chain_key = %s",
        [events[1].hash, str(patient)],
    )
    report = verify_database()
    first = report.first
    assert (first.chain_key, first.seq, first.what, first.checkpoint_id) == (
        str(patient),
        3,
        verify.NOT_IN_CHAIN,
        checkpoint.pk,
    )
    assert len(report.problems) == 1, "the chain itself is consistent: only the checkpoint knows"


def test_a_rewrite_of_a_checkpointed_event_is_detected_even_when_fully_rehashed(patient_chain):
    patient, events = patient_chain
    checkpoint_create()
    last = events[2]
    new = forged_hash(last, outcome="denied")
    sql("UPDATE audit_event SET outcome = 'denied', hash = %s WHERE id = %s", [new, last.pk])
    sql("UPDATE audit_chain_head SET head_hash = %s WHERE chain_key = %s", [new, str(patient)])
    first = verify_database().first
    assert (first.chain_key, first.seq, first.event_id, first.what) == (
        str(patient),
        3,
        last.pk,
        verify.REWRITTEN,
    )


def test_events_after_the_last_checkpoint_verify(patient_chain):
    patient, _ = patient_chain
    checkpoint_create()
    record(patient)
    checkpoint_create()
    record(uuid.uuid4())
    assert verify_database().ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("signature", "AAAA" + "A" * 84),
        ("heads_digest", "0" * 64),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("previous_checkpoint_hash", "1" * 64),
    ],
)
def test_a_tampered_checkpoint_fails_verification(patient_chain, column, value):
    checkpoint = checkpoint_create()
    # column comes from the fixed table above, never from input.
    sql(f"UPDATE audit_checkpoint SET {column} = %s WHERE id = %s", [value, checkpoint.pk])  # noqa: S608 (column from the test)
    first = verify_database().first
    assert (first.what, first.checkpoint_id) == (verify.CHECKPOINT, checkpoint.pk)


def test_checkpoint_heads_edited_to_match_a_truncation_fail_the_signature(patient_chain):
    patient, events = patient_chain
    checkpoint = checkpoint_create()
    sql("DELETE FROM audit_event WHERE id = %s", [events[2].pk])
    AuditChainHead.objects.filter(chain_key=str(patient)).update(seq=2, head_hash=events[1].hash)
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(
        heads={str(patient): [2, events[1].hash]}
    )
    first = verify_database().first
    assert first.what == verify.CHECKPOINT and "digest" in first.detail


def test_a_deleted_checkpoint_breaks_the_checkpoint_chain(patient_chain):
    patient, _ = patient_chain
    first_cp = checkpoint_create()
    record(patient)
    checkpoint_create()
    record(patient)
    third = checkpoint_create()
    sql("DELETE FROM audit_checkpoint WHERE id = %s", [first_cp.pk + 1])
    first = verify_database().first
    assert (first.what, first.checkpoint_id) == (verify.CHECKPOINT, third.pk)
    assert "chain" in first.detail


def test_a_deleted_latest_checkpoint_is_caught_with_its_off_box_hash(patient_chain):
    from healthspace.audit.checkpoints import checkpoint_hash

    checkpoint_create()
    latest = checkpoint_create(full=True)
    kept_off_box = checkpoint_hash(latest)
    assert verify_database(expected_checkpoints=[kept_off_box]).ok
    sql("DELETE FROM audit_checkpoint WHERE id = %s", [latest.pk])
    assert verify_database().ok, "on its own the database cannot know of a checkpoint it lost"
    report = verify_database(expected_checkpoints=[kept_off_box])
    assert report.first.what == verify.UNKNOWN_CHECKPOINT


def _verify_ok() -> str:
    from io import StringIO

    out = StringIO()
    with transaction.atomic():
        call_command("audit", "verify", stdout=out)
    return out.getvalue()
