"""Read the audit trail. Read-only: events are written by ``audit.services`` only.

``access_history_for_patient`` feeds the patient's "Who has looked at your record" page:
events in plain words, newest first, the names of staff resolved in one query per page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router

from healthspace.audit.models import AuditEvent
from healthspace.core import sql

# All the words in one place. Keys are audit actions / reasons as services write them;
# anything missing falls back to a neutral phrase (never the raw code: patients read this).
ACTION_WORDS: dict[str, str] = {
    "scr.view": "Viewed your Summary Care Record",
    "demographics.view": "Viewed your name, address and contact details",
    "record.export": "Downloaded your record",
    "record.import": "Your GP practice's system sent updates",
    "linkage.issue": "Printed linkage details for your account",
    "linkage.verify": "Linked your account",
    "linkage.lookup": "Looked up your record to print linkage details",
    "account.link-in-person": "Linked your account after checking your identity in person",
    "account.compromise-reported": "Reported that your account may have been misused",
    "account.second-factor-changed": "Changed how you log in",
    "audit.view": "Looked at who has accessed your record",
    "case.open": "Asked the privacy officer to check an access",
    "patient.find": "Checked your NHS number and date of birth",
    "permission.record": "Recorded whether you gave permission to view your record",
    "relationship.claim": "Said they are involved in your care",
    "emergency.access": "Used emergency access to your record",
    "consent.view": "Looked at your choices about your record",
    "consent.change": "Changed your choices about your record",
    "case.view": "A privacy officer reviewed an access to your record, or a request about it",
    "case.decide": "A privacy officer made a decision about an access to your record",
    "consent.request-record": "A privacy officer recorded or decided your request",
    "organiser.view": "Looked at your health organiser",
    "organiser.change": "Changed your health organiser",
    "organiser.export": "Downloaded readings from your health organiser",
    "organiser.share": "Changed which readings you share with your care team",
    "organiser.reminder": "Sent you an appointment reminder",
    "scr.addition-change": "Changed what you added to your Summary Care Record",
    "correction.request": "Asked for something in your record to be corrected",
    "correction.view": "Looked at a request to correct your record",
    "correction.decide": "Answered a request to correct your record",
    "record.amend": "Corrected an item in your Summary Care Record",
    "message.thread-open": "Started a conversation with you",
    "message.view": "Read messages with you",
    "message.send": "Sent a message",
    "message.manage": "Managed a conversation with you",
    "app.authorise": "Connected an app to your record",
    "app.revoke": "Disconnected an app from your record",
    "sharing.view": "Looked at who can see your record",
    "sharing.grant": "Shared your record, or made a share code",
    "sharing.revoke": "Stopped sharing your record, or cancelled a share code",
    "sharing.freeze": "Changed your sharing settings",
    "sharing.accept": "Answered your invitation to share your record",
    "sharing.code-use": "Typed a share code you made",
    "proxy.request": "Asked your GP practice to let them act for you",
    "proxy.decide": "Decided on a request to act for you",
}
DENIED_WORDS = "Tried to view your record and was refused"
OTHER_ACTION_WORDS = "Used your record"

REASON_WORDS: dict[str, str] = {
    "own-record": "Your own login",
    "permission-given": "You gave permission",
    "patient-cannot-be-asked": "You could not be asked at the time",
    "emergency-access": "Emergency access",
    "carer-grant": "You shared your record with them",
    "care-team": "They work at your GP practice",
    "linkage-details-matched": "The linkage details matched",
    "operator-command": "A routine task on the HealthSpace service",
    "reported-by-patient": "You reported it",
    "privacy-officer": "Privacy officer checking access to records",
    "nhs-number-and-birth-date-matched": "Your NHS number and date of birth matched",
    "self-claimed-relationship": "Said they are involved in your care",
    "self-claimed": "Said they are involved in your care",
    "own-organiser": "Your own login",
    "correction-requested": "You asked your GP practice to correct your record",
    "care-team-of-thread": "They are in the care team you message",
    "proxy-approved": "Your GP practice approved them to act for you",
    "proxy-request": "They asked to act for you",
    "share-code": "Using a share code you made",
    "account-closed": "An account was closed",
}
# Suffixes the access policy appends to a reason (``permission-given+self-claimed-...``).
REASON_SUFFIX_WORDS: dict[str, str] = {
    "self-claimed-relationship": "Said they are caring for you",
}
OTHER_REASON_WORDS = "No reason recorded"
DENIED_REASON_WORDS = "They did not have permission"

SYSTEM_WORDS: dict[str, str] = {
    "import": "HealthSpace (data from your GP practice)",
    "export": "An operator (export)",
    "demo": "HealthSpace (demo set-up)",
    "linkage": "HealthSpace (account linking)",
    "reminders": "HealthSpace (reminders you asked for)",
}
OTHER_SYSTEM_WORDS = "HealthSpace"
CLIENT_WORDS = "A clinical system"
SHARE_CODE_WORDS = "A professional using a share code"

ROLE_WORDS: dict[str, str] = {
    "clinician": "Clinician",
    "registration-clerk": "Registration clerk",
    "privacy-officer": "Privacy officer",
    "operator": "Operator",
    "carer": "Carer",
}
YOU = "You"
SOME_STAFF = "A member of staff"
SOMEONE = "Someone with a HealthSpace account"


@dataclass(frozen=True)
class AccessEntry:
    id: int
    when: datetime
    who: str
    roles: tuple[str, ...]
    organisation: str
    what: str
    why: str
    sections: tuple[str, ...]
    outcome: str
    by_staff: bool
    by_patient: bool


_THIRD_PERSON = [
    ("You ", "The patient "),
    ("Your ", "The patient's "),
    (" your ", " the patient's "),
    (" you ", " the patient "),
    (" you", " the patient"),
]


def third_person(words: str) -> str:
    """The patient's words for an event, as the privacy officer reads them ("You gave
    permission" -> "The patient gave permission"). The word lists above are written so
    that this holds for each of them (tested)."""
    text = f"{words}"
    for mine, theirs in _THIRD_PERSON:
        if mine.startswith(" ") or not text.startswith(mine):
            text = text.replace(mine, theirs)
        else:
            text = theirs + text[len(mine) :]
    return text


def action_in_words(action: str, outcome: str) -> str:
    if outcome == "denied":
        return DENIED_WORDS
    words = ACTION_WORDS.get(action, OTHER_ACTION_WORDS)
    if outcome not in ("success", "allowed", "case-opened"):  # as audit.fhir counts them
        return f"{words} (this did not succeed)"
    return words


def reason_in_words(reason: str, outcome: str) -> str:
    if outcome == "denied":
        return DENIED_REASON_WORDS
    if reason.startswith("operator-command"):
        return REASON_WORDS["operator-command"]
    base, *suffixes = reason.split("+")
    # consent.change appends the source (``care-team:gp-practice``): the words are the policy's
    words = [REASON_WORDS.get(base.partition(":")[0], OTHER_REASON_WORDS)]
    words += [REASON_SUFFIX_WORDS[s] for s in suffixes if s in REASON_SUFFIX_WORDS]
    return "; ".join(words)


def _user_id(actor: str) -> int | None:
    """``staff:user:7`` / ``patient:user:12`` -> 7 / 12; anything else -> None."""
    kind, _, rest = actor.partition(":")
    prefix, _, pk = rest.partition(":")
    if kind in ("staff", "patient") and prefix == "user" and pk.isdigit():
        return int(pk)
    return None


def _sections(detail: object) -> tuple[str, ...]:
    if not isinstance(detail, dict):
        return ()
    value = detail.get("sections") or detail.get("section")
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def access_history_for_patient(
    *, patient_id: uuid.UUID, limit: int = 50, before: int | None = None
) -> list[AccessEntry]:
    """Events about one patient, newest first, at most ``limit``, older than event ``before``.

    Callers must pass the patient id from the session's own PatientLink: ``before`` is only
    a cursor inside that patient's events (an id of someone else's event finds no cursor and
    gives the first page).
    """
    if before is None:  # the first page, every time the page opens: plain SQL (core.sql)
        rows = sql.records(  # named tuples: only shown, never saved
            AuditEvent,
            _FIELDS,
            where={"patient_id": patient_id},
            order_by=("-occurred_at", "-id"),
            limit=limit,
        )
        return _describe(rows, patient_id)
    events = AuditEvent.objects.filter(patient_id=patient_id)
    cursor = (
        AuditEvent.objects.filter(patient_id=patient_id, pk=before)
        .values_list("occurred_at", flat=True)
        .first()
    )
    if cursor is not None:
        # Keyset paging on the (patient_id, -occurred_at) index; the id breaks ties.
        events = events.filter(occurred_at__lte=cursor).exclude(occurred_at=cursor, pk__gte=before)
    rows = list(events.order_by("-occurred_at", "-pk").only(*_FIELDS)[:limit])
    return _describe(rows, patient_id)


def access_entry_for_patient(*, patient_id: uuid.UUID, event_id: int) -> AccessEntry | None:
    """One event of this patient's trail in words; None when it is not theirs (or absent)."""
    rows = list(AuditEvent.objects.filter(patient_id=patient_id, pk=event_id).only(*_FIELDS))
    described = _describe(rows, patient_id)
    return described[0] if described else None


