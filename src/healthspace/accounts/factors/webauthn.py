"""WebAuthn ceremonies (passkeys) with py_webauthn: options out, responses checked.

The relying party is this site: its id is the request's host name unless
``HEALTHSPACE_WEBAUTHN_RP_ID`` says otherwise, and the origin the browser reports must be
exactly ours (``HEALTHSPACE_WEBAUTHN_ORIGINS`` or the request's scheme and host). A
challenge lives in the session, belongs to one user and one purpose, is used at most once
and for at most five minutes.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import webauthn
from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port
from webauthn.helpers import bytes_to_base64url, parse_authenticator_data
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import (
    parse_authentication_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from healthspace.vault.services import index

RP_NAME = "HealthSpace"
CHALLENGE_SESSION_KEY = "hs_webauthn"
CHALLENGE_MAX_SECONDS = 300
TIMEOUT_MS = 120_000
REGISTER = "register"
AUTHENTICATE = "authenticate"


class CeremonyError(Exception):
    """A response we refuse. ``reason`` is for the attempt log; never shown as is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def rp_id(request: HttpRequest) -> str:
    configured = getattr(settings, "HEALTHSPACE_WEBAUTHN_RP_ID", "") or ""
    if configured:
        return configured
    # get_host() is already checked against ALLOWED_HOSTS; browsers want the bare name.
    domain, _port = split_domain_port(request.get_host())
    return domain


def expected_origins(request: HttpRequest) -> list[str]:
    configured = getattr(settings, "HEALTHSPACE_WEBAUTHN_ORIGINS", None) or []
    if isinstance(configured, str):
        configured = [o for o in configured.split(",") if o]
    if configured:
        return list(configured)
    return [f"{request.scheme}://{request.get_host()}"]


def user_handle(user) -> bytes:
    """A stable WebAuthn user id that is not the email or the database id (the spec asks
    that it carry no personal information): a keyed hash of the user's key."""
    return bytes.fromhex(index("webauthn-user-handle", str(user.pk)))


def _uv(staff: bool) -> UserVerificationRequirement:
    # Staff: user verification required (PIN or biometric on the authenticator), so the
    # passkey alone is a phishing-resistant multi-factor login. Patients: preferred, so
    # simple security keys without a PIN still work as a second factor.
    return UserVerificationRequirement.REQUIRED if staff else UserVerificationRequirement.PREFERRED


def _descriptors(passkeys: list[Any]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=webauthn.base64url_to_bytes(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports if t in known] or None,
        )
        for p in passkeys
    ]


def _remember(request: HttpRequest, *, purpose: str, user_id: int, challenge: bytes) -> None:
    request.session[CHALLENGE_SESSION_KEY] = {
        "purpose": purpose,
        "user": user_id,
        "challenge": bytes_to_base64url(challenge),
        "at": time.time(),
    }


def _take(request: HttpRequest, *, purpose: str, user_id: int) -> bytes:
    """The pending challenge, removed from the session whatever the outcome (single use)."""
    state = request.session.pop(CHALLENGE_SESSION_KEY, None)
    if (
        not isinstance(state, dict)
        or state.get("purpose") != purpose
        or state.get("user") != user_id
    ):
        raise CeremonyError("no-challenge")
    if time.time() - float(state.get("at", 0)) > CHALLENGE_MAX_SECONDS:
        raise CeremonyError("challenge-expired")
    return webauthn.base64url_to_bytes(state["challenge"])


def registration_options(
    request: HttpRequest, *, user, existing: list[Any], staff: bool
) -> dict[str, Any]:
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_registration_options(
        rp_id=rp_id(request),
        rp_name=RP_NAME,
        user_id=user_handle(user),
        user_name=user.get_username(),
        user_display_name=user.get_username(),
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=_uv(staff),
        ),
        # The same authenticator twice would only confuse the list of passkeys.
        exclude_credentials=_descriptors(existing),
    )
    _remember(request, purpose=REGISTER, user_id=user.pk, challenge=challenge)
    return _as_dict(options)


@dataclass(frozen=True)
class NewCredential:
    credential_id: str
    public_key: bytes
    sign_count: int
    aaguid: str
    user_verified: bool
    transports: list[str]


def registration_verify(
    request: HttpRequest, *, user, credential: dict[str, Any], staff: bool
) -> NewCredential:
    challenge = _take(request, purpose=REGISTER, user_id=user.pk)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(request),
            expected_origin=expected_origins(request),
            require_user_verification=staff,
        )
    except WebAuthnException as exc:
        raise CeremonyError("invalid-registration") from exc
    transports = credential.get("response", {}).get("transports") or []
    known = {t.value for t in AuthenticatorTransport}
    return NewCredential(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes(verified.credential_public_key),
        sign_count=verified.sign_count,
        aaguid=str(verified.aaguid),
        user_verified=bool(verified.user_verified),
        transports=[t for t in transports if isinstance(t, str) and t in known],
    )


def authentication_options(
    request: HttpRequest, *, user, passkeys: list[Any], staff: bool
) -> dict[str, Any]:
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(request),
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(passkeys),
        user_verification=_uv(staff),
    )
    _remember(request, purpose=AUTHENTICATE, user_id=user.pk, challenge=challenge)
    return _as_dict(options)


def parse_assertion(credential: dict[str, Any]) -> AuthenticationCredential:
    try:
        return parse_authentication_credential_json(credential)
    except WebAuthnException as exc:
        raise CeremonyError("malformed-assertion") from exc


def credential_id_of(assertion: AuthenticationCredential) -> str:
    return bytes_to_base64url(assertion.raw_id)


@dataclass(frozen=True)
class Assertion:
    new_sign_count: int
    user_verified: bool


def authentication_verify(
    request: HttpRequest,
    *,
    user,
    assertion: AuthenticationCredential,
    public_key: bytes,
    sign_count: int,
    staff: bool,
) -> Assertion:
    challenge = _take(request, purpose=AUTHENTICATE, user_id=user.pk)
    try:
        counter = parse_authenticator_data(bytes(assertion.response.authenticator_data)).sign_count
    except Exception as exc:  # any malformed authenticator data is a refusal
        raise CeremonyError("malformed-assertion") from exc
    # A counter that does not move forward means two copies of one key exist (a cloned
    # authenticator): refuse, and say so in the log. Authenticators that keep no counter
    # report 0 every time, which is allowed.
    if (counter or sign_count) and counter <= sign_count:
        raise CeremonyError("sign-count-regression")
    try:
        verified = webauthn.verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id=rp_id(request),
            expected_origin=expected_origins(request),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=staff,
        )
    except WebAuthnException as exc:
        raise CeremonyError("invalid-assertion") from exc
    return Assertion(new_sign_count=verified.new_sign_count, user_verified=verified.user_verified)


def _as_dict(options: Any) -> dict[str, Any]:
    return json.loads(webauthn.options_to_json(options))
