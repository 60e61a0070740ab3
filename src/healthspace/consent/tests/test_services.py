"""The consent state machine: every (from, to, source) either adds exactly one version and
one audit event, or is refused with InvalidInput and writes nothing."""

from __future__ import annotations

import functools
import itertools
import threading
from unittest import mock

import pytest
from django.db import connection

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, Relationship
from healthspace.access.context import ConsentState as S
from healthspace.access.roles import Role
from healthspace.audit.models import AuditEvent
from healthspace.consent import rules
from healthspace.consent.models import ConsentRecord, Source
from healthspace.consent.selectors import consent_state_for
from healthspace.consent.services import consent_change as _consent_change
from healthspace.consent.tests.conftest import actor_for
from healthspace.core import clock
from healthspace.core.errors import InvalidInput, NotFound

# The practice's staff here are the patient's care team (the guard that establishes that
# comes with the staff pages); a clerk without it is refused, tested at the end.
CARE_TEAM = AccessContext(relationship=Relationship.CARE_TEAM)
consent_change = functools.partial(_consent_change, context=CARE_TEAM)

pytestmark = pytest.mark.django_db


def _start_in(patient_id, state: S) -> None:
    """Put the patient in ``state`` directly (the setup, not the thing under test)."""
    if state != S.IMPLIED:
        ConsentRecord.objects.create(
            patient_id=patient_id,
            version=1,
            state=state,
            recorded_at=clock.now(),
            recorded_by="test",
            source=Source.GP_PRACTICE,
        )


def test_the_table_prints_one_line_per_allowed_change():
    text = rules.table_text()
    print("\n" + text)
    assert len(text.splitlines()) == len(rules.TRANSITIONS)
    assert "hidden               -> core-only            by privacy-officer" in text


# The NHS SCR rules the table must encode, stated independently of it.
@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        (
            "nobody can move a record to dissent once it exists",
            lambda t: all(new != S.DISSENT for (_, new) in t),
        ),
        ("deleted is final", lambda t: all(old != S.DELETED for (old, _) in t)),
        (
            "only a privacy officer deletes",
            lambda t: all(
                src == rules.OFFICER_ONLY for (_, new), src in t.items() if new == S.DELETED
            ),
        ),
        (
            "only a privacy officer unhides",
            lambda t: all(t[(S.HIDDEN, v)] == rules.OFFICER_ONLY for v in rules.VISIBLE),
        ),
        ("no change to the same state", lambda t: all(old != new for (old, new) in t)),
        (
            "the patient can ask for deletion from any state but deleted",
            lambda t: all(
                Source.PATIENT_ONLINE in t[(s, S.DELETION_REQUESTED)]
                for s in S
                if s not in (S.DELETED, S.DELETION_REQUESTED)
            ),
        ),
    ],
)
def test_table_follows_the_scr_rules(rule, holds):
    assert holds(rules.TRANSITIONS), rule


def test_what_a_patient_can_choose_online():
    assert rules.choices_from(S.IMPLIED, Source.PATIENT_ONLINE) == [
        S.CORE_AND_ADDITIONAL,
        S.CORE_ONLY,
        S.HIDDEN,
        S.DELETION_REQUESTED,
    ]
    assert rules.choices_from(S.CORE_ONLY, Source.PATIENT_ONLINE) == [
        S.CORE_AND_ADDITIONAL,
        S.HIDDEN,
        S.DELETION_REQUESTED,
    ]
    assert rules.choices_from(S.HIDDEN, Source.PATIENT_ONLINE) == [S.DELETION_REQUESTED]
    assert rules.choices_from(S.DELETED, Source.PATIENT_ONLINE) == []


@pytest.mark.parametrize(("old", "new", "source"), list(itertools.product(S, S, Source)), ids=str)
def test_every_transition_is_allowed_or_refused_without_writing(make_patient, old, new, source):
    patient_id = make_patient()
    _start_in(patient_id, old)
    rows_before = ConsentRecord.objects.count()
    allowed = source in rules.TRANSITIONS.get((old, new), frozenset())

    if allowed:
        record = consent_change(
            actor=actor_for(source, patient_id),
            patient_id=patient_id,
            new_state=new,
            source=source,
        )
        assert consent_state_for(patient_id=patient_id) == new
        assert record.version == rows_before + 1
        assert AuditEvent.objects.filter(action="consent.change").count() == 1
    else:
        with pytest.raises(InvalidInput) as refused:
            consent_change(
                actor=actor_for(source, patient_id),
                patient_id=patient_id,
                new_state=new,
                source=source,
            )
        assert str(refused.value)  # a plain-English reason for the person who asked
        assert ConsentRecord.objects.count() == rows_before
        assert consent_state_for(patient_id=patient_id) == old
        assert not AuditEvent.objects.filter(action="consent.change").exists()


def test_no_row_means_implied(make_patient):
    assert consent_state_for(patient_id=make_patient()) == S.IMPLIED


def test_versions_increase_by_one_and_never_rewrite_history(make_patient):
    patient_id = make_patient()
    patient = actor_for(Source.PATIENT_ONLINE, patient_id)
    officer = actor_for(Source.PRIVACY_OFFICER, patient_id)
    steps = [
        (patient, S.CORE_AND_ADDITIONAL, Source.PATIENT_ONLINE),
        (patient, S.CORE_ONLY, Source.PATIENT_ONLINE),
        (patient, S.HIDDEN, Source.PATIENT_ONLINE),
        (officer, S.CORE_ONLY, Source.PRIVACY_OFFICER),
    ]
    for actor, state, source in steps:
        consent_change(actor=actor, patient_id=patient_id, new_state=state, source=source)

    rows = list(ConsentRecord.objects.filter(patient_id=patient_id).order_by("version"))
    assert [(r.version, r.supersedes, r.state) for r in rows] == [
        (1, None, S.CORE_AND_ADDITIONAL),
        (2, 1, S.CORE_ONLY),
        (3, 2, S.HIDDEN),
        (4, 3, S.CORE_ONLY),
    ]
    details = [e.detail for e in AuditEvent.objects.filter(action="consent.change").order_by("seq")]
    assert details[-1] == {
        "from": "hidden",
        "to": "core-only",
        "version": 4,
        "roles": ["privacy-officer"],  # who they were at the time, kept in the hashed detail
    }