_FIELDS = ("id", "occurred_at", "actor", "action", "outcome", "reason", "detail")


def _code_id(actor: str) -> uuid.UUID | None:
    """``share-code:code:<uuid>`` -> the code's id; anything else -> None."""
    kind, _, rest = actor.partition(":")
    if kind != "share-code" or not rest.startswith("code:"):
        return None
    try:
        return uuid.UUID(rest.removeprefix("code:"))
    except ValueError:
        return None


def share_code_viewers(ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str, str]]:
    """Share code id -> (the name and organisation the professional typed, their kind of
    profession), one query. The typed words stay in the code's row, not in the chain."""
    if not ids:
        return {}
    from healthspace.consent.models import ShareCode  # consent sits above audit

    return {
        c.pk: (c.viewer_name, c.viewer_organisation, c.get_profession_display())
        for c in ShareCode.objects.filter(pk__in=ids).only(
            "id", "viewer_name", "viewer_organisation", "profession"
        )
    }


def _describe(rows: list[Any], patient_id: uuid.UUID) -> list[AccessEntry]:
    """``rows``: AuditEvents, or their ``core.sql.records`` (the same attributes)."""
    users = _users_by_id({uid for r in rows if (uid := _user_id(r.actor)) is not None})
    viewers = share_code_viewers({cid for r in rows if (cid := _code_id(r.actor)) is not None})
    organisations = organisation_names(
        {
            d["org"]
            for r in rows
            if isinstance(d := r.detail, dict) and isinstance(d.get("org"), str)
        }
    )
    return [_entry(r, users, patient_id, organisations, viewers) for r in rows]


