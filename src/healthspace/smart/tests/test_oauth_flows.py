"""OAuth 2.0 end to end: a patient connects an app on the consent screen (authorization
code + PKCE), refreshes with offline_access, disconnects it; a system client gets tokens
with a signed JWT assertion and nothing else works."""

from __future__ import annotations

import jwt
import pytest
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from healthspace.audit.models import AuditEvent
from healthspace.smart import services
from healthspace.smart import testing as smart_testing
from healthspace.smart.assertions import JWT_BEARER
from healthspace.smart.tests.conftest import approve, authorize_query, pkce, signed_in

pytestmark = pytest.mark.django_db

FULL = "launch/patient openid fhirUser patient/*.rs offline_access"


def exchange(app, code: str, verifier: str) -> Client.response_class:
    return Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": smart_testing.REDIRECT,
            "client_id": app.application.client_id,
            "code_verifier": verifier,
        },
    )


def api(token: str, path: str):
    return Client().get(f"/fhir/R4/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_standalone_launch_with_pkce_gives_a_token_for_the_patient_only(owner, app):
    client = signed_in(owner)
    verifier, query = approve(client, app, scope=FULL)
    assert query["state"] == "state-123"
    assert query["iss"].endswith("/oauth")  # RFC 9207 mix-up defence
    response = exchange(app, query["code"], verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["patient"] == str(owner.patient_id)
    assert set(body["scope"].split()) == set(FULL.split())
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    assert response["Cache-Control"] == "no-store"
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["fhirUser"].endswith(f"/Patient/{owner.patient_id}")
    assert api(body["access_token"], f"Patient/{owner.patient_id}").status_code == 200
    # the approval is in the patient's trail, with the app
    event = AuditEvent.objects.get(action="app.authorise", patient_id=owner.patient_id)
    assert event.detail["client"] == app.application.client_id
    # tokens are stored only as hashes (RFC 9700)
    assert not get_access_token_model().objects.filter(token=body["access_token"]).exists()


def test_the_code_works_once_and_only_with_its_verifier(owner, app):
    _, query = approve(signed_in(owner), app, scope=FULL)
    assert exchange(app, query["code"], "wrong" * 10).status_code == 400
    verifier2, query2 = approve(signed_in(owner), app, scope=FULL)
    assert exchange(app, query2["code"], verifier2).status_code == 200
    assert exchange(app, query2["code"], verifier2).status_code == 400  # replayed code


def test_pkce_is_required_and_plain_is_refused(owner, app):
    client = signed_in(owner)
    for extra in ({}, {"code_challenge": "x" * 43, "code_challenge_method": "plain"}):
        query = authorize_query(app, scope=FULL, challenge=None, **extra)
        response = client.get(f"/oauth/authorize/?{query}")
        assert response.status_code == 302
        assert "error=invalid_request" in response["Location"]
        assert "code=" not in response["Location"]


def test_a_token_for_another_server_is_never_issued(owner, app):
    _, challenge = pkce()
    query = authorize_query(app, scope=FULL, challenge=challenge, aud="https://evil.example/fhir")
    response = signed_in(owner).get(f"/oauth/authorize/?{query}")
    assert response.status_code == 400
    assert b"different service" in response.content


def test_an_unknown_redirect_uri_is_never_redirected_to(owner, app):
    _, challenge = pkce()
    query = authorize_query(
        app, scope=FULL, challenge=challenge, redirect_uri="https://evil.example/"
    )
    response = signed_in(owner).get(f"/oauth/authorize/?{query}")
    assert response.status_code == 400
    assert "evil" not in response.get("Location", "")


def test_without_login_the_request_waits_for_login_and_second_factor(owner, app):
    _, challenge = pkce()
    query = authorize_query(app, scope=FULL, challenge=challenge)
    client = Client()
    response = client.get(f"/oauth/authorize/?{query}")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=%2Foauth%2Fauthorize%2Fresume%2F")
    # after login the resume page sends the browser back to the same request
    login_keeping_session(client, owner.user, second_factor="")
    resumed = client.get("/oauth/authorize/resume/")
    assert resumed.status_code == 302 and resumed["Location"].endswith(query)
    # but with no second factor passed in this session, no consent screen yet
    again = client.get(resumed["Location"])
    assert again.status_code == 302 and "two-factor" in again["Location"]


def login_keeping_session(client, user, *, second_factor: str) -> None:
    """As login does: the anonymous session's data survives (Django cycles the key)."""
    from datetime import timedelta

    from django.conf import settings

    from healthspace.accounts.models import UserSession
    from healthspace.accounts.sessions.services import SECOND_FACTOR_KEY, key_hash
    from healthspace.core.clock import now

    client.force_login(user)
    session = client.session
    if second_factor:
        session[SECOND_FACTOR_KEY] = second_factor
    session.save()
    UserSession.objects.create(
        user=user,
        key_hash=key_hash(session.session_key),
        created_at=now(),
        last_seen_at=now(),
        expires_at=now() + timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS),
        device="test",
        second_factor=second_factor,
    )


def test_staff_and_basic_accounts_cannot_connect_apps(owner, app):
    from healthspace.staff.testing import make_staff_user

    clinician = make_staff_user("clinician", ods="Y00001", username="c@example.nhs.uk")
    client = signed_in_client_passkey(clinician)
    _, challenge = pkce()
    response = client.get(
        f"/oauth/authorize/?{authorize_query(app, scope=FULL, challenge=challenge)}"
    )
    assert response.status_code == 403


def signed_in_client_passkey(user):
    from healthspace.accounts.sessions.testing import signed_in_client

    return signed_in_client(user, second_factor="passkey")


def test_saying_no_tells_the_app_and_issues_nothing(owner, app):
    _, query = approve(signed_in(owner), app, scope=FULL, answer="deny")
    assert query["error"] == "access_denied"
    assert "code" not in query
    assert not AuditEvent.objects.filter(action="app.authorise").exists()


def test_a_patient_app_is_granted_reading_of_the_patients_record_only(owner, app):
    verifier, query = approve(
        signed_in(owner), app, scope="patient/*.cruds system/*.rs user/*.rs launch/patient"
    )
    body = exchange(app, query["code"], verifier).json()
    assert set(body["scope"].split()) == {"patient/*.rs", "launch/patient"}
    assert "refresh_token" not in body  # no offline_access, no refresh token


def test_refresh_with_offline_access_rotates_the_refresh_token(owner, app):
    verifier, query = approve(signed_in(owner), app, scope=FULL)
    first = exchange(app, query["code"], verifier).json()
    refreshed = Client().post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": app.application.client_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.content
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == str(owner.patient_id)
    assert api(second["access_token"], f"Patient/{owner.patient_id}").status_code == 200
    reused = Client().post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": app.application.client_id,
        },
    )
    assert reused.status_code == 400  # a rotated refresh token is dead


