"""Test helpers: registered clients, tokens issued as the token endpoint would, signed
client assertions."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from oauth2_provider.models import get_access_token_model, get_application_model

from healthspace.core.clock import now
from healthspace.smart import services
from healthspace.smart.models import AppRegistration
from healthspace.smart.validator import token_endpoint

REDIRECT = "https://app.example.test/callback"


def patient_app(name: str = "Test app") -> AppRegistration:
    registered = services.client_register_patient_app(name=name, redirect_uris=[REDIRECT])
    return AppRegistration.objects.get(application__client_id=registered.client_id)


def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwks(key, kid: str = "key-1") -> dict:
    alg = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
    algorithm = jwt.algorithms.ECAlgorithm if alg == "ES384" else jwt.algorithms.RSAAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "alg": alg, "use": "sig"}]}


def system_client(
    ods: str = "Y00001", scopes: str = "system/*.rs system/*.cu", key=None, kid: str = "key-1"
) -> tuple[AppRegistration, object]:
    key = key or ec_key()
    registered = services.client_register_system(
        name=f"GP system {ods}", ods_code=ods, jwks=public_jwks(key, kid), allowed_scopes=scopes
    )
    return AppRegistration.objects.get(application__client_id=registered.client_id), key


def assertion(
    client_id: str,
    key,
    *,
    kid: str = "key-1",
    audience: str | None = None,
    lifetime: int = 240,
    jti: str | None = None,
    alg: str | None = None,
) -> str:
    alg = alg or ("ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384")
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience or token_endpoint(),
        "exp": int(time.time()) + lifetime,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def issue_token(
    registration: AppRegistration, *, scope: str, user=None, seconds: int = 3600
) -> str:
    """A live access token, as the token endpoint would store it (hashed at rest)."""
    raw = secrets.token_urlsafe(32)
    token = get_access_token_model()(
        user=user,
        application=registration.application,
        scope=scope,
        expires=now() + timedelta(seconds=seconds),
    )
    from oauth2_provider.models import set_token_value

    set_token_value(token, raw)
    token.save()
    return raw


def application(client_id: str):
    return get_application_model().objects.get(client_id=client_id)
