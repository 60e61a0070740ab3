"""Writes of the smart app: registering clients (operators), a patient connecting and
disconnecting an app. Each audited in the transaction of the change."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from healthspace.access.actors import Actor
from healthspace.access.policy import Action
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.records.importer import ODS_SYSTEM
from healthspace.records.models import Organisation
from healthspace.smart import scopes as smart_scopes
from healthspace.smart.assertions import check_jwks
from healthspace.smart.models import AppRegistration

OPERATOR = Actor.system("smart-clients")  # `healthspace smart-client`, run on the server


@dataclass(frozen=True)
class Registered:
    client_id: str
    client_secret: str | None  # shown once (confidential patient apps); never stored plain


def _check_redirect_uris(uris: list[str]) -> str:
    if not uris:
        raise InvalidInput("a patient app needs at least one redirect URI")
    for uri in uris:
        loopback = uri.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        if not (uri.startswith("https://") or loopback or (":/" in uri and "://" not in uri)):
            # https, a loopback address (native apps, RFC 8252), or a private-use scheme
            raise InvalidInput(f"redirect URI {uri!r} must be https, loopback or app-specific")
        if "#" in uri or " " in uri:
            raise InvalidInput(f"redirect URI {uri!r} may not hold a fragment or a space")
    return " ".join(uris)


def client_register_patient_app(
    *, name: str, redirect_uris: list[str], publisher: str = "", confidential: bool = False
) -> Registered:
    """A patient app (SMART standalone launch): authorization code with PKCE (S256)."""
    application_model = get_application_model()
    secret = secrets.token_urlsafe(48) if confidential else ""
    with transaction.atomic():
        app = application_model.objects.create(
            name=name,
            client_type=(
                application_model.CLIENT_CONFIDENTIAL
                if confidential
                else application_model.CLIENT_PUBLIC
            ),
            authorization_grant_type=application_model.GRANT_AUTHORIZATION_CODE,
            redirect_uris=_check_redirect_uris(redirect_uris),
            client_secret=secret,
            hash_client_secret=True,
            algorithm=application_model.RS256_ALGORITHM,  # ID tokens (openid fhirUser)
            skip_authorization=False,
        )
        AppRegistration.objects.create(
            application=app, kind=AppRegistration.Kind.PATIENT_APP, publisher=publisher
        )
        audit_record(
            actor=OPERATOR,
            action="oauth-client.register",
            patient_id=None,
            outcome="success",
            reason="operator-command:smart-clients",
            detail={"kind": "patient-app"},
        )
    return Registered(app.client_id, secret or None)


def client_register_system(
    *,
    name: str,
    ods_code: str,
    jwks: Any,
    allowed_scopes: str,
    source_system: str = "",
    organisation_name: str = "",
) -> Registered:
    """A system client (SMART Backend Services) for one organisation: JWT client
    assertions signed by a key in ``jwks``; at most ``allowed_scopes`` (system/ scopes)."""
    jwks = check_jwks(jwks)
    scopes = allowed_scopes.split()
    bad = [
        s for s in scopes if (g := smart_scopes.parse_resource_scope(s)) is None or g[0] != "system"
    ]
    if not scopes or bad:
        raise InvalidInput(f"allowed scopes must be system/ scopes (not {' '.join(bad)})")
    ods_code = ods_code.strip().upper()
    if not ods_code.isalnum() or not 3 <= len(ods_code) <= 10:
        raise InvalidInput("an ODS code is 3 to 10 letters and digits")
    application_model = get_application_model()
    with transaction.atomic():
        organisation = Organisation.objects.filter(ods_code=ods_code).first()
        if organisation is None:
            organisation = Organisation.objects.create(
                ods_code=ods_code,
                name=organisation_name or ods_code,
                identifier_system=ODS_SYSTEM,
                identifier_value=ods_code,
            )
        app = application_model.objects.create(
            name=name,
            client_type=application_model.CLIENT_CONFIDENTIAL,
            authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
            redirect_uris="",
            # never used: a system client authenticates with its key only
            client_secret=secrets.token_urlsafe(48),
            hash_client_secret=True,
        )
        AppRegistration.objects.create(
            application=app,
            kind=AppRegistration.Kind.SYSTEM,
            organisation=organisation,
            allowed_scopes=" ".join(scopes),
            jwks=jwks,
            source_system=source_system or f"urn:healthspace:client:{app.client_id}",
        )
        audit_record(
            actor=OPERATOR,
            action="oauth-client.register",
            patient_id=None,
            outcome="success",
            reason="operator-command:smart-clients",
            detail={"kind": "system", "org": ods_code},
        )
    return Registered(app.client_id, None)


def _registration(client_id: str) -> AppRegistration:
    found = (
        AppRegistration.objects.select_related("application")
        .filter(application__client_id=client_id)
        .first()
    )
    if found is None:
        raise NotFound(f"no client {client_id}")
    return found


def _revoke_all(application, user=None) -> int:
    scope = {"application": application} | ({"user": user} if user is not None else {})
    get_refresh_token_model().objects.filter(**scope).delete()
    get_id_token_model().objects.filter(**scope).delete()
    get_grant_model().objects.filter(**scope).delete()
    deleted, _ = get_access_token_model().objects.filter(**scope).delete()
    return deleted


def tokens_revoke_for_user(user) -> int:
    """Every OAuth token of every app the user connected (access and refresh tokens, ID
    tokens, unused codes) goes at once: the next request with them gets 401 and the
    refresh token cannot get a new one. Run in the caller's transaction (the account
    secured after a compromise report). Returns how many apps held tokens."""
    apps = set(
        get_access_token_model().objects.filter(user=user).values_list("application_id", flat=True)
    ) | set(
        get_refresh_token_model()
        .objects.filter(user=user, revoked__isnull=True)
        .values_list("application_id", flat=True)
    )
    get_refresh_token_model().objects.filter(user=user).delete()
    get_id_token_model().objects.filter(user=user).delete()
    get_grant_model().objects.filter(user=user).delete()
    get_access_token_model().objects.filter(user=user).delete()
    return len(apps)


def client_disable(*, client_id: str) -> None:
    """Stop a client at once: its tokens go, and it cannot get new ones."""
    with transaction.atomic():
        registration = _registration(client_id)
        registration.active = False
        registration.save(update_fields=["active"])
        _revoke_all(registration.application)
        audit_record(
            actor=OPERATOR,
            action="oauth-client.disable",
            patient_id=None,
            outcome="success",
            reason="operator-command:smart-clients",
            detail={"kind": registration.kind},
        )


def client_jwks_set(*, client_id: str, jwks: Any) -> None:
    """Replace a system client's keys (rotation: register the new key beside the old one,
    then the new set without the old one)."""
    jwks = check_jwks(jwks)
    with transaction.atomic():
        registration = _registration(client_id)
        if registration.kind != AppRegistration.Kind.SYSTEM:
            raise InvalidInput("only system clients have keys")
        registration.jwks = jwks
        registration.save(update_fields=["jwks"])
        audit_record(
            actor=OPERATOR,
            action="oauth-client.keys",
            patient_id=None,
            outcome="success",
            reason="operator-command:smart-clients",
            detail={"keys": len(jwks["keys"])},
        )


def app_authorised_record(*, actor: Actor, client_id: str, scopes: list[str]) -> None:
    """Audit a patient's approval of an app (in the transaction that creates the grant)."""
    audit_record(
        actor=actor,
        action=Action.APP_AUTHORISE,
        patient_id=actor.patient_id,
        outcome="success",
        reason="own-record",
        detail={"client": client_id, "scopes": len(scopes)},
    )


def app_disconnect(*, actor: Actor, user, client_id: str) -> bool:
    """The patient disconnects an app: every token, refresh token and code it holds for
    them goes at once (the next request with them gets 401). True if it was connected."""
    decision = access_checked(actor=actor, action=Action.APP_REVOKE, patient_id=actor.patient_id)
    if not decision.allowed:
        raise NotFound("There is no app here that you can disconnect.")
    application = get_application_model().objects.filter(client_id=client_id).first()
    if application is None:
        return False
    with transaction.atomic():
        revoked = _revoke_all(application, user)
        audit_record(
            actor=actor,
            action=Action.APP_REVOKE,
            patient_id=actor.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"client": client_id, "tokens": revoked},
        )
    return revoked > 0
