"""The authorization matrix: every role x action x consent state x relationship x
permission answer x section, against the grids below. The grids are the specification,
written by hand (not derived from decide()); 0 unexpected allows, 0 unexpected denials.

Grid cells, for a clinician viewing the SCR, by relationship (rows) and permission to view
(columns: not asked, given, refused, cannot be asked, emergency):
    -  nothing
    C  core sections only (medications, allergies, adverse reactions)
    A  core and additional information (additional needs the activity too)
"""

from __future__ import annotations

import itertools
import uuid

import pytest

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState, Permission, Relationship
from healthspace.access.policy import ALERT, Action, decide
from healthspace.access.roles import Activity, Role

PERMISSIONS = [
    Permission.NOT_ASKED,
    Permission.GIVEN,
    Permission.REFUSED,
    Permission.CANNOT_BE_ASKED,
    Permission.EMERGENCY,
]
RELATIONSHIPS = [Relationship.CARE_TEAM, Relationship.SELF_CLAIMED, Relationship.NONE]

#                     not-asked given refused cannot emergency
GRIDS: dict[ConsentState, dict[Relationship, str]] = {
    ConsentState.IMPLIED: {
        Relationship.CARE_TEAM:    "- C - C A",
        Relationship.SELF_CLAIMED: "- C - C A",
        Relationship.NONE:         "- - - - A",
    },
    ConsentState.CORE_AND_ADDITIONAL: {
        Relationship.CARE_TEAM:    "- A - A A",
        Relationship.SELF_CLAIMED: "- A - A A",
        Relationship.NONE:         "- - - - A",
    },
    ConsentState.CORE_ONLY: {
        Relationship.CARE_TEAM:    "- C - C A",
        Relationship.SELF_CLAIMED: "- C - C A",
        Relationship.NONE:         "- - - - A",
    },
    # dissent: no SCR; only emergency access, which alerts
    ConsentState.DISSENT: {
        Relationship.CARE_TEAM:    "- - - - A",
        Relationship.SELF_CLAIMED: "- - - - A",
        Relationship.NONE:         "- - - - A",
    },
    # hidden: staff see only that it is hidden; not even in an emergency
    ConsentState.HIDDEN: {r: "- - - - -" for r in RELATIONSHIPS},
    ConsentState.DELETION_REQUESTED: {r: "- - - - -" for r in RELATIONSHIPS},
    ConsentState.DELETED: {r: "- - - - -" for r in RELATIONSHIPS},
}  # fmt: skip

CORE, ADDITIONAL = "allergies", "problems"

# Staff as operators create them: roles and activities.
STAFF = {
    "clinician": {Role.CLINICIAN},
    "clinician+additional": {Role.CLINICIAN, Activity.ADDITIONAL_INFORMATION},
    "clerk": {Role.REGISTRATION_CLERK},
    "privacy-officer": {Role.PRIVACY_OFFICER},
    "privacy-officer+clinician": {Role.PRIVACY_OFFICER, Role.CLINICIAN},
    "operator": {Role.OPERATOR},
}
STAFF_ACTIONS = [
    Action.STATS_VIEW,  # about one patient: nobody (aggregates only, below)
    Action.VIEW_SCR,
    Action.VIEW_DEMOGRAPHICS,
    Action.EXPORT_RECORD,
    Action.IMPORT_RECORDS,
    Action.FIND_PATIENT,
    Action.PERMISSION_RECORD,
    Action.RELATIONSHIP_CLAIM,
    Action.EMERGENCY_ACCESS,
    Action.CONSENT_CHANGE,
    Action.CASE_VIEW,
    Action.CASE_DECIDE,
    Action.CONSENT_REQUEST_RECORD,
    Action.LINKAGE_ISSUE,
    Action.LINKAGE_LOOKUP,
    Action.ACCOUNT_LINK_IN_PERSON,
    # the patient's own space, corrections and the Communicator
    Action.ORGANISER_VIEW,
    Action.ORGANISER_CHANGE,
    Action.ORGANISER_EXPORT,
    Action.READINGS_SHARE,
    Action.ADDITION_CHANGE,
    Action.CORRECTION_REQUEST,
    Action.CORRECTION_VIEW,
    Action.CORRECTION_DECIDE,
    Action.RECORD_AMEND,
    Action.THREAD_OPEN,
    Action.MESSAGE_VIEW,
    Action.MESSAGE_SEND,
    Action.THREAD_MANAGE,
    # apps a patient connects to their own record: never staff
    Action.APP_AUTHORISE,
    Action.APP_REVOKE,
]
TEAM = [True, False]  # works at the organisation of the thread / correction request
CANNOT_ASK = {ConsentState.HIDDEN, ConsentState.DELETION_REQUESTED, ConsentState.DELETED}