def test_patient_cannot_unhide_and_is_told_how(make_patient):
    patient_id = make_patient()
    patient = actor_for(Source.PATIENT_ONLINE, patient_id)
    consent_change(
        actor=patient, patient_id=patient_id, new_state=S.HIDDEN, source="patient-online"
    )
    with pytest.raises(InvalidInput, match="write to your GP practice"):
        consent_change(
            actor=patient, patient_id=patient_id, new_state=S.CORE_ONLY, source="patient-online"
        )
    assert consent_state_for(patient_id=patient_id) == S.HIDDEN


def test_dissent_after_creation_is_refused_with_hide_instead(make_patient):
    patient_id = make_patient()
    with pytest.raises(InvalidInput, match="hide it instead"):
        consent_change(
            actor=actor_for(Source.PATIENT_ONLINE, patient_id),
            patient_id=patient_id,
            new_state=S.DISSENT,
            source=Source.PATIENT_ONLINE,
        )


@pytest.mark.parametrize(
    ("actor", "source"),
    [
        # a patient speaking for someone else's record
        (Actor("patient", "user:9", patient_id=None), Source.PATIENT_ONLINE),
        # a patient claiming to be a privacy officer
        ("own-patient", Source.PRIVACY_OFFICER),
        # staff without the privacy officer role
        (Actor("staff", "user:4", roles=frozenset({Role.CLINICIAN})), Source.PRIVACY_OFFICER),
        # an operator recording a practice's change
        (Actor("staff", "user:5", roles=frozenset({Role.OPERATOR})), Source.GP_PRACTICE),
    ],
)
def test_source_must_match_who_acts(make_patient, actor, source):
    patient_id = make_patient()
    if actor == "own-patient":
        actor = actor_for(Source.PATIENT_ONLINE, patient_id)
    with pytest.raises(NotFound):
        consent_change(actor=actor, patient_id=patient_id, new_state=S.HIDDEN, source=source)
    assert not ConsentRecord.objects.exists()


def test_unknown_record_is_not_found(db):
    import uuid

    with pytest.raises(NotFound):
        consent_change(
            actor=actor_for(Source.GP_PRACTICE, None),
            patient_id=uuid.uuid4(),
            new_state=S.HIDDEN,
            source=Source.GP_PRACTICE,
        )


def test_audit_and_change_stand_or_fall_together(make_patient):
    patient_id = make_patient()
    with (
        mock.patch(
            "healthspace.consent.services.audit_record", side_effect=RuntimeError("audit down")
        ),
        pytest.raises(RuntimeError),
    ):
        consent_change(
            actor=actor_for(Source.PATIENT_ONLINE, patient_id),
            patient_id=patient_id,
            new_state=S.HIDDEN,
            source=Source.PATIENT_ONLINE,
        )
    assert not ConsentRecord.objects.exists()
    assert consent_state_for(patient_id=patient_id) == S.IMPLIED


def test_audit_event_is_written_with_the_change(make_patient):
    patient_id = make_patient()
    consent_change(
        actor=actor_for(Source.PATIENT_ONLINE, patient_id),
        patient_id=patient_id,
        new_state=S.CORE_ONLY,
        source=Source.PATIENT_ONLINE,
    )
    event = AuditEvent.objects.get(action="consent.change")
    assert event.patient_id == patient_id
    assert event.actor == "patient:user:1"
    assert event.detail == {"from": "implied", "to": "core-only", "version": 1}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="needs PostgreSQL row locks; SQLite serialises every writer (BEGIN IMMEDIATE), "
    "so there is no race to test",
)
def test_concurrent_changes_do_not_fork_versions(make_patient):
    patient_id = make_patient()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def change(i: int) -> None:
        state = S.CORE_ONLY if i % 2 else S.CORE_AND_ADDITIONAL
        try:
            barrier.wait()
            consent_change(
                actor=actor_for(Source.PATIENT_ONLINE, patient_id),
                patient_id=patient_id,
                new_state=state,
                source=Source.PATIENT_ONLINE,
            )
        except InvalidInput:
            pass  # "already your choice": a refusal, not a fork
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    rows = list(ConsentRecord.objects.filter(patient_id=patient_id).order_by("version"))
    assert [r.version for r in rows] == list(range(1, len(rows) + 1))
    assert [r.supersedes for r in rows] == [None, *range(1, len(rows))]
    assert AuditEvent.objects.filter(action="consent.change").count() == len(rows)


def test_practice_staff_outside_the_care_team_cannot_change_consent_and_are_audited(make_patient):
    patient_id = make_patient()
    clerk = actor_for(Source.GP_PRACTICE, patient_id)
    with pytest.raises(NotFound):
        _consent_change(
            actor=clerk, patient_id=patient_id, new_state=S.CORE_ONLY, source=Source.GP_PRACTICE
        )
    assert not ConsentRecord.objects.filter(patient_id=patient_id).exists()
    refused = AuditEvent.objects.get(action="consent.change", outcome="denied")
    assert refused.patient_id == patient_id
    assert refused.reason == "no-legitimate-relationship"
