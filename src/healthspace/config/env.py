"""Read the environment once, at settings import; app code reads settings, never os.environ.

Secrets come from the environment. Outside production a missing secret is
generated once and kept in ``<data dir>/DEMO-SECRETS-NOT-FOR-REAL-DATA.json``
so that ``healthspace up`` works on a new machine; in production
(``HEALTHSPACE_ENV=production``) a missing secret stops the service.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

TRUE = {"1", "true", "yes", "on"}


class ConfigurationError(RuntimeError):
    pass


def _checkout_root() -> Path:
    # src/healthspace/config/env.py -> the checkout (when installed editable or run from source)
    here = Path(__file__).resolve().parents[3]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def get(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def get_bool(name: str, default: bool) -> bool:
    value = get(name)
    return default if value is None else value.strip().lower() in TRUE


def get_decimal(name: str) -> Decimal | None:
    """A non-negative amount (e.g. pounds), or None when unset."""
    value = get(name)
    if value is None:
        return None
    try:
        amount = Decimal(value.strip().replace(",", "").removeprefix("£"))
    except InvalidOperation:
        raise ConfigurationError(f"{name} must be an amount such as 250000") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigurationError(f"{name} must be an amount such as 250000")
    return amount


def get_int(name: str, default: int) -> int:
    value = get(name)
    return default if value is None else int(value)


ENVIRONMENT = (get("HEALTHSPACE_ENV", "demo") or "demo").lower()
IS_PRODUCTION = ENVIRONMENT == "production"
CHECKOUT_ROOT = _checkout_root()
DATA_DIR = Path(get("HEALTHSPACE_DATA_DIR", str(CHECKOUT_ROOT / "data"))).resolve()
DEMO_SECRETS_FILE = DATA_DIR / "DEMO-SECRETS-NOT-FOR-REAL-DATA.json"


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _new_rsa_key() -> str:
    # signs OpenID Connect ID tokens (SMART on FHIR: openid fhirUser)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


_DEMO_GENERATORS = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "HEALTHSPACE_KEK": _new_key,
    "HEALTHSPACE_INDEX_KEY": _new_key,
    "HEALTHSPACE_AUDIT_SIGNING_KEY": _new_key,
    "HEALTHSPACE_RECEIPT_SIGNING_KEY": _new_key,
    "HEALTHSPACE_OIDC_RSA_KEY": _new_rsa_key,
}


def new_secrets() -> dict[str, str]:
    """A fresh value of every secret the service needs, as an operator would generate
    them (the demo's stored set, and test and bench installations in production mode)."""
    return {name: generate() for name, generate in _DEMO_GENERATORS.items()}


def _demo_secrets() -> dict[str, str]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = {}
    if DEMO_SECRETS_FILE.exists():
        stored = json.loads(DEMO_SECRETS_FILE.read_text())
    missing = {k: gen() for k, gen in _DEMO_GENERATORS.items() if k not in stored}
    if missing:
        stored.update(missing)
        stored["WARNING"] = (
            "DEMO SECRETS. Generated for a demonstration on this machine only. "
            "Never use them for real patient data: set SECRET_KEY, HEALTHSPACE_KEK, "
            "HEALTHSPACE_INDEX_KEY, HEALTHSPACE_AUDIT_SIGNING_KEY, HEALTHSPACE_RECEIPT_SIGNING_KEY and "
            "HEALTHSPACE_OIDC_RSA_KEY in the "
            "environment and "
            "HEALTHSPACE_ENV=production."
        )
        tmp = DEMO_SECRETS_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        tmp.chmod(0o600)
        tmp.replace(DEMO_SECRETS_FILE)
    return stored


USING_DEMO_SECRETS: list[str] = []


def secret(name: str) -> str:
    value = get(name)
    if value is not None:
        return value
    if IS_PRODUCTION:
        raise ConfigurationError(f"{name} must be set in the environment in production.")
    USING_DEMO_SECRETS.append(name)
    return _demo_secrets()[name]


def key_bytes(name: str) -> bytes:
    raw = secret(name)
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ConfigurationError(f"{name} must be 32 bytes, base64 encoded.") from exc
    if len(key) != 32:
        raise ConfigurationError(f"{name} must be 32 bytes, base64 encoded (got {len(key)}).")
    return key


def warn_demo_secrets() -> None:
    if USING_DEMO_SECRETS:
        print(
            "*** DEMO SECRETS IN USE (" + ", ".join(sorted(set(USING_DEMO_SECRETS))) + ") from "
            f"{DEMO_SECRETS_FILE}. Not for real patient data. ***",
            file=sys.stderr,
        )