def test_disconnecting_an_app_stops_it_on_the_next_request(owner, app):
    client = signed_in(owner)
    verifier, query = approve(client, app, scope=FULL)
    body = exchange(app, query["code"], verifier).json()
    page = client.get("/account/apps/")
    assert page.status_code == 200 and b"Medicines Tracker" in page.content
    assert api(body["access_token"], f"Patient/{owner.patient_id}").status_code == 200
    done = client.post("/account/apps/disconnect/", {"client_id": app.application.client_id})
    assert done.status_code == 302
    assert api(body["access_token"], f"Patient/{owner.patient_id}").status_code == 401
    refresh = Client().post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": app.application.client_id,
        },
    )
    assert refresh.status_code == 400
    assert b"Medicines Tracker" not in client.get("/account/apps/").content
    assert AuditEvent.objects.filter(action="app.revoke", patient_id=owner.patient_id).exists()


def test_the_revocation_endpoint_revokes_a_token(owner, app):
    verifier, query = approve(signed_in(owner), app, scope=FULL)
    body = exchange(app, query["code"], verifier).json()
    revoked = Client().post(
        "/oauth/revoke/",
        {"token": body["access_token"], "client_id": app.application.client_id},
    )
    assert revoked.status_code == 200
    assert api(body["access_token"], f"Patient/{owner.patient_id}").status_code == 401


# --- SMART Backend Services ------------------------------------------------------------


def client_credentials(assertion: str, scope: str = "system/*.rs"):
    return Client().post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        },
    )


@pytest.fixture
def feed(db):
    return smart_testing.system_client(ods="Y00001", scopes="system/*.rs system/*.cu")


@pytest.mark.parametrize("kind", ["ES384", "RS384"])
def test_a_signed_assertion_gets_a_system_token(db, kind):
    key = smart_testing.ec_key() if kind == "ES384" else smart_testing.rsa_key()
    registration, _ = smart_testing.system_client(key=key)
    client_id = registration.application.client_id
    response = client_credentials(smart_testing.assertion(client_id, key), "system/*.cruds")
    assert response.status_code == 200, response.content
    body = response.json()
    # registered for system/*.rs and system/*.cu: no delete
    assert set(body["scope"].split()) == {"system/*.crus"}
    assert "refresh_token" not in body and "patient" not in body


