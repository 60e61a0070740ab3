"""Reads of the smart app: the apps connected to a patient's record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from healthspace.core.clock import now
from healthspace.smart import scopes as smart_scopes


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    name: str
    publisher: str
    since: datetime
    can_see: list[smart_scopes.Description]
    stays_connected: bool


def connected_apps(*, user) -> list[ConnectedApp]:
    """Apps holding a live token or refresh token for this user (two queries)."""
    live = (
        get_access_token_model()
        .objects.filter(user=user, expires__gt=now())
        .select_related("application__smart")
        .order_by("created")
    )
    refresh = (
        get_refresh_token_model()
        .objects.filter(Q(revoked__isnull=True), user=user)
        .select_related("application__smart", "access_token")
        .order_by("created")
    )
    apps: dict[str, ConnectedApp] = {}
    for token, scope, offline in [
        *((t, t.scope, False) for t in live),
        *((r, r.access_token.scope if r.access_token else "", True) for r in refresh),
    ]:
        application = token.application
        key = application.client_id
        current = apps.get(key)
        scopes = scope.split()
        if current is None:
            registration = getattr(application, "smart", None)
            apps[key] = ConnectedApp(
                client_id=key,
                name=application.name,
                publisher=registration.publisher if registration else "",
                since=token.created,
                can_see=smart_scopes.describe(scopes),
                stays_connected=offline or smart_scopes.OFFLINE in scopes,
            )
        elif offline and not current.stays_connected:
            apps[key] = ConnectedApp(**{**current.__dict__, "stays_connected": True})
    return sorted(apps.values(), key=lambda a: a.since)
