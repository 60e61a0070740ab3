"""The one policy decision point. Pure: no I/O, no ORM, no clock.

Every page, API route and command asks ``decide`` before touching patient data and
records the outcome with ``audit``. The clinician rules (legitimate relationship,
permission to view, consent) arrive with the access issue and extend this function;
nothing outside it decides access.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from healthspace.access.actors import Actor
from healthspace.access.context import (
    AccessContext,
    Compartment,
    ConsentState,
    Interaction,
    Permission,
    Relationship,
)
from healthspace.access.roles import Activity, Role


class Action(StrEnum):
    VIEW_SCR = "scr.view"
    VIEW_DEMOGRAPHICS = "demographics.view"
    CONSENT_VIEW = "consent.view"
    CONSENT_CHANGE = "consent.change"
    ACCESS_LOG_VIEW = "audit.view"  # "who has looked at my record"
    CASE_OPEN = "case.open"  # "I don't recognise this"
    EXPORT_RECORD = "record.export"
    IMPORT_RECORDS = "record.import"
    # staff: finding a patient, and what they record before a view
    FIND_PATIENT = "patient.find"  # NHS number + date of birth: a check, not a search
    PERMISSION_RECORD = "permission.record"  # the patient's answer to "may I look?"
    RELATIONSHIP_CLAIM = "relationship.claim"  # self-claimed relationship, with a reason
    EMERGENCY_ACCESS = "emergency.access"  # overrides a refusal; alerts
    # privacy officers
    CASE_VIEW = "case.view"
    CASE_DECIDE = "case.decide"
    CONSENT_REQUEST_RECORD = "consent.request-record"  # a patient's written request
    # identity (accounts): a registration clerk acts for their own practice's patients
    LINKAGE_ISSUE = "linkage.issue"
    LINKAGE_VERIFY = "linkage.verify"
    LINKAGE_LOOKUP = "linkage.lookup"
    ACCOUNT_LINK_IN_PERSON = "account.link-in-person"
    ACCOUNT_STAFF_CREATE = "account.staff-create"
    ACCOUNT_STAFF_SETUP = "account.staff-setup"
    ACCOUNT_COMPROMISE_REPORTED = "account.compromise-reported"
    ACCOUNT_SECOND_FACTOR_CHANGED = "account.second-factor-changed"
    ACCOUNT_STAFF_PASSKEYS_RESET = "account.staff-passkeys-reset"
    # the patient's own space: the health organiser belongs to the account (basic or
    # verified); sharing readings and additions go into the SCR (verified only)
    ORGANISER_VIEW = "organiser.view"
    ORGANISER_CHANGE = "organiser.change"
    ORGANISER_EXPORT = "organiser.export"
    READINGS_SHARE = "organiser.share"  # readings shared with the care team (patient-recorded)
    REMINDER_SEND = "organiser.reminder"  # the worker emails an appointment reminder
    ADDITION_CHANGE = "scr.addition-change"  # preferences and needs "added by the patient"
    # corrections: "this looks wrong" on an SCR item, answered by the item's practice
    CORRECTION_REQUEST = "correction.request"
    CORRECTION_VIEW = "correction.view"
    CORRECTION_DECIDE = "correction.decide"
    RECORD_AMEND = "record.amend"  # a new version of an item, with the reason
    # Communicator: threads between a patient and a care team
    THREAD_OPEN = "message.thread-open"
    MESSAGE_VIEW = "message.view"
    MESSAGE_SEND = "message.send"
    THREAD_MANAGE = "message.manage"  # assign, close, reopen
    # apps the patient connects to their record (SMART on FHIR): approving and disconnecting
    APP_AUTHORISE = "app.authorise"
    APP_REVOKE = "app.revoke"
    # sharing (consent.sharing): grants to another account, practice-approved proxies,
    # one-time share codes for a professional, and the pause ("I'm being pressured")
    SHARING_VIEW = "sharing.view"  # the patient's own sharing page
    SHARING_GRANT = "sharing.grant"  # share with an account, make a share code
    SHARING_REVOKE = "sharing.revoke"  # stop a grant, cancel a code (always possible)
    SHARING_FREEZE = "sharing.freeze"  # pause all sharing / turn it back on
    SHARING_ACCEPT = "sharing.accept"  # the grantee accepts or declines an invitation
    SHARE_CODE_USE = "sharing.code-use"  # a professional typed a code
    PROXY_REQUEST = "proxy.request"  # someone asks the practice to act for a patient
    PROXY_DECIDE = "proxy.decide"  # the practice approves, refuses or ends a proxy
    # closing the account: its own data crypto-shredded (portability; basic accounts too)
    ACCOUNT_CLOSE = "account.close"
    # usage statistics (ops): aggregate counts over the audit trail, about no patient
    STATS_VIEW = "stats.view"


# Commands an operator runs on the server, and what each may do.
SYSTEM_PURPOSES: dict[str, frozenset[Action]] = {
    "import": frozenset({Action.IMPORT_RECORDS}),
    # a subject access request run by an operator: the record and the account's own data
    "export": frozenset({Action.EXPORT_RECORD, Action.ORGANISER_EXPORT}),
    "demo": frozenset({Action.IMPORT_RECORDS, Action.EXPORT_RECORD}),
    # `healthspace linkage-key`: run on the server by someone the service trusts
    "linkage": frozenset({Action.LINKAGE_ISSUE}),
    # the background worker (`healthspace worker`): appointment reminders, which carry a
    # date and time and never the appointment's details
    "reminders": frozenset({Action.REMINDER_SEND}),
    # `healthspace stats`: aggregate usage figures, small numbers suppressed
    "stats": frozenset({Action.STATS_VIEW}),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    obligations: tuple[str, ...] = ()


DENY_NO_RELATIONSHIP = Decision(False, "no-legitimate-relationship")

# Sections of the SCR (records.models.Section values). Kept here as plain names so this
# module stays pure and below records in the dependency order.
CORE_SECTIONS = frozenset({"medications", "allergies", "adverse_reactions"})
DEMOGRAPHICS = "demographics"

# What a patient may do with their own record (never with anyone else's).
PATIENT_OWN_ACTIONS = frozenset(
    {
        Action.VIEW_SCR,
        Action.EXPORT_RECORD,
        Action.VIEW_DEMOGRAPHICS,
        Action.CONSENT_VIEW,
        Action.CONSENT_CHANGE,
        Action.ACCESS_LOG_VIEW,
        Action.CASE_OPEN,
        Action.READINGS_SHARE,
        Action.ADDITION_CHANGE,
        Action.CORRECTION_REQUEST,
        Action.CORRECTION_VIEW,
        Action.THREAD_OPEN,
        Action.MESSAGE_VIEW,
        Action.MESSAGE_SEND,
        Action.THREAD_MANAGE,
        Action.APP_AUTHORISE,
        Action.APP_REVOKE,
        Action.SHARING_VIEW,
        Action.SHARING_GRANT,
        Action.SHARING_REVOKE,
        Action.SHARING_FREEZE,
    }
)
# What a grantee (carer) or an approved proxy may do with the record shared with them:
# read the granted sections, nothing else (no export, no change, no message sent).
# "organiser" and "messages" are the patient's account spaces, granted like sections.
PORTAL_SECTIONS = frozenset({"organiser", "messages"})
SHARED_READ_ACTIONS = frozenset({Action.VIEW_SCR, Action.ORGANISER_VIEW, Action.MESSAGE_VIEW})
SHARING_PAUSED = Decision(False, "sharing-paused")
# The health organiser: the account's own, whether or not it is linked to a record.
# Closing the account is the account's own too (it shreds only what the account keeps).
ORGANISER_ACTIONS = frozenset(
    {
        Action.ORGANISER_VIEW,
        Action.ORGANISER_CHANGE,
        Action.ORGANISER_EXPORT,
        Action.ACCOUNT_CLOSE,
    }
)

ALERT = "alert-privacy-officer"
AUDIT = "audit"
RECORD_REASON = "record-reason"


# --- the FHIR API: OAuth tokens (smart app) ---------------------------------------------
# What a token may be used for, by whom it acts for, and which interactions each action is.
# A token adds no way in: the rules for the person (or system) it acts for still apply,
# and the token's scopes narrow them further.
READ_INTERACTIONS = frozenset({Interaction.READ, Interaction.SEARCH})
TOKEN_ACTIONS: dict[str, dict[Action, frozenset[Interaction]]] = {
    # a patient's app reads the patient's own record (never writes it, never bulk exports)
    "patient": {
        Action.VIEW_SCR: READ_INTERACTIONS,
        Action.VIEW_DEMOGRAPHICS: READ_INTERACTIONS,
        Action.CONSENT_VIEW: READ_INTERACTIONS,
        Action.ACCESS_LOG_VIEW: READ_INTERACTIONS,
        Action.MESSAGE_VIEW: READ_INTERACTIONS,
    },
    # a system client reads, exports and feeds its own organisation's registered patients
    "client": {
        Action.VIEW_SCR: READ_INTERACTIONS,
        Action.VIEW_DEMOGRAPHICS: READ_INTERACTIONS,
        Action.EXPORT_RECORD: frozenset({Interaction.READ}),
        Action.IMPORT_RECORDS: frozenset({Interaction.CREATE, Interaction.UPDATE}),
    },
}
TOKEN_COMPARTMENTS = {"patient": Compartment.PATIENT, "client": Compartment.SYSTEM}
SCOPE_NOT_GRANTED = Decision(False, "scope-not-granted")


def token_refusal(actor: Actor, action: Action, context: AccessContext | None) -> Decision | None:
    """Why a request made with an OAuth token is refused before the actor's own rules are
    asked, or None. Fail closed: no gathered scope, no access."""
    allowed = TOKEN_ACTIONS.get(actor.kind)
    if allowed is None:  # staff, operator commands: no token acts for them
        return Decision(False, "no-tokens-for-this-actor")
    if action not in allowed:
        return Decision(False, "not-available-to-apps")
    if context is None or context.token is None:
        return SCOPE_NOT_GRANTED
    if context.token.interaction not in allowed[action]:
        return Decision(False, "interaction-is-not-this-action")
    if not context.token.permits(TOKEN_COMPARTMENTS[actor.kind]):
        return SCOPE_NOT_GRANTED
    return None


def decide(
    actor: Actor,
    action: Action,
    patient_id: uuid.UUID | None,
    section: str | None = None,
    context: AccessContext | None = None,
) -> Decision:
    if actor.client_id is not None or actor.kind == "client":
        refusal = token_refusal(actor, action, context)
        if refusal is not None:
            return refusal
    if actor.kind == "client":
        return _client(action, patient_id, section, context)
    if actor.kind == "system":
        purpose = actor.id.removeprefix("cli:")
        if action in SYSTEM_PURPOSES.get(purpose, frozenset()):
            return Decision(True, f"operator-command:{purpose}", (AUDIT,))
        return Decision(False, "command-not-permitted")
    if actor.kind == "patient":
        return _patient(actor, action, patient_id, section, context)
    if actor.kind == "staff":
        return _staff(actor, action, patient_id, section, context)
    if actor.kind == "share-code":
        return _share_code(action, section, context)
    return DENY_NO_RELATIONSHIP


def _shared(
    actor: Actor, action: Action, section: str | None, context: AccessContext | None
) -> Decision:
    """A grantee (Role.CARER) or a practice-approved proxy (Role.PROXY) on the record of
    the patient who shared it: the granted sections, read-only. The guard gathers only a
    live grant of this grantee for this patient; no grant, no sections, nothing."""
    if context is None:
        return DENY_NO_RELATIONSHIP
    if context.sharing_frozen:
        return SHARING_PAUSED
    reason = "proxy-approved" if Role.PROXY in actor.roles else "carer-grant"
    granted = context.granted_sections
    if action == Action.SHARING_ACCEPT:
        return Decision(True, reason, (AUDIT,)) if granted else DENY_NO_RELATIONSHIP
    if action not in SHARED_READ_ACTIONS:
        return Decision(False, "shared-read-only")  # never export, change or send
    if action == Action.ORGANISER_VIEW:
        ok = "organiser" in granted
    elif action == Action.MESSAGE_VIEW:
        ok = "messages" in granted
    elif section is None:  # may the record be opened at all: some SCR section is shared
        ok = bool(granted - PORTAL_SECTIONS)
    else:
        ok = section in granted and section not in PORTAL_SECTIONS
    return Decision(True, reason, (AUDIT,)) if ok else Decision(False, "section-not-shared")


def _share_code(action: Action, section: str | None, context: AccessContext | None) -> Decision:
    """A professional with a patient's one-time share code: the summary only, read-only,
    while the code's viewing minutes last. The summary is what the patient's consent lets
    any clinician see: core, and additional information only with the patient's agreement;
    nothing of a hidden, dissented or deleted record."""
    if context is None or not context.share_code_live:
        return Decision(False, "share-code-not-live")
    if context.sharing_frozen:
        return SHARING_PAUSED
    if action not in (Action.VIEW_SCR, Action.SHARE_CODE_USE):
        return Decision(False, "share-code-summary-only")
    if context.consent in CLIENT_UNAVAILABLE:
        return Decision(False, CLIENT_UNAVAILABLE[context.consent])
    if context.consent == ConsentState.DISSENT:
        return Decision(False, "patient-dissented")
    if section is None or section in CORE_SECTIONS:
        return Decision(True, "share-code", (AUDIT,))
    if context.consent != ConsentState.CORE_AND_ADDITIONAL:
        return Decision(False, "no-consent-to-additional")
    return Decision(True, "share-code", (AUDIT,))


def _patient(
    actor: Actor,
    action: Action,
    patient_id: uuid.UUID | None,
    section: str | None,
    context: AccessContext | None,
) -> Decision:
    if actor.roles & {Role.CARER, Role.PROXY}:
        if patient_id is None or patient_id == actor.patient_id:
            return DENY_NO_RELATIONSHIP  # a grant is always of someone else's record
        return _shared(actor, action, section, context)
    if action == Action.PROXY_REQUEST:
        # asking the practice (NHS number and date of birth matched by the service):
        # it shows nothing of the record; the practice decides
        if patient_id is not None and patient_id != actor.patient_id:
            return Decision(True, "proxy-request", (AUDIT,))
        return Decision(False, "proxy-for-own-record")
    if action == Action.SHARING_GRANT and context is not None and context.sharing_frozen:
        return SHARING_PAUSED  # no new grant or code while sharing is paused
    if action in ORGANISER_ACTIONS:
        # rows are scoped by their owner; the owner is the account itself, never a record
        # someone else names in a request
        if context is not None and context.portal_owner == actor.id:
            return Decision(True, "own-organiser", (AUDIT,))
        return DENY_NO_RELATIONSHIP
    if action not in PATIENT_OWN_ACTIONS:
        return Decision(False, "not-permitted-for-patients")
    if actor.patient_id is not None and patient_id == actor.patient_id:
        # Their own record, whatever its consent state: hiding or dissent limit staff.
        return Decision(True, "own-record", (AUDIT,))
    return DENY_NO_RELATIONSHIP


# What a registration clerk does for their own practice's patients (identity issue).
CLERK_PRACTICE_ACTIONS = frozenset(
    {Action.LINKAGE_ISSUE, Action.LINKAGE_LOOKUP, Action.ACCOUNT_LINK_IN_PERSON}
)
# Recording what precedes a view: any clinician may ask; the view itself is decided apart.
CLINICIAN_PRE_VIEW_ACTIONS = frozenset(
    {Action.PERMISSION_RECORD, Action.RELATIONSHIP_CLAIM, Action.EMERGENCY_ACCESS}
)
PRIVACY_OFFICER_ACTIONS = frozenset(
    {Action.CASE_VIEW, Action.CASE_DECIDE, Action.CONSENT_REQUEST_RECORD}
)
# Corrections: the clinicians of the practice the request went to read the patient's
# words and the item, and answer (amend, or explain why it stays).
CORRECTION_STAFF_ACTIONS = frozenset(
    {Action.CORRECTION_VIEW, Action.CORRECTION_DECIDE, Action.RECORD_AMEND}
)
# Communicator: the care team of a thread (clinicians, and the reception staff who triage
# a practice's messages); nobody else, whatever their role.
MESSAGE_STAFF_ACTIONS = frozenset({Action.MESSAGE_VIEW, Action.MESSAGE_SEND, Action.THREAD_MANAGE})


def _staff(
    actor: Actor,
    action: Action,
    patient_id: uuid.UUID | None,
    section: str | None,
    context: AccessContext | None,
) -> Decision:
    roles = actor.roles
    if action == Action.STATS_VIEW:
        # aggregate figures, never about one patient: the operator's (who sees no patient
        # data at all) and nobody else's
        if Role.OPERATOR in roles and patient_id is None:
            return Decision(True, "operator-aggregate-statistics", (AUDIT,))
        return Decision(False, "not-an-operator")
    if action in PRIVACY_OFFICER_ACTIONS:
        # cases, alerts and consent requests: the privacy officer's, about any record
        # (they are the service's check on everyone else); no clinical content comes with it
        if Role.PRIVACY_OFFICER in roles:
            return Decision(True, "privacy-officer", (AUDIT,))
        return Decision(False, "not-a-privacy-officer")
    if action == Action.FIND_PATIENT:
        # NHS number and date of birth must both match: a check of a patient in front of
        # them, not a search. Finding shows who it is, never the record.
        if roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK, Role.PRIVACY_OFFICER}:
            return Decision(True, "nhs-number-and-birth-date-matched", (AUDIT,))
        return Decision(False, "role-has-no-patient-access")
    if action == Action.CONSENT_CHANGE and Role.PRIVACY_OFFICER in roles:
        # unhiding and deletion decisions, for any record: nothing to gather
        return Decision(True, "privacy-officer", (AUDIT,))
    if context is None:
        return DENY_NO_RELATIONSHIP  # a guard that gathered nothing gets nothing
    if action in CORRECTION_STAFF_ACTIONS:
        if Role.CLINICIAN not in roles:
            return Decision(False, "role-has-no-clinical-access")
        if context.consent == ConsentState.DELETED:
            return Decision(False, "record-deleted")
        if not context.team_member:
            return Decision(False, "not-the-practice-asked")
        # the patient asked this practice to look at the item: no permission to ask for
        return Decision(True, "correction-requested", (AUDIT,))
    if action in MESSAGE_STAFF_ACTIONS:
        if not roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK}:
            return Decision(False, "role-has-no-patient-access")
        if not context.team_member:
            return Decision(False, "not-in-the-care-team-of-the-thread")
        return Decision(True, "care-team-of-thread", (AUDIT,))
    if action == Action.THREAD_OPEN:
        # a clinician who cares for the patient (their practice, or a team treating them
        # with a claimed relationship) starts a conversation; the thread is their team's
        if Role.CLINICIAN not in roles:
            return Decision(False, "role-has-no-clinical-access")
        if context.consent == ConsentState.DELETED:
            return Decision(False, "record-deleted")
        if context.relationship == Relationship.NONE:
            return DENY_NO_RELATIONSHIP
        return Decision(True, str(context.relationship), (AUDIT,))
    if action == Action.PROXY_DECIDE:
        # the patient's own practice approves (or refuses, or ends) a proxy: its clerks,
        # who check identity and the relationship, and its clinicians
        if not roles & {Role.REGISTRATION_CLERK, Role.CLINICIAN}:
            return Decision(False, "role-cannot-approve-proxies")
        if context.relationship == Relationship.CARE_TEAM:
            return Decision(True, "care-team", (AUDIT,))
        return Decision(False, "not-registered-at-staff-practice")
    if action in CLERK_PRACTICE_ACTIONS:
        if Role.REGISTRATION_CLERK not in roles:
            return Decision(False, "not-a-registration-clerk")
        if context.relationship == Relationship.CARE_TEAM:
            return Decision(True, "registration-clerk-of-practice", (AUDIT,))
        return Decision(False, "not-registered-at-clerks-practice")
    if action in CLINICIAN_PRE_VIEW_ACTIONS:
        if Role.CLINICIAN not in roles:
            return Decision(False, "role-has-no-clinical-access")
        # nothing to ask permission for when nobody may see the record
        if context.consent == ConsentState.DELETED:
            return Decision(False, "record-deleted")
        if context.consent in (ConsentState.HIDDEN, ConsentState.DELETION_REQUESTED):
            return Decision(False, "record-hidden")
        if action == Action.EMERGENCY_ACCESS:
            return Decision(True, "emergency-access", (AUDIT, ALERT, RECORD_REASON))
        if action == Action.RELATIONSHIP_CLAIM:
            if context.relationship == Relationship.CARE_TEAM:
                return Decision(False, "already-in-care-team")
            return Decision(True, "self-claimed-relationship", (AUDIT, ALERT, RECORD_REASON))
        if context.consent == ConsentState.DISSENT:
            return Decision(False, "patient-dissented")  # only an emergency overrides it
        # permission to view is asked of a patient the clinician cares for
        if context.relationship == Relationship.NONE:
            return DENY_NO_RELATIONSHIP
        return Decision(True, str(context.relationship), (AUDIT,))
    if action == Action.VIEW_DEMOGRAPHICS:
        if not roles & {Role.REGISTRATION_CLERK, Role.CLINICIAN}:
            return Decision(False, "role-has-no-patient-access")
        if context.relationship == Relationship.CARE_TEAM:
            return Decision(True, "care-team", (AUDIT,))
        return DENY_NO_RELATIONSHIP
    if action == Action.CONSENT_CHANGE:
        # privacy officers decide unhiding and deletion for any record; the practice
        # records a patient's choice only for its own patients
        if Role.PRIVACY_OFFICER in roles:
            return Decision(True, "privacy-officer", (AUDIT,))
        if roles & {Role.CLINICIAN, Role.REGISTRATION_CLERK}:
            if context.relationship == Relationship.CARE_TEAM:
                return Decision(True, "care-team", (AUDIT,))
            return DENY_NO_RELATIONSHIP
        return Decision(False, "role-cannot-record-consent")
    if action != Action.VIEW_SCR:
        return Decision(False, "not-permitted-for-staff")
    if Role.CLINICIAN not in roles:
        # clerks: demographics only; privacy officers: cases, no clinical view unless also
        # clinicians; operators: no clinical data at all
        return Decision(False, "role-has-no-clinical-access")

    consent = context.consent
    emergency = context.permission == Permission.EMERGENCY
    if consent in (ConsentState.HIDDEN, ConsentState.DELETION_REQUESTED):
        return Decision(False, "record-hidden")  # unhiding is a privacy officer's decision
    if consent == ConsentState.DELETED:
        return Decision(False, "record-deleted")
    if consent == ConsentState.DISSENT and not emergency:
        return Decision(False, "patient-dissented")

    obligations: list[str] = [AUDIT]
    if emergency:
        reason = "emergency-access"
        obligations += [ALERT, RECORD_REASON]
    else:
        if context.relationship == Relationship.NONE:
            return DENY_NO_RELATIONSHIP
        if context.permission == Permission.REFUSED:
            return Decision(False, "permission-refused")
        if context.permission == Permission.NOT_ASKED:
            return Decision(False, "permission-not-asked")
        reason = (
            "permission-given"
            if context.permission == Permission.GIVEN
            else "patient-cannot-be-asked"
        )
        if context.permission == Permission.CANNOT_BE_ASKED:
            obligations.append(RECORD_REASON)
        if context.relationship == Relationship.SELF_CLAIMED:
            reason += "+self-claimed-relationship"
            obligations += [ALERT, RECORD_REASON]

    if section is None or section in CORE_SECTIONS or section == DEMOGRAPHICS:
        return Decision(True, reason, tuple(dict.fromkeys(obligations)))
    # additional information: the activity, and the patient's agreement (or an emergency)
    if Activity.ADDITIONAL_INFORMATION not in actor.roles:
        return Decision(False, "activity-not-held")
    if consent != ConsentState.CORE_AND_ADDITIONAL and not emergency:
        return Decision(False, "no-consent-to-additional")
    return Decision(True, reason, tuple(dict.fromkeys(obligations)))


CLIENT_UNAVAILABLE = {
    ConsentState.HIDDEN: "record-hidden",
    ConsentState.DELETION_REQUESTED: "record-hidden",
    ConsentState.DELETED: "record-deleted",
}


def _client(
    action: Action,
    patient_id: uuid.UUID | None,
    section: str | None,
    context: AccessContext | None,
) -> Decision:
    """A system client (a GP system, a clinical system) registered for one organisation:
    only that organisation's registered patients (``Relationship.CARE_TEAM``, gathered from
    the patient's registered practice), never everyone."""
    if context is None:
        return DENY_NO_RELATIONSHIP
    if action == Action.IMPORT_RECORDS and patient_id is None:
        # may a feed start at all (its scopes were checked); each patient it names is then
        # asked apart, before anything is written
        return Decision(True, "care-team", (AUDIT,))
    if context.relationship != Relationship.CARE_TEAM:
        return Decision(False, "not-registered-at-client-organisation")
    if context.consent == ConsentState.DELETED:
        return Decision(False, "record-deleted")  # a feed must not bring it back either
    if action == Action.IMPORT_RECORDS:
        # the practice's feed is the record's source: consent limits who sees, not what
        # the practice records
        return Decision(True, "care-team", (AUDIT,))
    if action == Action.VIEW_DEMOGRAPHICS:
        return Decision(True, "care-team", (AUDIT,))
    if context.consent in CLIENT_UNAVAILABLE:
        return Decision(False, CLIENT_UNAVAILABLE[context.consent])
    if context.consent == ConsentState.DISSENT:
        return Decision(False, "patient-dissented")
    if section is None or section in CORE_SECTIONS or section == DEMOGRAPHICS:
        return Decision(True, "care-team", (AUDIT,))
    if context.consent != ConsentState.CORE_AND_ADDITIONAL:
        return Decision(False, "no-consent-to-additional")
    return Decision(True, "care-team", (AUDIT,))
