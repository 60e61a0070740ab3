"""HealthSpace audit events as FHIR R4 AuditEvent resources, in the style of IHE BALP.

Pure: no ORM, no settings, no clock. The caller loads the event and resolves the person
behind its actor label (:class:`ActorInfo`: names and organisations live in ``accounts``,
which ``audit`` must not import). Integrators' view of the mapping: docs/audit-fhir.md.

What never reaches the resource: ``reason`` as written (some reasons carry free text, such
as an email subject) and any ``detail`` key not read below (notes, consent states,
counts of other things). Reasons and detail values are copied only when they are known
codes or match a narrow pattern, so a service that starts writing something new into
``detail`` cannot leak it through the API by accident.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from healthspace.audit import chain

if TYPE_CHECKING:
    from healthspace.audit.models import AuditEvent

# --- HealthSpace code systems and identifier systems (one place) --------------------------
HS_FHIR = "https://healthspace.example/fhir"
CS_ACTION = f"{HS_FHIR}/CodeSystem/audit-action"  # our action codes, e.g. scr.view
CS_ACCESS_BASIS = f"{HS_FHIR}/CodeSystem/access-basis"  # why access.decide allowed it
CS_ROLE = f"{HS_FHIR}/CodeSystem/role"  # clinician, registration-clerk, ...
CS_SCR_SECTION = f"{HS_FHIR}/CodeSystem/scr-section"  # allergies, medications, ...
ID_AUDIT_CHAIN = f"{HS_FHIR}/NamingSystem/audit-chain"  # value: the event's chain_key
ID_USER = f"{HS_FHIR}/NamingSystem/user"  # an opaque user reference from ActorInfo
ID_OAUTH_CLIENT = f"{HS_FHIR}/NamingSystem/oauth-client"  # a registered app or system client

# --- External code systems -----------------------------------------------------------------
DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
AUDIT_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SECURITY_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
ODS_ORGANISATION = "https://fhir.nhs.uk/Id/ods-organization-code"

OBSERVER_NAME = "HealthSpace"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code} | ({"display": display} if display else {})


# Event types (AuditEvent.type).
PATIENT_RECORD = _coding(DCM, "110110", "Patient Record")
EXPORT = _coding(DCM, "110106", "Export")
IMPORT = _coding(DCM, "110107", "Import")
AUDIT_LOG_USED = _coding(DCM, "110101", "Audit Log Used")
SECURITY_ALERT = _coding(DCM, "110113", "Security Alert")
USER_AUTHENTICATION = _coding(DCM, "110114", "User Authentication")
APPLICATION_ACTIVITY = _coding(DCM, "110100", "Application Activity")
REST = _coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation")

# Subtypes (AuditEvent.subtype).
READ = _coding(RESTFUL_INTERACTION, "read", "read")
SEARCH = _coding(RESTFUL_INTERACTION, "search-type", "search type")
CREATE = _coding(RESTFUL_INTERACTION, "create", "create")
UPDATE = _coding(RESTFUL_INTERACTION, "update", "update")
LOGIN = _coding(DCM, "110122", "Login")
LOGOUT = _coding(DCM, "110123", "Logout")
EMERGENCY_OVERRIDE_STARTED = _coding(DCM, "110127", "Emergency Override Started")
SECURITY_ROLES_CHANGED = _coding(DCM, "110136", "Security Roles Changed")
USER_ATTRIBUTES_CHANGED = _coding(DCM, "110137", "User Security Attributes Changed")


@dataclass(frozen=True)
class ActorInfo:
    """The person (or command) behind an event's actor label, resolved by the caller.

    ``user_ref``: a FHIR reference such as ``Practitioner/abc`` (becomes ``who.reference``)
    or any other opaque id (becomes ``who.identifier`` in :data:`ID_USER`); never a
    database primary key the caller has not chosen to publish.
    """

    display: str
    roles: tuple[str, ...] = ()
    organisation_ods: str | None = None
    organisation_name: str | None = None
    user_ref: str | None = None


@dataclass(frozen=True)
class EventKind:
    type: dict[str, str]
    subtype: dict[str, str] | None
    action: str  # C R U D E


# HealthSpace action -> BALP/DICOM type, subtype, action code. Record reads and changes
# are DICOM "Patient Record" with the RESTful interaction as subtype (they happen on pages
# as well as through the API, so "rest" would claim too much); a search across patients is
# a RESTful search (BALP Query). Searches are "E": FHIR defines E to cover queries.
ACTIONS: dict[str, EventKind] = {
    "scr.view": EventKind(PATIENT_RECORD, READ, "R"),
    "demographics.view": EventKind(PATIENT_RECORD, READ, "R"),
    "consent.view": EventKind(PATIENT_RECORD, READ, "R"),
    "linkage.lookup": EventKind(PATIENT_RECORD, READ, "R"),
    "consent.change": EventKind(PATIENT_RECORD, UPDATE, "U"),
    "permission.record": EventKind(PATIENT_RECORD, CREATE, "C"),
    "relationship.claim": EventKind(PATIENT_RECORD, CREATE, "C"),
    "record.export": EventKind(EXPORT, None, "R"),
    "record.import": EventKind(IMPORT, None, "C"),
    "patient.find": EventKind(REST, SEARCH, "E"),
    "audit.view": EventKind(AUDIT_LOG_USED, SEARCH, "E"),
    "emergency.access": EventKind(SECURITY_ALERT, EMERGENCY_OVERRIDE_STARTED, "E"),
    # A privacy case is raised about an access: a security alert the patient starts.
    "case.open": EventKind(SECURITY_ALERT, CREATE, "C"),
    "case.decide": EventKind(SECURITY_ALERT, UPDATE, "U"),
    "account.compromise-reported": EventKind(SECURITY_ALERT, None, "C"),
    "linkage.issue": EventKind(SECURITY_ALERT, USER_ATTRIBUTES_CHANGED, "C"),
    "linkage.verify": EventKind(USER_AUTHENTICATION, None, "E"),
    "account.link-in-person": EventKind(SECURITY_ALERT, USER_ATTRIBUTES_CHANGED, "U"),
    "account.staff-create": EventKind(SECURITY_ALERT, SECURITY_ROLES_CHANGED, "C"),
    "account.staff-setup": EventKind(SECURITY_ALERT, USER_ATTRIBUTES_CHANGED, "U"),
    "account.second-factor-changed": EventKind(SECURITY_ALERT, USER_ATTRIBUTES_CHANGED, "U"),
    "account.staff-passkeys-reset": EventKind(SECURITY_ALERT, USER_ATTRIBUTES_CHANGED, "D"),
    "account.login": EventKind(USER_AUTHENTICATION, LOGIN, "E"),
    "account.logout": EventKind(USER_AUTHENTICATION, LOGOUT, "E"),
    # data keys that opened nothing deleted from the key store (vault.orphans)
    "keystore.orphans-delete": EventKind(APPLICATION_ACTIVITY, None, "D"),
}
# Actions not listed: other account.* events are about logging in (accounts holds identity,
# login, second factors and sessions); anything else is a patient-record event if it names
# a patient, otherwise general application activity.
OTHER_ACCOUNT_ACTION = EventKind(USER_AUTHENTICATION, None, "E")
OTHER_PATIENT_ACTION = EventKind(PATIENT_RECORD, None, "E")
OTHER_ACTION = EventKind(APPLICATION_ACTIVITY, None, "E")

# Outcome -> AuditEvent.outcome. Anything not known to have succeeded is reported as a
# failure, never as success: a new outcome string must not make a refusal look granted.
SUCCESS_OUTCOMES = frozenset({"success", "allowed", "case-opened"})
SERIOUS_FAILURE_OUTCOMES = frozenset({"error"})
OUTCOME_SUCCESS, OUTCOME_MINOR_FAILURE, OUTCOME_SERIOUS_FAILURE = "0", "4", "8"

# access.decide's reason (the part before any ":" or "+") -> v3-ActReason purpose of use.
#  - TREAT: a clinician at the patient's practice, or with the patient's permission, or
#    when the patient could not be asked; all are direct care.
#  - ETREAT: emergency access ("break glass") is exactly "emergency treatment".
#  - PATRQT: the patient acting on their own record, or reporting misuse, is "patient
#    requested"; PATADMIN would describe staff running the service, which this is not.
#  - FAMRQT: a carer using the patient's sharing grant acts at the request of someone the
#    patient authorised (ActReason's "family requested").
#  - HOPERAT: privacy officers and operator commands (imports, exports) run the service.
#  - PATADMIN: matching linkage details administers the patient's access.
PURPOSES: dict[str, tuple[str, str]] = {
    "care-team": ("TREAT", "treatment"),
    "permission-given": ("TREAT", "treatment"),
    "patient-cannot-be-asked": ("TREAT", "treatment"),
    "emergency-access": ("ETREAT", "Emergency Treatment"),
    "own-record": ("PATRQT", "patient requested"),
    "reported-by-patient": ("PATRQT", "patient requested"),
    "carer-grant": ("FAMRQT", "family requested"),
    "privacy-officer": ("HOPERAT", "healthcare operations"),
    "operator-command": ("HOPERAT", "healthcare operations"),
    "linkage-details-matched": ("PATADMIN", "patient administration"),
}
PATIENT_ADMINISTRATION = ("PATADMIN", "patient administration")
# Linking an account or printing its letter administers the patient's access: a clerk's
# care-team relationship allows it, but it is not treatment.
IDENTITY_ACTION_PREFIXES = ("linkage.", "account.")
# Qualifiers access.decide appends with "+", reported as a further HealthSpace code.
BASIS_QUALIFIERS = frozenset({"self-claimed-relationship"})

ROLE_DISPLAY: dict[str, str] = {
    "clinician": "Clinician",
    "registration-clerk": "Registration clerk",
    "privacy-officer": "Privacy officer",
    "operator": "Operator",
    "carer": "Carer",
    "additional-information": "May view additional information",
}

# Values copied from ``detail`` must look like what services write there (codes, ids).
_TOKEN = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_ACTION = re.compile(r"(?=.{1,64}$)[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*")
_ODS = re.compile(r"[A-Z0-9]{3,10}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,255}")
_FHIR_REFERENCE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9.-]{1,64}")


def audit_event_resource(
    event: AuditEvent, *, actor: ActorInfo | None = None, base_url: str = ""
) -> dict[str, Any]:
    """The FHIR R4 AuditEvent for one HealthSpace audit event (a JSON-ready dict).

    ``base_url`` (e.g. ``https://healthspace.example/fhir``) makes references absolute;
    without it they are relative (``Patient/<uuid>``).
    """
    base = base_url.rstrip("/") + "/" if base_url else ""
    detail = event.detail if isinstance(event.detail, dict) else {}
    kind = event_kind(event.action, has_patient=event.patient_id is not None)
    resource: dict[str, Any] = {"resourceType": "AuditEvent"}
    if event.pk is not None:
        resource["id"] = str(event.pk)
    resource["type"] = kind.type
    subtype = [kind.subtype] if kind.subtype else []
    if _ACTION.fullmatch(event.action):
        subtype.append(_coding(CS_ACTION, event.action))
    if subtype:
        resource["subtype"] = subtype
    resource["action"] = kind.action
    resource["recorded"] = chain.timestamp(event.occurred_at)
    resource["outcome"] = outcome_code(event.outcome)
    purposes = purpose_of_event(event.action, event.reason, event.outcome)
    if purposes:
        resource["purposeOfEvent"] = purposes
    resource["agent"] = _agents(event, kind, actor, detail, base)
    resource["source"] = _source(base_url)
    resource["entity"] = _entities(event, kind, detail, base)
    return resource


def event_kind(action: str, *, has_patient: bool) -> EventKind:
    if action in ACTIONS:
        return ACTIONS[action]
    if action.startswith("account."):
        return OTHER_ACCOUNT_ACTION
    return OTHER_PATIENT_ACTION if has_patient else OTHER_ACTION


def outcome_code(outcome: str) -> str:
    if outcome in SUCCESS_OUTCOMES:
        return OUTCOME_SUCCESS
    if outcome in SERIOUS_FAILURE_OUTCOMES:
        return OUTCOME_SERIOUS_FAILURE
    return OUTCOME_MINOR_FAILURE


def _reason_parts(reason: str) -> tuple[str, list[str]]:
    base, *qualifiers = reason.split("+")
    return base.split(":", 1)[0], [q.split(":", 1)[0] for q in qualifiers]


def purpose_of_event(action: str, reason: str, outcome: str) -> list[dict[str, Any]]:
    """v3-ActReason purposes, each with the HealthSpace basis code beside it.

    None for a refusal: its reason says why access was refused, not what it was for, and
    (as on the patient's own "who has looked" page) the precise refusal is not published.
    """
    if outcome_code(outcome) != OUTCOME_SUCCESS:
        return []
    base, qualifiers = _reason_parts(reason)
    if base not in PURPOSES:
        return []
    code, display = PURPOSES[base]
    if action.startswith(IDENTITY_ACTION_PREFIXES) and code == "TREAT":
        code, display = PATIENT_ADMINISTRATION
    purposes = [{"coding": [_coding(V3_ACT_REASON, code, display), _coding(CS_ACCESS_BASIS, base)]}]
    purposes += [
        {"coding": [_coding(CS_ACCESS_BASIS, q)]}
        for q in dict.fromkeys(qualifiers)
        if q in BASIS_QUALIFIERS
    ]
    return purposes


def _actor_kind(label: str) -> tuple[str, str]:
    """``staff:user:7`` -> (``staff``, ``user:7``)."""
    kind, _, rest = label.partition(":")
    return kind, rest


def _default_display(label: str) -> str:
    kind, rest = _actor_kind(label)
    if kind == "system":
        purpose = rest.removeprefix("cli:")
        if _TOKEN.fullmatch(purpose):
            return f"{OBSERVER_NAME} operator command ({purpose})"
        return f"{OBSERVER_NAME} operator command"
    return {
        "staff": "A member of staff",
        "patient": "A HealthSpace account holder",
        "client": "A clinical system (registered client)",
        "share-code": "A professional using the patient's share code",
    }.get(kind, "Anonymous")


def _tokens(value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return list(dict.fromkeys(v for v in value if isinstance(v, str) and _TOKEN.fullmatch(v)))


def _agents(
    event: AuditEvent,
    kind: EventKind,
    actor: ActorInfo | None,
    detail: dict[str, Any],
    base: str,
) -> list[dict[str, Any]]:
    actor_kind, _ = _actor_kind(event.actor)
    # For staff, detail["roles"] / detail["org"] were written with the event: the roles and
    # organisation at that moment, which is what an audit must show even if they have
    # changed since. Other actors' detail may describe someone else (staff-create records
    # the new account's roles), so for them only ActorInfo counts.
    at_the_time = actor_kind in ("staff", "client")
    roles = _tokens(detail.get("roles")) if at_the_time else []
    if not roles and actor is not None:
        roles = _tokens(list(actor.roles))
    ods = detail.get("org") if at_the_time else None
    if not (isinstance(ods, str) and _ODS.fullmatch(ods)):
        ods = actor.organisation_ods if actor is not None else None
    if not (isinstance(ods, str) and _ODS.fullmatch(ods)):
        ods = None

    requestor: dict[str, Any] = {
        "type": {"coding": [_requestor_type(actor_kind, event, kind)]},
    }
    if roles:
        requestor["role"] = [{"coding": [_coding(CS_ROLE, r, ROLE_DISPLAY.get(r))]} for r in roles]
    requestor["who"] = _who(actor, event.actor, base)
    requestor["requestor"] = True
    agents = [requestor]
    if ods is not None:
        # R4 agents have no onBehalfOf (R5 added it): the organisation the requestor acted
        # for is a second, non-requesting agent of type PROV, as BALP does for user orgs.
        org_who: dict[str, Any] = {"identifier": {"system": ODS_ORGANISATION, "value": ods}}
        if actor is not None and actor.organisation_name and actor.organisation_ods == ods:
            org_who["display"] = actor.organisation_name
        agents.append(
            {
                "type": {"coding": [_coding(V3_ROLE_CLASS, "PROV", "healthcare provider")]},
                "who": org_who,
                "requestor": False,
            }
        )
    client = detail.get("client")
    if isinstance(client, str) and _CLIENT_ID.fullmatch(client) and actor_kind == "patient":
        # the app a patient's token belongs to (SMART on FHIR): BALP's client agent
        agents.append(
            {
                "type": {"coding": [_coding(DCM, "110150", "Application")]},
                "who": {"identifier": {"system": ID_OAUTH_CLIENT, "value": client}},
                "requestor": False,
            }
        )
    return agents


def _requestor_type(actor_kind: str, event: AuditEvent, kind: EventKind) -> dict[str, str]:
    # BALP's user-agent types: the patient as themselves, the one who receives data on a
    # read or search, the one who acts on a change; a command is an application.
    if actor_kind in ("system", "client"):
        return _coding(DCM, "110150", "Application")
    base, _ = _reason_parts(event.reason)
    if actor_kind == "patient" and base in ("own-record", "reported-by-patient"):
        return _coding(V3_ROLE_CLASS, "PAT", "patient")
    if kind.action == "R" or kind.subtype == SEARCH:
        return _coding(V3_PARTICIPATION_TYPE, "IRCP", "information recipient")
    return _coding(V3_ROLE_CLASS, "AGNT", "agent")


def _who(actor: ActorInfo | None, label: str, base: str) -> dict[str, Any]:
    who: dict[str, Any] = {}
    ref = actor.user_ref if actor is not None else None
    if ref and _FHIR_REFERENCE.fullmatch(ref):
        who["reference"] = base + ref
    elif ref:
        who["identifier"] = {"system": ID_USER, "value": ref}
    who["display"] = (
        actor.display if actor is not None and actor.display else _default_display(label)
    )
    return who


def _source(base_url: str) -> dict[str, Any]:
    observer: dict[str, Any] = {"display": OBSERVER_NAME}
    if base_url:
        observer["identifier"] = {"system": "urn:ietf:rfc:3986", "value": base_url.rstrip("/")}
    return {
        "observer": observer,
        "type": [_coding(SECURITY_SOURCE_TYPE, "4", "Application Server")],
    }


def _items(detail: dict[str, Any]) -> list[dict[str, str]]:
    items = detail.get("items")
    if isinstance(items, int) and not isinstance(items, bool) and items >= 0:
        return [{"type": "items", "valueString": str(items)}]
    return []


def _sections(detail: dict[str, Any]) -> list[str]:
    # Services write "sections" (a list); older events may hold one "section".
    return _tokens(detail.get("sections") or detail.get("section"))


def _entities(
    event: AuditEvent, kind: EventKind, detail: dict[str, Any], base: str
) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if event.patient_id is not None:
        patient: dict[str, Any] = {
            "what": {"reference": f"{base}Patient/{uuid.UUID(str(event.patient_id))}"},
            "type": _coding(AUDIT_ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        }
        if items := _items(detail):
            patient["detail"] = items  # how many record items were shown or sent
        entities.append(patient)
    elif (items := _items(detail)) and kind.subtype == SEARCH:
        # BALP's query entity, without the query: search terms identify people.
        entities.append(
            {
                "type": _coding(AUDIT_ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "24", "Query"),
                "detail": items,
            }
        )
    entities += [
        {
            "what": {"identifier": {"system": CS_SCR_SECTION, "value": section}},
            "type": _coding(AUDIT_ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
        }
        for section in _sections(detail)
    ]
    request_id = detail.get("request_id")
    if isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id):
        # BALP's "transaction" entity: lets a client match its own X-Request-Id.
        entities.append(
            {
                "what": {"identifier": {"value": request_id}},
                "type": _coding(BALP_ENTITY_TYPE, "XrequestId"),
            }
        )
    entities.append(_chain_entity(event))
    return entities


def _chain_entity(event: AuditEvent) -> dict[str, Any]:
    """The event's link in its hash chain (docs/audit.md), for clients that keep a copy.

    A client holding consecutive events of one chain can check that each ``prev_hash`` is
    the hash before it, and compare heads with shipped checkpoints. The hash itself covers
    fields this resource leaves out (reason, full detail), so it cannot be recomputed from
    the resource alone.
    """
    return {
        "what": {"identifier": {"system": ID_AUDIT_CHAIN, "value": event.chain_key}},
        "type": _coding(AUDIT_ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
        "detail": [
            {"type": "version", "valueString": chain.VERSION},
            {"type": "seq", "valueString": str(event.seq)},
            {"type": "prev_hash", "valueString": event.prev_hash},
            {"type": "hash", "valueString": event.hash},
        ],
    }