# What else each staff action needs, in words (rows: action; the role column, then the
# relationship and consent conditions):
#   find patient         clinician, clerk, privacy officer   any (NHS number + birth date)
#   record permission    clinician                           care team or self-claimed;
#                                                            not hidden/deleted/dissent
#   claim relationship   clinician                           not care team; not hidden
#   emergency access     clinician                           any; not hidden/deleted
#   consent change       privacy officer (any record), clinician or clerk (care team)
#   cases, requests      privacy officer                     any
#   linkage              clerk                               care team (their practice)
#   corrections, amend   clinician                           of the practice asked; not deleted
#   open a thread        clinician                           care team or self-claimed; not deleted
#   messages, manage     clinician or clerk                  of the thread's care team
#   organiser, sharing, additions, requesting a correction, connecting apps: patients
#   only, never staff


def expected_staff(name: str, action: Action, consent, rel, perm, section: str, team) -> bool:
    roles = STAFF[name]
    if action in (Action.CORRECTION_VIEW, Action.CORRECTION_DECIDE, Action.RECORD_AMEND):
        return Role.CLINICIAN in roles and team and consent != ConsentState.DELETED
    if action == Action.THREAD_OPEN:
        return (
            Role.CLINICIAN in roles and rel != Relationship.NONE and consent != ConsentState.DELETED
        )
    if action in (Action.MESSAGE_VIEW, Action.MESSAGE_SEND, Action.THREAD_MANAGE):
        # messages are not the SCR: hiding the record does not stop the practice replying
        return bool(roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK}) and team
    if action == Action.VIEW_DEMOGRAPHICS:
        # clerks and clinicians of the patient's care team; consent does not hide who
        # the patient is from their own practice's reception
        return (
            bool(roles & {Role.REGISTRATION_CLERK, Role.CLINICIAN})
            and rel == Relationship.CARE_TEAM
        )
    clinician = Role.CLINICIAN in roles
    if action == Action.FIND_PATIENT:
        return bool(roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK, Role.PRIVACY_OFFICER})
    if action == Action.PERMISSION_RECORD:
        return (
            clinician
            and rel != Relationship.NONE
            and consent not in CANNOT_ASK
            and consent != ConsentState.DISSENT
        )
    if action == Action.RELATIONSHIP_CLAIM:
        return clinician and rel != Relationship.CARE_TEAM and consent not in CANNOT_ASK
    if action == Action.EMERGENCY_ACCESS:
        return clinician and consent not in CANNOT_ASK
    if action == Action.CONSENT_CHANGE:
        return Role.PRIVACY_OFFICER in roles or (
            bool(roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK})
            and rel == Relationship.CARE_TEAM
        )
    if action in (Action.CASE_VIEW, Action.CASE_DECIDE, Action.CONSENT_REQUEST_RECORD):
        return Role.PRIVACY_OFFICER in roles
    if action in (Action.LINKAGE_ISSUE, Action.LINKAGE_LOOKUP, Action.ACCOUNT_LINK_IN_PERSON):
        return Role.REGISTRATION_CLERK in roles and rel == Relationship.CARE_TEAM
    if action != Action.VIEW_SCR or not clinician:
        return False
    cell = GRIDS[consent][rel].split()[PERMISSIONS.index(perm)]
    if section == CORE:
        return cell in ("C", "A")
    return cell == "A" and Activity.ADDITIONAL_INFORMATION in roles


CASES = list(
    itertools.product(
        STAFF, STAFF_ACTIONS, ConsentState, RELATIONSHIPS, PERMISSIONS, [CORE, ADDITIONAL], TEAM
    )
)


def test_the_matrix_covers_every_combination():
    assert len(CASES) == 6 * 31 * 7 * 3 * 5 * 2 * 2 == 78120


