"""SMART Backend Services: the client's signed JWT assertion (RFC 7523, private_key_jwt).

Checked here (with PyJWT), before any token is issued:

- the header names an allowed algorithm (RS384 or ES384, as SMART requires) and a ``kid``
  found in the client's registered JWK Set; the signature verifies with that key;
- ``iss`` and ``sub`` are the client id of an active system client;
- ``aud`` is this server's token endpoint, exactly;
- ``exp`` is in the future and no more than five minutes away;
- ``jti`` has not been seen before for this client (replay), remembered until ``exp``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.db import IntegrityError, transaction

from healthspace.core.clock import now
from healthspace.smart.models import AppRegistration, AssertionJti

log = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_LIFETIME = timedelta(minutes=5)
LEEWAY_SECONDS = 30  # clocks of the two systems differ a little
MAX_ASSERTION_BYTES = 16 * 1024


class AssertionRejected(Exception):
    """Why an assertion was refused (logged for the operator; the client is told only
    ``invalid_client``, as RFC 6749 says)."""


def key_for(jwks: dict[str, Any], kid: str, alg: str) -> jwt.PyJWK:
    for candidate in (jwks or {}).get("keys") or []:
        if isinstance(candidate, dict) and candidate.get("kid") == kid:
            if candidate.get("alg") not in (None, alg):
                raise AssertionRejected("the key's alg is not the assertion's")
            try:
                return jwt.PyJWK(candidate, algorithm=alg)
            except jwt.PyJWTError as exc:
                raise AssertionRejected("the registered key cannot verify this algorithm") from exc
    raise AssertionRejected("no registered key has this kid")


def check_jwks(jwks: Any) -> dict[str, Any]:
    """A JWK Set an operator registers: public keys only, each with a kid, usable for
    RS384 or ES384. Raises ValueError with the reason."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError('a JWK Set is {"keys": [...]} with at least one key')
    kids = set()
    for key in jwks["keys"]:
        if not isinstance(key, dict) or not key.get("kid"):
            raise ValueError("every key needs a kid")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise ValueError(f"key {key['kid']} holds private key material: register public keys")
        alg = key.get("alg") or ("RS384" if key.get("kty") == "RSA" else "ES384")
        if alg not in ALGORITHMS:
            raise ValueError(f"key {key['kid']}: alg must be RS384 or ES384")
        try:
            jwt.PyJWK(key, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise ValueError(f"key {key['kid']} is not a usable {alg} key: {exc}") from exc
        if key["kid"] in kids:
            raise ValueError(f"kid {key['kid']} appears twice")
        kids.add(key["kid"])
    return {"keys": jwks["keys"]}


def verify(assertion: str, *, audience: str) -> AppRegistration:
    """The active system client whose signed assertion this is; AssertionRejected if not."""
    if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION_BYTES:
        raise AssertionRejected("missing or oversized assertion")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AssertionRejected("not a JWT") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise AssertionRejected("algorithm not allowed")
    if not isinstance(kid, str) or not kid:
        raise AssertionRejected("no kid in the header")
    client_id = unverified.get("iss")
    if not isinstance(client_id, str) or unverified.get("sub") != client_id:
        raise AssertionRejected("iss and sub must both be the client id")
    registration = (
        AppRegistration.objects.select_related("application", "organisation")
        .filter(application__client_id=client_id, kind=AppRegistration.Kind.SYSTEM, active=True)
        .first()
    )
    if registration is None:
        raise AssertionRejected("no active system client with this id")
    key = key_for(registration.jwks, kid, alg)
    try:
        claims = jwt.decode(
            assertion,
            key=key,
            algorithms=[alg],
            audience=audience,
            issuer=client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AssertionRejected("expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise AssertionRejected("wrong audience") from exc
    except jwt.InvalidSignatureError as exc:
        raise AssertionRejected("signature does not verify") from exc
    except jwt.PyJWTError as exc:
        raise AssertionRejected(f"invalid: {type(exc).__name__}") from exc
    at = now()
    expires = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    if expires > at + MAX_LIFETIME + timedelta(seconds=LEEWAY_SECONDS):
        raise AssertionRejected("exp more than five minutes ahead")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise AssertionRejected("bad jti")
    try:
        with transaction.atomic():
            AssertionJti.objects.filter(registration=registration, expires_at__lt=at).delete()
            AssertionJti.objects.create(
                registration=registration,
                jti=jti,
                expires_at=max(expires, at) + timedelta(seconds=LEEWAY_SECONDS),
            )
    except IntegrityError as exc:
        raise AssertionRejected("jti already used (replay)") from exc
    return registration
