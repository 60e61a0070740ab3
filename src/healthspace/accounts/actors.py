"""Turn the logged-in user into an access Actor. The patient id comes from the session's
account, never from the URL or form (IDOR, OpenEMR CVE-2026-25147)."""

from __future__ import annotations

from typing import Any

from healthspace.access.actors import Actor
from healthspace.access.roles import STAFF_GROUPS, STAFF_ROLES
from healthspace.accounts.models import Account


def actor_for_user(user: Any) -> Actor:
    if user is None or not user.is_authenticated:
        return Actor.anonymous()
    link = getattr(user, "patient_link", None)
    if link is not None:
        return Actor("patient", f"user:{user.pk}", patient_id=link.patient_id)
    roles = frozenset(g.name for g in user.groups.all() if g.name in STAFF_GROUPS)
    if roles & STAFF_ROLES:
        account = Account.objects.filter(user_id=user.pk).select_related("organisation").first()
        organisation = account.organisation if account is not None else None
        return Actor(
            "staff",
            f"user:{user.pk}",
            roles=roles,
            organisation=organisation.ods_code if organisation is not None else None,
        )
    return Actor("patient", f"user:{user.pk}")  # basic account: no record