def organisation_names(codes: set[str]) -> dict[str, str]:
    """ODS code -> name, one query: staff events carry the organisation at the time."""
    if not codes:
        return {}
    from healthspace.records.models import Organisation  # records sits above audit

    return dict(Organisation.objects.filter(ods_code__in=codes).values_list("ods_code", "name"))


@dataclass(frozen=True)
class Person:
    """Who an actor label names, as an access history shows them."""

    id: int
    first_name: str
    last_name: str
    organisation_name: str | None  # the staff account's organisation now
    patient_id: uuid.UUID | None  # the record a patient's account is linked to
    group_names: str  # newline-separated

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def _users_by_id(ids: set[int]) -> dict[int, Person]:
    """The people with their organisation, link and groups: one statement in plain SQL
    (core.sql; a row per group), read on every page of a trail (docs/performance.md)."""
    if not ids:
        return {}
    from healthspace.accounts.models import Account, PatientLink  # accounts sits above audit
    from healthspace.records.models import Organisation  # records sits above audit

    user_model = get_user_model()
    users, u = sql.names(user_model)
    accounts, a = sql.names(Account)
    orgs, o = sql.names(Organisation)
    links, pl = sql.names(PatientLink)
    members, m = sql.names(user_model.groups.through)
    groups, g = sql.names(user_model.groups.field.related_model)
    wanted = sorted(ids)
    found = sql.rows(
        f"SELECT u.{u['id']}, u.{u['first_name']}, u.{u['last_name']}, o.{o['name']}, "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"pl.{pl['patient_id']}, g.{g['name']} "
        f"FROM {users} u "
        f"LEFT JOIN {accounts} a ON a.{a['user_id']} = u.{u['id']} "
        f"LEFT JOIN {orgs} o ON o.{o['id']} = a.{a['organisation_id']} "
        f"LEFT JOIN {links} pl ON pl.{pl['user_id']} = u.{u['id']} "
        f"LEFT JOIN {members} m ON m.{m['user_id']} = u.{u['id']} "
        f"LEFT JOIN {groups} g ON g.{g['id']} = m.{m['group_id']} "
        f"WHERE u.{u['id']} IN ({', '.join(['%s'] * len(wanted))})",
        wanted,
        using=router.db_for_read(user_model),  # a replica where the caller reads there
    )
    names: dict[int, list[str]] = {}
    first: dict[int, tuple] = {}
    for row in found:
        first.setdefault(row[0], row)
        if row[5]:
            names.setdefault(row[0], []).append(row[5])
    return {
        uid: Person(
            id=uid,
            first_name=row[1] or "",
            last_name=row[2] or "",
            organisation_name=row[3],
            patient_id=sql.as_uuid(row[4]),
            group_names=_GROUP_SEPARATOR.join(sorted(names.get(uid, []))),
        )
        for uid, row in first.items()
    }


