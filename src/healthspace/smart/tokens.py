"""From a bearer token to the ``Actor`` that ``access.decide`` asks about, and its grants.

- A patient app's token acts for the user who approved it: ``Actor("patient",
  "user:<pk>", patient_id=<their linked record>)``, the same actor as their web session,
  with ``client_id`` set so that decide() also checks the token's scopes. The patient id
  comes from the account's PatientLink, never from the request.
- A system client's token acts for the client itself: ``Actor.client(client_id,
  organisation=<ODS code>)``; decide() lets it reach only patients registered at that
  organisation.

One query per request, in plain SQL (the token with its application, registration,
organisation, user and link). A revoked token is deleted, so revocation takes effect on
the next request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from healthspace.access.actors import Actor
from healthspace.core import sql
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


def bearer_token(authorization: str) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value if value and len(value) <= 512 else None


def token_actor(raw: str) -> TokenActor | None:
    """The actor a live token acts for, or None (unknown, expired, revoked, disabled)."""
    row = _token_row(hashlib.sha256(raw.encode()).hexdigest())
    if row is None:
        return None
    (
        expires,
        scope,
        token_user_id,
        client_id,
        client_name,
        registration_id,
        kind,
        active,
        source_system,
        ods_code,
        user_id,
        user_active,
        patient_id,
    ) = row
    expires = sql.as_datetime(expires)
    if expires is None or timezone.now() >= expires:
        return None
    if registration_id is None or not active:
        return None
    if kind == AppRegistration.Kind.PATIENT_APP:
        if user_id is None or not user_active or patient_id is None:
            return None
        actor = Actor(
            "patient", f"user:{user_id}", patient_id=sql.as_uuid(patient_id), client_id=client_id
        )
    else:
        if token_user_id is not None or ods_code is None:
            return None
        actor = Actor.client(client_id, organisation=ods_code)
    return TokenActor(
        actor=actor,
        grants=grants_of(scope),
        scopes=frozenset(scope.split()),
        client_id=client_id,
        client_name=client_name,
        kind=kind,
        registration_id=registration_id,
        source_system=source_system,
    )


def _token_row(checksum: str) -> tuple | None:
    """The token with its application, registration, organisation, user and patient link:
    one statement in plain SQL (core.sql), as the ORM's five-way select_related cost more
    CPU to build and compile than to run (docs/performance.md)."""
    from healthspace.accounts.models import PatientLink
    from healthspace.records.models import Organisation

    token_model = get_access_token_model()
    tokens, t = sql.names(token_model)
    apps, a = sql.names(token_model.application.field.related_model)
    registrations, r = sql.names(AppRegistration)
    orgs, o = sql.names(Organisation)
    users, u = sql.names(get_user_model())
    links, pl = sql.names(PatientLink)
    found = sql.rows(
        f"SELECT t.{t['expires']}, t.{t['scope']}, t.{t['user_id']}, "  # noqa: S608 - quoted names from model metadata, values are parameters
        f"a.{a['client_id']}, a.{a['name']}, r.{r['id']}, r.{r['kind']}, r.{r['active']}, "
        f"r.{r['source_system']}, o.{o['ods_code']}, u.{u['id']}, u.{u['is_active']}, "
        f"pl.{pl['patient_id']} "
        f"FROM {tokens} t "
        f"JOIN {apps} a ON a.{a['id']} = t.{t['application_id']} "
        f"LEFT JOIN {registrations} r ON r.{r['application_id']} = a.{a['id']} "
        f"LEFT JOIN {orgs} o ON o.{o['id']} = r.{r['organisation_id']} "
        f"LEFT JOIN {users} u ON u.{u['id']} = t.{t['user_id']} "
        f"LEFT JOIN {links} pl ON pl.{pl['user_id']} = u.{u['id']} "
        f"WHERE t.{t['token_checksum']} = %s",
        [checksum],
        prepared=True,
    )
    return found[0] if found else None
