"""Correction workflow states: the whole state machine as a table. Every (status, event,
who) is listed: the allowed ones with where they lead, everything else refused."""

from __future__ import annotations

import itertools

import pytest

from healthspace.corrections.workflow import (
    REFUSALS,
    By,
    Event,
    Status,
    TransitionRefused,
    allowed,
    transition,
)

S, E, P, C = Status, Event, By.PATIENT, By.CLINICIAN

# The specification, written out by hand: (from, event, who) -> to.
ALLOWED = {
    (S.SUBMITTED, E.OPEN, C): S.IN_REVIEW,
    (S.IN_REVIEW, E.AMEND, C): S.AMENDED,
    (S.IN_REVIEW, E.KEEP, C): S.KEPT,
    (S.SUBMITTED, E.WITHDRAW, P): S.WITHDRAWN,
    (S.IN_REVIEW, E.WITHDRAW, P): S.WITHDRAWN,
}
EVERY = list(itertools.product(Status, Event, By))


def test_the_table_covers_every_combination():
    assert len(EVERY) == 5 * 4 * 2 == 40
    assert len([c for c in EVERY if c in ALLOWED]) == 5


@pytest.mark.parametrize(("current", "event", "by"), EVERY, ids=lambda v: str(v))
def test_correction_workflow_states(current, event, by):
    want = ALLOWED.get((current, event, by))
    assert allowed(current, event, by=by) is (want is not None)
    if want is not None:
        assert transition(current, event, by=by) == want
    else:
        with pytest.raises(TransitionRefused) as refused:
            transition(current, event, by=by)
        assert str(refused.value) == REFUSALS[by][current]


@pytest.mark.parametrize("final", [S.AMENDED, S.KEPT, S.WITHDRAWN])
def test_answered_and_withdrawn_requests_are_final(final):
    assert not any(allowed(final, e, by=b) for e in Event for b in By)


def test_nobody_decides_a_request_no_clinician_has_opened():
    for event in (E.AMEND, E.KEEP):
        assert not allowed(S.SUBMITTED, event, by=C)


def test_a_patient_only_ever_withdraws_and_a_clinician_never_does():
    for current, event in itertools.product(Status, Event):
        if allowed(current, event, by=P):
            assert event == E.WITHDRAW
        assert not allowed(current, E.WITHDRAW, by=C)


def test_every_refusal_has_words_for_each_side():
    for by in By:
        assert set(REFUSALS[by]) == set(Status)