_GROUP_SEPARATOR = "\n"  # group names are single-line (access.roles.STAFF_GROUPS)


def _group_names(user: Person) -> list[str]:
    return sorted(filter(None, user.group_names.split(_GROUP_SEPARATOR)))


def _entry(
    event: Any,  # an AuditEvent or its record
    users: dict[int, Person],
    patient_id: uuid.UUID,
    organisations: dict[str, str],
    viewers: dict[uuid.UUID, tuple[str, str, str]] | None = None,
) -> AccessEntry:
    kind = event.actor.split(":", 1)[0]
    uid = _user_id(event.actor)
    user = users.get(uid) if uid is not None else None
    who, roles, organisation = OTHER_SYSTEM_WORDS, (), ""
    by_staff = by_patient = False
    if kind == "staff":
        by_staff = True
        who = (user.get_full_name().strip() if user is not None else "") or SOME_STAFF
        # who they were when they looked, not what they are now (older events, and
        # actors without roles, fall back to the account as it is)
        detail = event.detail if isinstance(event.detail, dict) else {}
        at_the_time = detail.get("roles")
        if isinstance(at_the_time, list) and at_the_time:
            roles = tuple(ROLE_WORDS[r] for r in sorted(map(str, at_the_time)) if r in ROLE_WORDS)
        elif user is not None:
            roles = tuple(ROLE_WORDS[g] for g in _group_names(user) if g in ROLE_WORDS)
        code = detail.get("org")
        if isinstance(code, str) and code:
            organisation = organisations.get(code, code)
        elif user is not None and user.organisation_name is not None:
            organisation = user.organisation_name
    elif kind == "patient":
        if user is not None and user.patient_id == patient_id:
            by_patient, who = True, YOU
        else:
            who = (user.get_full_name().strip() if user is not None else "") or SOMEONE
    elif kind == "system":
        purpose = event.actor.split(":")[-1]
        who = SYSTEM_WORDS.get(purpose, OTHER_SYSTEM_WORDS)
    elif kind == "share-code":  # a professional who typed the patient's share code
        name, org, profession = (viewers or {}).get(_code_id(event.actor), ("", "", ""))
        if event.outcome == "denied":  # someone tried a used or cancelled code: not the
            name = org = ""  # professional who used it, whose words are on the code
        who = name or SHARE_CODE_WORDS
        organisation = org
        roles = (f"{profession}, using a share code",) if profession else ("Using a share code",)
    elif kind == "client":  # a system client of an organisation (FHIR API)
        who = CLIENT_WORDS
        code = event.detail.get("org") if isinstance(event.detail, dict) else None
        if isinstance(code, str) and code:
            organisation = organisations.get(code, code)
    return AccessEntry(
        id=event.pk,
        when=event.occurred_at,
        who=who,
        roles=roles,
        organisation=organisation,
        what=action_in_words(event.action, event.outcome),
        why=reason_in_words(event.reason, event.outcome),
        sections=_sections(event.detail),
        outcome=event.outcome,
        by_staff=by_staff,
        by_patient=by_patient,
    )