@pytest.mark.parametrize("name", list(STAFF))
def test_staff_decisions_match_the_grids(name):
    patient = uuid.uuid4()
    actor = Actor("staff", f"user:{name}", roles=frozenset(STAFF[name]))
    wrong = []
    for _, action, consent, rel, perm, section, team in (c for c in CASES if c[0] == name):
        context = AccessContext(
            consent=consent, relationship=rel, permission=perm, team_member=team
        )
        got = decide(actor, action, patient, section, context).allowed
        want = expected_staff(name, action, consent, rel, perm, section, team)
        if got != want:
            wrong.append(
                f"{action} {consent} {rel} {perm} {section} team={team}: got {got}, want {want}"
            )
    assert not wrong, "\n".join(wrong[:20])


def test_emergency_and_self_claimed_access_alert_the_privacy_officer():
    actor = Actor("staff", "user:1", roles=frozenset({Role.CLINICIAN}))
    for rel, perm, alerts in [
        (Relationship.CARE_TEAM, Permission.GIVEN, False),
        (Relationship.SELF_CLAIMED, Permission.GIVEN, True),
        (Relationship.NONE, Permission.EMERGENCY, True),
        (Relationship.CARE_TEAM, Permission.EMERGENCY, True),
    ]:
        decision = decide(
            actor,
            Action.VIEW_SCR,
            uuid.uuid4(),
            CORE,
            AccessContext(relationship=rel, permission=perm),
        )
        assert decision.allowed
        assert (ALERT in decision.obligations) is alerts, (rel, perm)


def test_staff_with_no_gathered_context_get_nothing():
    actor = Actor(
        "staff", "user:1", roles=frozenset({Role.CLINICIAN, Activity.ADDITIONAL_INFORMATION})
    )
    assert not decide(actor, Action.VIEW_SCR, uuid.uuid4(), CORE).allowed


@pytest.mark.parametrize("consent", list(ConsentState))
@pytest.mark.parametrize("section", [CORE, ADDITIONAL, None])
def test_patients_always_see_their_own_record_and_never_anyone_elses(consent, section):
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    me = Actor("patient", "user:1", patient_id=mine)
    context = AccessContext(consent=consent)
    for action in (Action.VIEW_SCR, Action.EXPORT_RECORD):
        assert decide(me, action, mine, section, context).allowed
        assert not decide(me, action, theirs, section, context).allowed
    assert not decide(me, Action.IMPORT_RECORDS, mine, section, context).allowed


@pytest.mark.parametrize("section", [CORE, ADDITIONAL, "medications"])
def test_a_carer_sees_only_the_sections_granted(section):
    carer = Actor("patient", "user:2", patient_id=uuid.uuid4(), roles=frozenset({Role.CARER}))
    granted = AccessContext(granted_sections=frozenset({"medications", "allergies"}))
    want = section in granted.granted_sections
    assert decide(carer, Action.VIEW_SCR, uuid.uuid4(), section, granted).allowed is want
    assert not decide(carer, Action.EXPORT_RECORD, uuid.uuid4(), section, granted).allowed


def test_anonymous_callers_get_nothing():
    for action in Action:
        assert not decide(Actor.anonymous(), action, uuid.uuid4(), CORE, AccessContext()).allowed


OWN_RECORD_ACTIONS = [
    Action.READINGS_SHARE,
    Action.ADDITION_CHANGE,
    Action.CORRECTION_REQUEST,
    Action.CORRECTION_VIEW,
    Action.THREAD_OPEN,
    Action.MESSAGE_VIEW,
    Action.MESSAGE_SEND,
    Action.THREAD_MANAGE,
    # connecting an app to one's own record, and disconnecting it
    Action.APP_AUTHORISE,
    Action.APP_REVOKE,
]
ORGANISER = [
    Action.ORGANISER_VIEW,
    Action.ORGANISER_CHANGE,
    Action.ORGANISER_EXPORT,
    Action.ACCOUNT_CLOSE,
]


