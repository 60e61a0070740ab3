from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from healthspace.accounts.models import PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.ops.demo import ensure_demo_logins
from healthspace.smart import testing as smart_testing
from healthspace.smart.validator import fhir_base


@pytest.fixture
def owner(synthetic_patients, settings) -> PatientLink:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_demo_logins(count=1)
    return PatientLink.objects.select_related("user", "patient").get()


@pytest.fixture
def app():
    return smart_testing.patient_app("Medicines Tracker")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def authorize_query(
    app, *, scope: str, challenge: str | None, aud: str | None = None, **extra
) -> str:
    params = {
        "response_type": "code",
        "client_id": app.application.client_id,
        "redirect_uri": smart_testing.REDIRECT,
        "scope": scope,
        "state": "state-123",
        "aud": aud or fhir_base(),
        **extra,
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return urlencode(params)


def approve(client, app, *, scope: str, answer: str = "allow") -> tuple[str, dict]:
    """Go through the consent screen; returns (code verifier, redirect query)."""
    verifier, challenge = pkce()
    page = client.get(f"/oauth/authorize/?{authorize_query(app, scope=scope, challenge=challenge)}")
    assert page.status_code == 200, page.content
    pending = re.search(r'name="pending" value="([^"]+)"', page.content.decode()).group(1)
    answered = client.post("/oauth/authorize/", {"pending": pending, "answer": answer})
    assert answered.status_code == 302, answered.content
    location = answered["Location"]
    assert location.startswith(smart_testing.REDIRECT)
    return verifier, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def signed_in(owner):
    return signed_in_client(owner.user)
