"""The hash format: fixed, versioned, and sensitive to every field it covers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from healthspace.audit import chain

PATIENT = uuid.UUID("9b3f6a6e-0c1d-4e8a-9f2b-1a2b3c4d5e6f")
FIELDS = dict(
    chain_key=str(PATIENT),
    seq=1,
    prev_hash=chain.GENESIS,
    occurred_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    patient_id=PATIENT,
    actor="staff:user:7",
    action="scr.view",
    outcome="allowed",
    reason="direct care",
    detail={"sections": ["allergies"], "n": 2},
)


def test_serialisation_is_the_documented_v1_array():
    assert chain.event_bytes(**FIELDS) == (
        b'["hs-audit-v1","9b3f6a6e-0c1d-4e8a-9f2b-1a2b3c4d5e6f",1,'
        b'"0000000000000000000000000000000000000000000000000000000000000000",'
        b'"2026-01-02T03:04:05.000006+00:00","9b3f6a6e-0c1d-4e8a-9f2b-1a2b3c4d5e6f",'
        b'"staff:user:7","scr.view","allowed","direct care",{"n":2,"sections":["allergies"]}]'
    )


def test_hash_is_a_fixed_test_vector():
    # Pinned: a change here invalidates every stored chain, so it needs a new VERSION.
    assert chain.event_hash(**FIELDS) == (
        "5b36a5bb925b3c489a1f512f363f56037406d86496cadd8a9e155a48b1b9de64"
    )


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("chain_key", "actor:staff:user:7"),
        ("seq", 2),
        ("prev_hash", "1" * 64),
        ("occurred_at", FIELDS["occurred_at"] + timedelta(microseconds=1)),
        ("patient_id", uuid.uuid4()),
        ("patient_id", None),
        ("actor", "staff:user:8"),
        ("action", "scr.export"),
        ("outcome", "denied"),
        ("reason", "emergency"),
        ("detail", {"sections": ["allergies"], "n": 3}),
        ("detail", {}),
    ],
)
def test_every_field_is_covered_by_the_hash(field, changed):
    assert chain.event_hash(**{**FIELDS, field: changed}) != chain.event_hash(**FIELDS)


@pytest.mark.parametrize(
    "same_instant",
    [
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 2, 4, 4, 5, 6, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_time_is_hashed_in_utc_whatever_the_zone(same_instant):
    assert chain.event_hash(**{**FIELDS, "occurred_at": same_instant}) == chain.event_hash(**FIELDS)


@pytest.mark.parametrize(
    ("detail", "same_as"),
    [
        ({"b": 1, "a": 2}, {"a": 2, "b": 1}),  # key order
        ({"n": 2.0}, {"n": 2}),  # jsonb may return an integral float as an integer
        ({"t": ("x", "y")}, {"t": ["x", "y"]}),  # tuples are stored as lists
        ({"s": "é"}, {"s": "\u00e9"}),
    ],
)
def test_detail_hashes_as_the_database_returns_it(detail, same_as):
    assert chain.canonical_json(detail) == chain.canonical_json(same_as)
    assert chain.stored_detail(detail) == chain.stored_detail(same_as)


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}])
def test_detail_that_could_not_round_trip_is_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        chain.stored_detail(bad)


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        chain.event_hash(**{**FIELDS, "occurred_at": datetime(2026, 1, 2)})


@pytest.mark.parametrize(
    ("patient_id", "actor", "key"),
    [
        (PATIENT, "staff:user:7", str(PATIENT)),
        (str(PATIENT).upper(), "staff:user:7", str(PATIENT)),
        (None, "staff:user:7", "actor:staff:user:7"),
        (None, "anonymous:anonymous", "actor:anonymous:anonymous"),
    ],
)
def test_chain_key_is_the_patient_else_the_actor(patient_id, actor, key):
    assert chain.chain_key_for(patient_id=patient_id, actor=actor) == key


def test_long_actor_labels_get_a_digest_key_that_fits():
    long_a, long_b = "staff:" + "a" * 100, "staff:" + "a" * 99 + "b"
    key_a = chain.chain_key_for(patient_id=None, actor=long_a)
    key_b = chain.chain_key_for(patient_id=None, actor=long_b)
    assert len(key_a) == chain.CHAIN_KEY_MAX and key_a.startswith("actor#")
    assert key_a != key_b
