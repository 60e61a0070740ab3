"""Turn the logged-in user into an access Actor. The patient id comes from the session's
account, never from the URL or form (IDOR, OpenEMR CVE-2026-25147)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import StringAgg, Value

from healthspace.access.actors import Actor
from healthspace.access.roles import STAFF_GROUPS, STAFF_ROLES

_GROUP_SEPARATOR = "\n"  # group names are single-line (STAFF_GROUPS)


def actor_for_user(user: Any) -> Actor:
    """One query on every request: the patient link, the staff groups and the staff
    member's organisation together (docs/performance.md)."""
    if user is None or not user.is_authenticated:
        return Actor.anonymous()
    rows = list(  # one row: grouped by the user's own one-to-one columns
        get_user_model()
        .objects.filter(pk=user.pk)
        .values("patient_link__patient_id", "account__organisation__ods_code")
        .annotate(group_names=StringAgg("groups__name", delimiter=Value(_GROUP_SEPARATOR)))
    )
    if not rows:
        return Actor.anonymous()  # the user was deleted during the request
    row = rows[0]
    if row["patient_link__patient_id"] is not None:
        return Actor("patient", f"user:{user.pk}", patient_id=row["patient_link__patient_id"])
    names = (row["group_names"] or "").split(_GROUP_SEPARATOR)
    roles = frozenset(name for name in names if name in STAFF_GROUPS)
    if roles & STAFF_ROLES:
        return Actor(
            "staff",
            f"user:{user.pk}",
            roles=roles,
            organisation=row["account__organisation__ods_code"],
        )
    return Actor("patient", f"user:{user.pk}")  # basic account: no record
