"""Turn the logged-in user into an access Actor. The patient id comes from the session's
account, never from the URL or form (IDOR, OpenEMR CVE-2026-25147)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, StringAgg, Value

from healthspace.access.actors import Actor
from healthspace.access.roles import STAFF_GROUPS, STAFF_ROLES

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
    # Imported here: accounts.models imports this module's neighbours at start-up.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from healthspace.accounts.models import Passkey

    rows = list(  # one row: grouped by the user's own one-to-one columns
        get_user_model()
        .objects.filter(pk=user.pk)
        .values(
            "patient_link__patient_id",
            "account__organisation__ods_code",
            "account__notify_staff_views",
        )
        .annotate(
            group_names=StringAgg("groups__name", delimiter=Value(_GROUP_SEPARATOR)),
            has_passkey=Exists(Passkey.objects.filter(user_id=OuterRef("pk"))),
            has_totp=Exists(TOTPDevice.objects.filter(user_id=OuterRef("pk"), confirmed=True)),
        )
    )
    if not rows:
        return _ANONYMOUS  # the user was deleted during the request
    row = rows[0]
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
