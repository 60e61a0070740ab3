"""decide() for sharing: carers and proxies read granted sections only and nothing else;
the pause stops every kind of sharing; share-code viewers see the summary their consent
allows while the code is live. Table-driven over every action and section."""

from __future__ import annotations

import uuid

import pytest

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState, Relationship
from healthspace.access.policy import SHARED_READ_ACTIONS, Action, decide
from healthspace.access.roles import Role

SECTIONS = [
    "medications", "allergies", "adverse_reactions", "problems", "results", "immunisations",
    "procedures", "encounters", "care_plans", "professionals", "communication", "access_needs",
    "care_preferences",
]  # fmt: skip
GRANTS = [
    frozenset(),
    frozenset({"medications", "allergies"}),
    frozenset({"organiser"}),
    frozenset({"messages", "problems"}),
    frozenset(SECTIONS) | {"organiser", "messages"},
]
PATIENT = uuid.uuid4()


def _grantee(role: Role) -> Actor:
    return Actor("patient", "user:2", patient_id=uuid.uuid4(), roles=frozenset({role}))


def expected(action: Action, section: str | None, granted: frozenset[str], frozen: bool) -> bool:
    if frozen:
        return False
    if action == Action.SHARING_ACCEPT:
        return bool(granted)
    if action == Action.ORGANISER_VIEW:
        return "organiser" in granted
    if action == Action.MESSAGE_VIEW:
        return "messages" in granted
    if action != Action.VIEW_SCR:
        return False
    scr = granted - {"organiser", "messages"}
    return bool(scr) if section is None else section in scr


@pytest.mark.parametrize("role", [Role.CARER, Role.PROXY])
@pytest.mark.parametrize("frozen", [False, True])
def test_grantees_get_exactly_the_granted_sections_read_only(role, frozen):
    actor, checked = _grantee(role), 0
    for granted in GRANTS:
        context = AccessContext(granted_sections=granted, sharing_frozen=frozen)
        for action in Action:
            for section in (None, *SECTIONS, "organiser", "messages"):
                got = decide(actor, action, PATIENT, section, context)
                want = expected(action, section, granted, frozen)
                assert got.allowed is want, (action, section, granted, got.reason)
                if got.allowed:
                    assert got.reason == ("proxy-approved" if role == Role.PROXY else "carer-grant")
                checked += 1
    assert checked == len(GRANTS) * len(Action) * (len(SECTIONS) + 3)


def test_a_grantee_never_exports_or_changes():
    actor = _grantee(Role.CARER)
    everything = AccessContext(granted_sections=frozenset(SECTIONS) | {"organiser", "messages"})
    for action in Action:
        if action in SHARED_READ_ACTIONS or action == Action.SHARING_ACCEPT:
            continue
        assert not decide(actor, action, PATIENT, None, everything).allowed, action


def test_a_grant_opens_nothing_without_its_gathered_context_or_on_ones_own_record():
    actor = _grantee(Role.CARER)
    assert not decide(actor, Action.VIEW_SCR, PATIENT, "allergies", None).allowed
    granted = AccessContext(granted_sections=frozenset({"allergies"}))
    assert not decide(actor, Action.VIEW_SCR, actor.patient_id, "allergies", granted).allowed
    assert not decide(actor, Action.VIEW_SCR, None, "allergies", granted).allowed


@pytest.mark.parametrize("consent", list(ConsentState))
@pytest.mark.parametrize("live", [True, False])
@pytest.mark.parametrize("frozen", [False, True])
def test_a_share_code_shows_the_summary_the_consent_allows(consent, live, frozen):
    actor = Actor.share_code(uuid.uuid4())
    context = AccessContext(consent=consent, share_code_live=live, sharing_frozen=frozen)
    visible = consent not in (
        ConsentState.HIDDEN, ConsentState.DELETION_REQUESTED, ConsentState.DELETED,
        ConsentState.DISSENT,
    )  # fmt: skip
    for action in Action:
        for section in (None, *SECTIONS):
            want = (
                live
                and not frozen
                and visible
                and action in (Action.VIEW_SCR, Action.SHARE_CODE_USE)
                and (
                    section in (None, "medications", "allergies", "adverse_reactions")
                    or consent == ConsentState.CORE_AND_ADDITIONAL
                )
            )
            assert decide(actor, action, PATIENT, section, context).allowed is want, (
                action,
                section,
            )


def test_the_patient_cannot_share_anew_while_paused_but_can_always_stop():
    me = Actor("patient", "user:1", patient_id=PATIENT)
    paused = AccessContext(sharing_frozen=True)
    assert not decide(me, Action.SHARING_GRANT, PATIENT, None, paused).allowed
    assert decide(me, Action.SHARING_GRANT, PATIENT, None, AccessContext()).allowed
    for action in (Action.SHARING_REVOKE, Action.SHARING_FREEZE, Action.SHARING_VIEW):
        assert decide(me, action, PATIENT, None, paused).allowed
    other = uuid.uuid4()
    for action in (Action.SHARING_GRANT, Action.SHARING_REVOKE, Action.SHARING_VIEW):
        assert not decide(me, action, other, None, AccessContext()).allowed


def test_proxy_requests_and_decisions():
    me = Actor("patient", "user:1", patient_id=PATIENT)
    assert decide(me, Action.PROXY_REQUEST, uuid.uuid4()).allowed
    assert not decide(me, Action.PROXY_REQUEST, PATIENT).allowed
    team = AccessContext(relationship=Relationship.CARE_TEAM)
    for roles, want in (
        ({Role.REGISTRATION_CLERK}, True),
        ({Role.CLINICIAN}, True),
        ({Role.PRIVACY_OFFICER}, False),
        ({Role.OPERATOR}, False),
    ):
        staff = Actor("staff", "user:9", roles=frozenset(roles), organisation="Y00001")
        assert decide(staff, Action.PROXY_DECIDE, PATIENT, None, team).allowed is want
        assert not decide(staff, Action.PROXY_DECIDE, PATIENT, None, AccessContext()).allowed
    assert not decide(Actor.anonymous(), Action.PROXY_DECIDE, PATIENT, None, team).allowed