@pytest.mark.parametrize("action", OWN_RECORD_ACTIONS)
@pytest.mark.parametrize("consent", list(ConsentState))
def test_patients_share_correct_and_message_only_about_their_own_record(action, consent):
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    me = Actor("patient", "user:1", patient_id=mine)
    basic = Actor("patient", "user:3")  # no verified record: nothing to share or correct
    context = AccessContext(consent=consent, team_member=True)
    assert decide(me, action, mine, None, context).allowed
    assert not decide(me, action, theirs, None, context).allowed
    assert not decide(basic, action, mine, None, context).allowed
    assert not decide(basic, action, None, None, context).allowed


@pytest.mark.parametrize("action", ORGANISER)
def test_the_organiser_is_the_accounts_own_verified_or_not(action):
    verified = Actor("patient", "user:1", patient_id=uuid.uuid4())
    basic = Actor("patient", "user:2")
    for actor in (verified, basic):
        assert decide(actor, action, None, None, AccessContext(portal_owner=actor.id)).allowed
        # another account's rows, or a guard that did not say whose they are
        assert not decide(actor, action, None, None, AccessContext(portal_owner="user:9")).allowed
        assert not decide(actor, action, None, None, AccessContext()).allowed
        assert not decide(actor, action, None, None, None).allowed
    clinician = Actor("staff", "user:1", roles=frozenset({Role.CLINICIAN}))
    context = AccessContext(portal_owner="user:1", relationship=Relationship.CARE_TEAM)
    assert not decide(clinician, action, None, None, context).allowed


def test_usage_statistics_are_the_operators_and_about_no_patient():
    # aggregate figures: operators (who see no patient data) and the stats command only
    for name, roles in STAFF.items():
        actor = Actor("staff", f"user:{name}", roles=frozenset(roles))
        assert decide(actor, Action.STATS_VIEW, None).allowed == (Role.OPERATOR in roles)
        assert not decide(actor, Action.STATS_VIEW, uuid.uuid4(), None, AccessContext()).allowed
    assert decide(Actor.system("stats"), Action.STATS_VIEW, None).allowed
    for action in Action:
        if action != Action.STATS_VIEW:
            assert not decide(Actor.system("stats"), action, uuid.uuid4()).allowed
    for who in (Actor("patient", "user:9", patient_id=uuid.uuid4()), Actor.anonymous()):
        assert not decide(who, Action.STATS_VIEW, None).allowed


def test_the_worker_sends_reminders_and_nothing_else():
    worker = Actor.system("reminders")
    assert decide(worker, Action.REMINDER_SEND, uuid.uuid4()).allowed
    for action in Action:
        if action != Action.REMINDER_SEND:
            assert not decide(worker, action, uuid.uuid4(), CORE, AccessContext()).allowed


# --- the FHIR API: OAuth tokens and their SMART scopes ---------------------------------
#
# A token acts for a patient (their app) or is a system client registered for one
# organisation. Its scopes narrow what that actor may do; they never widen it. Rows:
# who the token acts for; the actions it may be used for, and with which interactions:
#   patient app     scr/demographics/consent/access log/messages: read or search only;
#                   then only the patient's own record (as on the pages)
#   system client   scr and demographics (read, search), export (read), import (create,
#                   update); only patients registered at its organisation (care team);
#                   nothing of a deleted record; reads not when hidden, dissented;
#                   additional sections only with consent to additional information;
#                   imports whatever the consent (the practice is the record's source)
#   staff, operator commands, anonymous: no token acts for them
from healthspace.access.context import Interaction, TokenScope  # noqa: E402

TOKEN_ACTIONS_READ = {
    Action.VIEW_SCR,
    Action.VIEW_DEMOGRAPHICS,
    Action.CONSENT_VIEW,
    Action.ACCESS_LOG_VIEW,
    Action.MESSAGE_VIEW,
}
SCOPES = {
    "none": frozenset(),
    "patient/*.rs": frozenset({("patient", "*", "rs")}),
    "patient/Observation.r": frozenset({("patient", "Observation", "r")}),
    "patient/*.cruds": frozenset({("patient", "*", "cruds")}),
    "system/*.rs": frozenset({("system", "*", "rs")}),
    "system/*.cruds": frozenset({("system", "*", "cruds")}),
    "system/Observation.c": frozenset({("system", "Observation", "c")}),
}
TYPES = ["Observation", "Patient"]
MINE, THEIRS = uuid.UUID(int=1), uuid.UUID(int=2)
TOKEN_ACTORS = {
    "patient-app": Actor("patient", "user:1", patient_id=MINE, client_id="app"),
    "system-client": Actor.client("feed", organisation="Y00001"),
    "clinician-with-token": Actor(
        "staff", "user:3", roles=frozenset({Role.CLINICIAN}), organisation="Y00001", client_id="x"
    ),
}
CLIENT_READS_REFUSED = {
    ConsentState.HIDDEN,
    ConsentState.DELETION_REQUESTED,
    ConsentState.DELETED,
    ConsentState.DISSENT,
}


