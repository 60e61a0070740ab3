"""Security settings checked in CI (docs/security.md):

- production settings: DEBUG off (and refused if asked for), HTTPS redirect, HSTS, secure
  cookies;
- every URL of the URLconf, fetched with GET as an anonymous visitor, a signed-in patient
  and a signed-in clinician, over HTTPS as production serves it: every response, pages,
  API answers, redirects and error pages (403, 404, 405, 500) alike, carries the security
  headers (CSP with frame-ancestors 'none', X-Frame-Options, Referrer-Policy,
  Cross-Origin-Opener-Policy, nosniff, HSTS);
- the bandit rules (ruff "S") are on, and every exception on a line says why.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
from django.test import Client
from django.urls import get_resolver

from healthspace.accounts.models import PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from tests.test_every_url import _walk

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[1]
HSTS = 31_536_000
HOST = "healthspace.example"


def _production_settings(**extra: str) -> dict:
    """The settings production would load (secrets from the environment), in a fresh
    interpreter: DEBUG and the HTTPS settings as production has them."""
    import base64
    import os
    import secrets

    key = lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHSPACE_", "SECURE_"))}
    env |= {
        "HEALTHSPACE_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HEALTHSPACE_KEK": key(),
        "HEALTHSPACE_INDEX_KEY": key(),
        "HEALTHSPACE_AUDIT_SIGNING_KEY": key(),
        "HEALTHSPACE_RECEIPT_SIGNING_KEY": key(),
        "HEALTHSPACE_OIDC_RSA_KEY": "not read at import",
        "HEALTHSPACE_DATA_DIR": str(ROOT / "build" / "test-production-settings"),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        **extra,
    }
    code = (
        "import json; from healthspace.config import settings as s; print(json.dumps({k: "
        "getattr(s, k, None) for k in ('DEBUG', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS',"
        " 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'X_FRAME_OPTIONS',"
        " 'SECURE_REFERRER_POLICY', 'SECURE_CROSS_ORIGIN_OPENER_POLICY')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    return {"returncode": done.returncode, "stderr": done.stderr, "stdout": done.stdout}


def test_production_settings_have_debug_off_and_https_on():
    loaded = _production_settings()
    assert loaded["returncode"] == 0, loaded["stderr"][-2000:]
    values = json.loads(loaded["stdout"])
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True and values["SECURE_HSTS_SECONDS"] >= HSTS
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["X_FRAME_OPTIONS"] == "DENY"


def test_production_refuses_debug():
    loaded = _production_settings(HEALTHSPACE_DEBUG="1")
    assert loaded["returncode"] != 0
    assert "HEALTHSPACE_DEBUG" in loaded["stderr"]


# --- the walk --------------------------------------------------------------------------


@pytest.fixture
def production_like(settings):
    settings.ALLOWED_HOSTS = [HOST]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = HSTS
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ROOT_URLCONF = "tests.security_urls"
    settings.DEBUG = False
    return settings


@pytest.fixture
def people(synthetic_patients, production_like):
    from healthspace.access.roles import Role
    from healthspace.fhir_api.tests.conftest import converse
    from healthspace.messaging.models import Attachment, Thread
    from healthspace.ops.demo import ensure_demo_logins
    from healthspace.staff.testing import make_staff_user

    ensure_demo_logins(count=2)
    owner, other = list(PatientLink.objects.select_related("user", "patient").order_by("user"))[:2]
    converse(owner, other)
    attachment = Attachment.objects.filter(patient_id=owner.patient_id).first()
    clinician = make_staff_user(
        Role.CLINICIAN, ods=owner.patient.registered_practice.ods_code, first="Ann", last="Lee"
    )
    values = {
        "thread_id": Thread.objects.filter(patient_id=owner.patient_id).first().pk,
        "attachment_id": attachment.pk,
        "patient_id": owner.patient_id,
        "fhir_id": owner.patient_id,
        "rtype": "Patient",
        "measure": "blood-pressure",
        "kind": "communication",
        "group_id": owner.patient.registered_practice.ods_code,
        "name": "Patient.ndjson",
        "vid": "1",
    }
    return {
        "anonymous": Client(HTTP_HOST=HOST, raise_request_exception=False),
        "patient": _secure(signed_in_client(owner.user, second_factor="totp")),
        "clinician": _secure(signed_in_client(clinician, second_factor="passkey")),
        "values": values,
    }


def _secure(client: Client) -> Client:
    client.defaults["HTTP_HOST"] = HOST
    client.raise_request_exception = False
    return client


CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def _fill(route: str, values: dict) -> str:
    def one(match: re.Match) -> str:
        kind, name = match.group("kind") or "str", match.group("name")
        if name in values:
            return str(values[name])
        return {"int": "1", "uuid": str(uuid.uuid4()), "slug": "x", "path": "x"}.get(kind, "x")

    return "/" + CONVERTER.sub(one, route).replace("^.*$", "no-such-route")


def _urls(values: dict) -> list[str]:
    routes = [r for r, _ in _walk(get_resolver("healthspace.config.urls").url_patterns)]
    urls = [_fill(r, values) for r in routes if not r.startswith("operator/admin/")]
    return [*urls, "/operator/admin/", "/no-such-page/", "/test-boom/"]


def _missing(response) -> list[str]:
    csp = response.get("Content-Security-Policy", "")
    wrong = []
    # downloads (attachments, exports) are stricter still: default-src 'none' and a sandbox
    strict_enough = "default-src 'self'" in csp or "default-src 'none'" in csp
    if "frame-ancestors 'none'" not in csp or not strict_enough:
        wrong.append(f"CSP {csp!r}")
    if response.get("X-Frame-Options") != "DENY":
        wrong.append("X-Frame-Options")
    if response.get("Referrer-Policy") != "same-origin":
        wrong.append("Referrer-Policy")
    if response.get("Cross-Origin-Opener-Policy") != "same-origin":
        wrong.append("Cross-Origin-Opener-Policy")
    if response.get("X-Content-Type-Options") != "nosniff":
        wrong.append("X-Content-Type-Options")
    if response.get("Strict-Transport-Security") != f"max-age={HSTS}; includeSubDomains":
        wrong.append(f"HSTS {response.get('Strict-Transport-Security')!r}")
    return wrong


def test_every_url_as_everyone_carries_the_security_headers(people):
    values = people["values"]
    urls = _urls(values)
    assert len(urls) > 120
    statuses: dict[int, int] = {}
    wrong = []
    for who in ("anonymous", "patient", "clinician"):
        client = people[who]
        for url in urls:
            response = client.get(url, secure=True)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            wrong += [f"{who} GET {url} ({response.status_code}): {m}" for m in _missing(response)]
    assert not wrong, "\n".join(wrong[:40])
    # the walk reached real pages, redirects, refusals and every kind of error page
    assert {200, 302, 404, 405, 500} <= set(statuses), statuses
    assert statuses[200] > 60, statuses


def test_plain_http_is_sent_to_https(people):
    response = people["anonymous"].get("/login/")
    assert response.status_code == 301
    assert response["Location"] == f"https://{HOST}/login/"


def test_a_refused_form_post_403_carries_them_too(people):
    client = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "x", "password": "y"}, secure=True)
    assert response.status_code == 403
    assert not _missing(response), _missing(response)


# --- the bandit rules --------------------------------------------------------------------


def test_the_bandit_rules_are_on_and_every_exception_says_why():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"]
    bare = []
    for path in [
        *ROOT.glob("src/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("bench/**/*.py"),
    ]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            found = re.search(r"#\s*noqa:\s*(S\d+(?:\s*,\s*[A-Z]+\d+)*)(.*)$", line)
            if found and not found.group(2).strip(" -():"):
                bare.append(f"{path.relative_to(ROOT)}:{n}")
    assert not bare, "noqa for a security rule without a reason:\n" + "\n".join(bare)