def test_system_scopes_are_cut_to_the_registration(feed):
    registration, key = feed
    response = client_credentials(
        smart_testing.assertion(registration.application.client_id, key),
        "system/*.cruds patient/*.rs",
    )
    assert set(response.json()["scope"].split()) == {"system/*.crus"}


def _refused(assertion: str) -> None:
    response = client_credentials(assertion)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


def test_a_replayed_assertion_is_refused(feed):
    registration, key = feed
    assertion = smart_testing.assertion(registration.application.client_id, key)
    assert client_credentials(assertion).status_code == 200
    _refused(assertion)


def test_wrong_audience_expired_too_long_wrong_key_and_wrong_alg_are_refused(feed):
    registration, key = feed
    client_id = registration.application.client_id
    _refused(smart_testing.assertion(client_id, key, audience="https://elsewhere/oauth/token/"))
    _refused(smart_testing.assertion(client_id, key, lifetime=-120))  # expired (past leeway)
    _refused(smart_testing.assertion(client_id, key, lifetime=3600))  # more than 5 minutes
    _refused(smart_testing.assertion(client_id, smart_testing.ec_key()))  # not its key
    _refused(smart_testing.assertion(client_id, key, kid="other"))
    p256 = __import__("cryptography.hazmat.primitives.asymmetric.ec", fromlist=["ec"])
    _refused(
        smart_testing.assertion(client_id, p256.generate_private_key(p256.SECP256R1()), alg="ES256")
    )
    _refused(jwt.encode({"iss": client_id, "sub": client_id}, "s" * 64, algorithm="HS256"))
    _refused("not a jwt")


def test_a_system_client_cannot_use_a_secret_or_the_patient_flow(feed):
    registration, _ = feed
    response = Client().post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            "client_id": registration.application.client_id,
            "client_secret": "guess",
        },
    )
    assert response.status_code == 401


def test_a_disabled_client_loses_its_tokens_and_gets_no_new_one(feed):
    registration, key = feed
    client_id = registration.application.client_id
    token = client_credentials(smart_testing.assertion(client_id, key)).json()["access_token"]
    assert api(token, "metadata").status_code == 200
    services.client_disable(client_id=client_id)
    assert api(token, "Patient?identifier=x|y").status_code == 401
    _refused(smart_testing.assertion(client_id, key))
    assert not get_access_token_model().objects.filter(application__client_id=client_id).exists()
    assert not get_refresh_token_model().objects.filter(application__client_id=client_id).exists()


def test_the_token_endpoint_is_throttled(feed, settings, monkeypatch):
    settings.HEALTHSPACE_OAUTH_TOKEN_RATE_LIMIT = 3
    from types import SimpleNamespace

    from django.core.cache import cache

    from healthspace.smart import throttle

    # one fixed window: a slow machine must not cross a minute boundary between requests
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))
    cache.clear()
    registration, key = feed
    codes = [
        client_credentials(
            smart_testing.assertion(registration.application.client_id, key)
        ).status_code
        for _ in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]


def test_reporting_a_compromised_account_disconnects_every_app(owner, app):
    """'I think someone has seen my record': whoever had the account may have connected an
    app, so every app's access and refresh tokens go in the same step (the next request
    gets 401, the refresh token no new token); other people's tokens stay."""
    from django.contrib.auth import get_user_model

    password = "correct horse battery staple 42"
    owner.user.set_password(password)
    owner.user.save()
    second_app = smart_testing.patient_app("Step Counter")
    client = signed_in(owner)
    connected = []
    for each in (app, second_app):
        verifier, query = approve(client, each, scope=FULL)
        connected.append((each, exchange(each, query["code"], verifier).json()))
    someone_else = get_user_model().objects.create_user(username="else@example.org")
    theirs = smart_testing.issue_token(app, scope="patient/*.rs", user=someone_else)
    for _, body in connected:
        assert api(body["access_token"], f"Patient/{owner.patient_id}").status_code == 200

    response = client.post(
        reverse("accounts:compromised"),
        {"current_password": password, "new_password": "a quite different passphrase 77"},
    )

    assert response.status_code == 200, response.content
    assert "We disconnected 2 apps" in response.content.decode()
    for each, body in connected:
        assert api(body["access_token"], f"Patient/{owner.patient_id}").status_code == 401
        refreshed = Client().post(
            "/oauth/token/",
            {
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": each.application.client_id,
            },
        )
        assert refreshed.status_code == 400, refreshed.content
    assert not get_access_token_model().objects.filter(user=owner.user).exists()
    assert not get_refresh_token_model().objects.filter(user=owner.user).exists()
    assert get_access_token_model().objects.filter(user=someone_else).count() == 1
    assert theirs
    event = AuditEvent.objects.get(action="account.compromise-reported")
    assert event.detail["apps_disconnected"] == 2
