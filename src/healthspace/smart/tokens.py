"""From a bearer token to the ``Actor`` that ``access.decide`` asks about, and its grants.

- A patient app's token acts for the user who approved it: ``Actor("patient",
  "user:<pk>", patient_id=<their linked record>)``, the same actor as their web session,
  with ``client_id`` set so that decide() also checks the token's scopes. The patient id
  comes from the account's PatientLink, never from the request.
- A system client's token acts for the client itself: ``Actor.client(client_id,
  organisation=<ODS code>)``; decide() lets it reach only patients registered at that
  organisation.

One query per request (the token with its application, registration, organisation, user
and link). A revoked token is deleted, so revocation takes effect on the next request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from oauth2_provider.models import get_access_token_model

from healthspace.access.actors import Actor
from healthspace.smart.models import AppRegistration
from healthspace.smart.scopes import Grant, grants_of


@dataclass(frozen=True)
class TokenActor:
    actor: Actor
    grants: frozenset[Grant]
    scopes: frozenset[str]
    client_id: str
    client_name: str
    kind: str  # AppRegistration.Kind
    registration_id: int
    source_system: str = ""

    @property
    def is_system(self) -> bool:
        return self.kind == AppRegistration.Kind.SYSTEM


# Only what the mapping reads (the rows are wide: secrets, URIs, names).
TOKEN_FIELDS = (
    "id",
    "expires",
    "scope",
    "user_id",
    "application_id",
    "application__id",
    "application__client_id",
    "application__name",
    "application__smart__id",
    "application__smart__kind",
    "application__smart__active",
    "application__smart__source_system",
    "application__smart__organisation_id",
    "application__smart__organisation__id",
    "application__smart__organisation__ods_code",
    "user__id",
    "user__is_active",
    "user__patient_link__id",
    "user__patient_link__patient_id",
    "user__patient_link__user_id",
)


def bearer_token(authorization: str) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value if value and len(value) <= 512 else None


def token_actor(raw: str) -> TokenActor | None:
    """The actor a live token acts for, or None (unknown, expired, revoked, disabled)."""
    checksum = hashlib.sha256(raw.encode()).hexdigest()
    token = (
        get_access_token_model()
        .objects.select_related("application__smart__organisation", "user__patient_link")
        .filter(token_checksum=checksum)
        .first()
    )
    if token is None or token.is_expired() or token.application is None:
        return None
    registration: AppRegistration | None = getattr(token.application, "smart", None)
    if registration is None or not registration.active:
        return None
    client_id = token.application.client_id
    if registration.kind == AppRegistration.Kind.PATIENT_APP:
        user = token.user
        link = getattr(user, "patient_link", None) if user is not None else None
        if user is None or not user.is_active or link is None:
            return None
        actor = Actor("patient", f"user:{user.pk}", patient_id=link.patient_id, client_id=client_id)
    else:
        if token.user_id is not None or registration.organisation is None:
            return None
        actor = Actor.client(client_id, organisation=registration.organisation.ods_code)
    return TokenActor(
        actor=actor,
        grants=grants_of(token.scope),
        scopes=frozenset(token.scope.split()),
        client_id=client_id,
        client_name=token.application.name,
        kind=registration.kind,
        registration_id=registration.pk,
        source_system=registration.source_system,
    )
