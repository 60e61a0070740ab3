"""``staff_roles`` on every page: the header's navigation follows who is signed in (staff
see the staff navigation on every page, their account pages included), from the request's
user facts, which the page's own guard has usually read already (no query more)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from healthspace.accounts.actors import facts_for_request


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"staff_roles": []}
    actor = facts_for_request(request).actor
    return {"staff_roles": sorted(actor.roles) if actor.kind == "staff" else []}