def _granted(scope: str, compartment: str, rtype: str, interaction: Interaction) -> bool:
    return any(
        c == compartment and t in ("*", rtype) and interaction.value in letters
        for c, t, letters in SCOPES[scope]
    )


def expected_token(name, action, interaction, scope, rtype, patient, rel, consent, section):
    if name == "patient-app":
        return (
            action in TOKEN_ACTIONS_READ
            and interaction in (Interaction.READ, Interaction.SEARCH)
            and _granted(scope, "patient", rtype, interaction)
            and patient == MINE
        )
    if name == "system-client":
        if action == Action.IMPORT_RECORDS:
            if interaction not in (Interaction.CREATE, Interaction.UPDATE):
                return False
            if not _granted(scope, "system", rtype, interaction):
                return False
            if patient is None:
                return True  # the feed may start; each patient is then asked apart
            return rel == Relationship.CARE_TEAM and consent != ConsentState.DELETED
        if action == Action.EXPORT_RECORD:
            ok = interaction == Interaction.READ
        elif action in (Action.VIEW_SCR, Action.VIEW_DEMOGRAPHICS):
            ok = interaction in (Interaction.READ, Interaction.SEARCH)
        else:
            return False
        if not ok or not _granted(scope, "system", rtype, interaction):
            return False
        if rel != Relationship.CARE_TEAM or consent == ConsentState.DELETED:
            return False
        if action == Action.VIEW_DEMOGRAPHICS:
            return True
        if consent in CLIENT_READS_REFUSED:
            return False
        return section == CORE or consent == ConsentState.CORE_AND_ADDITIONAL
    return False


TOKEN_CASES = list(
    itertools.product(
        TOKEN_ACTORS,
        list(Action),
        list(Interaction),
        SCOPES,
        TYPES,
        [MINE, THEIRS, None],
        RELATIONSHIPS,
        ConsentState,
        [CORE, ADDITIONAL],
    )
)


def test_the_token_matrix_covers_every_combination():
    assert len(TOKEN_CASES) == 3 * len(Action) * 5 * 7 * 2 * 3 * 3 * 7 * 2


@pytest.mark.parametrize("name", list(TOKEN_ACTORS))
def test_token_decisions_match_the_scope_grid(name):
    actor = TOKEN_ACTORS[name]
    wrong = []
    for _, action, interaction, scope, rtype, patient, rel, consent, section in (
        c for c in TOKEN_CASES if c[0] == name
    ):
        context = AccessContext(
            consent=consent,
            relationship=rel,
            token=TokenScope(SCOPES[scope], rtype, interaction),
        )
        got = decide(actor, action, patient, section, context).allowed
        want = expected_token(
            name, action, interaction, scope, rtype, patient, rel, consent, section
        )
        if got != want:
            wrong.append(
                f"{action} {interaction} {scope} {rtype} {patient} {rel} {consent} {section}: "
                f"got {got}, want {want}"
            )
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("name", list(TOKEN_ACTORS))
def test_a_token_without_gathered_scopes_gets_nothing(name):
    actor = TOKEN_ACTORS[name]
    for action in Action:
        for context in (None, AccessContext(relationship=Relationship.CARE_TEAM)):
            assert not decide(actor, action, MINE, CORE, context).allowed, action


def test_a_read_only_scope_never_writes():
    feed = TOKEN_ACTORS["system-client"]
    for scope in ("system/*.rs", "patient/*.rs", "none"):
        for interaction in Interaction:
            context = AccessContext(
                relationship=Relationship.CARE_TEAM,
                token=TokenScope(SCOPES[scope], "Observation", interaction),
            )
            for patient in (MINE, None):
                assert not decide(feed, Action.IMPORT_RECORDS, patient, None, context).allowed
