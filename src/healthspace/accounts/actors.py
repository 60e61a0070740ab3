"""Turn the logged-in user into an access Actor. The patient id comes from the session's
account, never from the URL or form (IDOR, OpenEMR CVE-2026-25147)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from healthspace.access.actors import Actor
from healthspace.access.roles import STAFF_GROUPS, STAFF_ROLES
from healthspace.core import sql

_GROUP_SEPARATOR = "\n"  # group names are single-line (STAFF_GROUPS)


@dataclass(frozen=True)
class UserFacts:
    """What every signed-in page asks about its user, read in one query."""

    actor: Actor
    verified: bool = False  # has a linked record (PatientLink)
    has_factor: bool = False  # a passkey or a confirmed authenticator app
    notify_staff_views: bool = False  # "email me when staff look at my record"


_ANONYMOUS = UserFacts(Actor.anonymous())
_REQUEST_KEY = "_healthspace_user_facts"


def facts_for_user(user: Any) -> UserFacts:
    """One query: the patient link, the staff groups and organisation, whether a second
    factor is set up and the account's staff-view emails preference (docs/performance.md)."""
    if user is None or not user.is_authenticated:
        return _ANONYMOUS
    row = _facts_row(user.pk)
    if row is None:
        return _ANONYMOUS  # the user was deleted during the request
    facts = {
        "verified": row["patient_link__patient_id"] is not None,
        "has_factor": bool(row["has_passkey"] or row["has_totp"]),
        "notify_staff_views": bool(row["account__notify_staff_views"]),
    }
    if row["patient_link__patient_id"] is not None:
        actor = Actor("patient", f"user:{user.pk}", patient_id=row["patient_link__patient_id"])
        return UserFacts(actor, **facts)
    names = (row["group_names"] or "").split(_GROUP_SEPARATOR)
    roles = frozenset(name for name in names if name in STAFF_GROUPS)
    if roles & STAFF_ROLES:
        actor = Actor(
            "staff",
            f"user:{user.pk}",
            roles=roles,
            organisation=row["account__organisation__ods_code"],
        )
        return UserFacts(actor, **facts)
    return UserFacts(Actor("patient", f"user:{user.pk}"), **facts)  # basic account: no record


def _facts_row(user_id: int) -> dict[str, Any] | None:
    """One statement in plain SQL (core.sql): a row per staff group (one row without any).
    The ORM's version, with its aggregate and two EXISTS, cost 3 ms of CPU to build and
    compile on every signed-in request; running it costs a fraction of that."""
    # Imported here: accounts.models imports this module's neighbours at start-up.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from healthspace.accounts.models import Account, Passkey, PatientLink
    from healthspace.records.models import Organisation

    user_model = get_user_model()
    users, u = sql.names(user_model)
    links, pl = sql.names(PatientLink)
    accounts, a = sql.names(Account)
    orgs, o = sql.names(Organisation)
    members, m = sql.names(user_model.groups.through)
    groups, g = sql.names(user_model.groups.field.related_model)
    passkeys, pk = sql.names(Passkey)
    devices, d = sql.names(TOTPDevice)
    found = sql.rows(
        f"SELECT pl.{pl['patient_id']}, o.{o['ods_code']}, a.{a['notify_staff_views']}, "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"g.{g['name']}, "
        f"EXISTS (SELECT 1 FROM {passkeys} pk WHERE pk.{pk['user_id']} = u.{u['id']}), "
        f"EXISTS (SELECT 1 FROM {devices} d WHERE d.{d['user_id']} = u.{u['id']} "
        f"AND d.{d['confirmed']} = %s) "
        f"FROM {users} u "
        f"LEFT JOIN {links} pl ON pl.{pl['user_id']} = u.{u['id']} "
        f"LEFT JOIN {accounts} a ON a.{a['user_id']} = u.{u['id']} "
        f"LEFT JOIN {orgs} o ON o.{o['id']} = a.{a['organisation_id']} "
        f"LEFT JOIN {members} m ON m.{m['user_id']} = u.{u['id']} "
        f"LEFT JOIN {groups} g ON g.{g['id']} = m.{m['group_id']} "
        f"WHERE u.{u['id']} = %s",
        [True, user_id],
        prepared=True,
    )
    if not found:
        return None
    first = found[0]
    return {
        "patient_link__patient_id": sql.as_uuid(first[0]),
        "account__organisation__ods_code": first[1],
        "account__notify_staff_views": bool(first[2]),
        "group_names": _GROUP_SEPARATOR.join(r[3] for r in found if r[3]),
        "has_passkey": bool(first[4]),
        "has_totp": bool(first[5]),
    }


def facts_for_request(request: Any) -> UserFacts:
    """``facts_for_user`` of the request's user, read once per request. A request whose user
    changes (login, logout) reads them again; a request that changes them (adds a factor)
    asks ``facts_for_user`` or the guards' own queries, not this."""
    user = getattr(request, "user", None)
    key = user.pk if user is not None and user.is_authenticated else None
    cached = getattr(request, _REQUEST_KEY, None)
    if cached is not None and cached[0] == key:
        return cached[1]
    facts = facts_for_user(user)
    setattr(request, _REQUEST_KEY, (key, facts))
    return facts


def actor_for_request(request: Any) -> Actor:
    return facts_for_request(request).actor


def actor_for_user(user: Any) -> Actor:
    return facts_for_user(user).actor
