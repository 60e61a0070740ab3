"""Passkeys (WebAuthn) through our endpoints, answered by a software authenticator: the
relying party is this host, the origin must be exactly ours, a challenge works once and
for five minutes, staff need user verification, and a counter going backwards (a cloned
authenticator) is refused."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from healthspace.accounts.factors import guards, webauthn
from healthspace.accounts.factors.tests.conftest import PASSWORD, logged_in, password_step
from healthspace.accounts.factors.tests.softkey import SoftKey
from healthspace.accounts.models import Passkey

pytestmark = pytest.mark.django_db
ORIGIN = "http://testserver"  # Django's test client host


def _post(client: Client, name: str, body: dict | None = None):
    return client.post(reverse(name), json.dumps(body or {}), content_type="application/json")


def _register(client: Client, key: SoftKey, *, name: str = "Laptop", origin: str | None = None):
    options = _post(client, "accounts:passkey-add-options")
    assert options.status_code == 200, options.content
    credential = key.create(options.json()["publicKey"], origin=origin)
    return _post(client, "accounts:passkey-add-verify", {"credential": credential, "name": name})


def _sign_in(client: Client, key: SoftKey, **kwargs):
    options = _post(client, "accounts:passkey-login-options")
    assert options.status_code == 200, options.content
    assertion = key.get(options.json()["publicKey"], **kwargs)
    return _post(client, "accounts:passkey-login", {"credential": assertion}), assertion


@pytest.fixture
def patient_client(client, patient_user) -> Client:
    """A verified patient just logged in with the password, without a factor yet."""
    password_step(client, patient_user)
    client.get(reverse("accounts:two-factor-verify"))
    assert logged_in(client)
    return client


def test_a_patient_registers_a_passkey_then_logs_in_with_it(patient_client, patient_user):
    key = SoftKey(ORIGIN)
    response = _register(patient_client, key)
    assert response.status_code == 200
    # The first factor comes with recovery codes, shown once, next.
    assert response.json()["redirect"].startswith(reverse("accounts:recovery-codes"))
    stored = Passkey.objects.get(user=patient_user)
    assert stored.name == "Laptop" and stored.user_verified and stored.transports == ["internal"]
    assert guards.session_factor(patient_client) == "passkey"  # proven by creating it
    codes_page = patient_client.get(response.json()["redirect"]).content.decode()
    assert codes_page.count("<code") == 10
    assert patient_client.get(response.json()["redirect"]).content.decode().count("<code") == 0

    patient_client.post(reverse("web:logout"))
    password_step(patient_client, patient_user)
    assert not logged_in(patient_client)
    signed_in, _ = _sign_in(patient_client, key)
    assert signed_in.status_code == 200, signed_in.content
    assert signed_in.json() == {"redirect": reverse("web:record")}
    assert logged_in(patient_client)
    assert patient_client.session[guards.SESSION_FACTOR] == "passkey"
    stored.refresh_from_db()
    assert stored.sign_count == key.sign_count and stored.last_used_at is not None


def test_the_relying_party_is_the_host_without_its_port(rf, settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    request = rf.get("/", HTTP_HOST="localhost:8123")
    assert webauthn.rp_id(request) == "localhost"
    assert webauthn.expected_origins(request) == ["http://localhost:8123"]
    settings.HEALTHSPACE_WEBAUTHN_RP_ID = "healthspace.example"
    settings.HEALTHSPACE_WEBAUTHN_ORIGINS = ["https://healthspace.example"]
    assert webauthn.rp_id(request) == "healthspace.example"
    assert webauthn.expected_origins(request) == ["https://healthspace.example"]


@pytest.mark.parametrize(
    "origin", ["http://testserver.evil.example", "https://testserver", "http://testserver:8000"]
)
def test_a_passkey_made_for_another_origin_is_refused(patient_client, patient_user, origin):
    response = _register(patient_client, SoftKey(ORIGIN), origin=origin)
    assert response.status_code == 400
    assert not Passkey.objects.filter(user=patient_user).exists()


def _patient_with_passkey(client: Client, user, key: SoftKey) -> None:
    password_step(client, user)
    client.get(reverse("accounts:two-factor-verify"))
    assert _register(client, key).status_code == 200
    client.post(reverse("web:logout"))
    password_step(client, user)


def test_an_assertion_from_another_origin_or_relying_party_is_refused(client, patient_user):
    key = SoftKey(ORIGIN)
    _patient_with_passkey(client, patient_user, key)
    wrong_origin, _ = _sign_in(client, key, origin="http://testserver.evil.example")
    wrong_rp, _ = _sign_in(client, key, rp_id="evil.example")
    assert wrong_origin.status_code == wrong_rp.status_code == 400
    assert not logged_in(client)


def test_a_challenge_works_once(client, patient_user):
    key = SoftKey(ORIGIN)
    _patient_with_passkey(client, patient_user, key)
    options = _post(client, "accounts:passkey-login-options").json()["publicKey"]
    first = key.get(options, counter=key.sign_count + 1)
    replayed = key.get(options, counter=key.sign_count + 2)  # same challenge, fresh signature
    assert _post(client, "accounts:passkey-login", {"credential": first}).status_code == 200
    client.post(reverse("web:logout"))
    password_step(client, patient_user)
    again = _post(client, "accounts:passkey-login", {"credential": replayed})
    assert again.status_code == 400 and not logged_in(client)


def test_a_challenge_expires_after_five_minutes(client, patient_user):
    key = SoftKey(ORIGIN)
    _patient_with_passkey(client, patient_user, key)
    options = _post(client, "accounts:passkey-login-options").json()["publicKey"]
    session = client.session
    session[webauthn.CHALLENGE_SESSION_KEY]["at"] -= webauthn.CHALLENGE_MAX_SECONDS + 1
    session.save()
    response = _post(client, "accounts:passkey-login", {"credential": key.get(options)})
    assert response.status_code == 400 and not logged_in(client)


def test_a_counter_that_goes_backwards_is_refused_as_a_cloned_authenticator(
    client, patient_user, caplog
):
    key = SoftKey(ORIGIN)
    _patient_with_passkey(client, patient_user, key)
    ok, _ = _sign_in(client, key)  # counter 1
    assert ok.status_code == 200
    _sign_in(client, key)  # counter 2 (already logged in: a step-up, still counted)
    client.post(reverse("web:logout"))
    password_step(client, patient_user)
    with caplog.at_level(logging.WARNING):
        clone, _ = _sign_in(client, key, counter=2)
    assert clone.status_code == 400 and not logged_in(client)
    assert "sign count went backwards" in caplog.text
    assert patient_user.username not in caplog.text
    assert Passkey.objects.get(user=patient_user).sign_count == 2


def test_an_authenticator_without_a_counter_keeps_working(client, patient_user):
    key = SoftKey(ORIGIN)
    _patient_with_passkey(client, patient_user, key)
    for _ in range(2):
        response, _ = _sign_in(client, key, counter=0)
        assert response.status_code == 200
        client.post(reverse("web:logout"))
        password_step(client, patient_user)


@pytest.mark.parametrize(("who", "allowed"), [("patient", True), ("staff", False)])
def test_user_verification_is_required_for_staff_only(
    client, patient_user, staff_user, who, allowed
):
    user = {"patient": patient_user, "staff": staff_user}[who]
    password_step(client, user)
    client.get(reverse("accounts:two-factor-verify"))
    options = _post(client, "accounts:passkey-add-options").json()["publicKey"]
    wanted = "required" if who == "staff" else "preferred"
    assert options["authenticatorSelection"]["userVerification"] == wanted
    no_pin = SoftKey(ORIGIN, user_verifies=False)
    response = _post(
        client, "accounts:passkey-add-verify", {"credential": no_pin.create(options), "name": ""}
    )
    assert (response.status_code == 200) is allowed


def test_staff_log_in_with_a_verified_passkey_and_not_without_verification(client, staff_user):
    key = SoftKey(ORIGIN)
    password_step(client, staff_user)
    assert client.get(reverse("accounts:two-factor-verify"))["Location"].startswith(
        reverse("accounts:passkey-add")
    )
    response = _register(client, key)
    assert response.status_code == 200
    assert response.json()["redirect"] == reverse("accounts:two-factor")  # no recovery codes
    client.post(reverse("web:logout"))

    password_step(client, staff_user)
    key.user_verifies = False
    refused, _ = _sign_in(client, key)
    assert refused.status_code == 400 and not logged_in(client)
    key.user_verifies = True
    accepted, _ = _sign_in(client, key)
    assert accepted.status_code == 200 and logged_in(client)
    assert client.session[guards.SESSION_FACTOR] == "passkey"


def test_one_users_passkey_does_not_log_in_another(client, patient_user, basic_user):
    key = SoftKey(ORIGIN)
    _patient_with_passkey(client, patient_user, key)
    client.post(reverse("web:logout"))
    # basic_user has a passkey of their own, so they reach the passkey step.
    other = SoftKey(ORIGIN)
    password_step(client, basic_user)
    assert logged_in(client)  # no factor yet: the password alone logged in
    reauth = client.post(reverse("accounts:two-factor-reauth"), {"password": PASSWORD})
    assert reauth.status_code == 302
    assert _register(client, other).status_code == 200
    client.post(reverse("web:logout"))
    password_step(client, basic_user)
    options = _post(client, "accounts:passkey-login-options").json()["publicKey"]
    options["allowCredentials"] = []  # the software key would refuse a foreign list
    response = _post(client, "accounts:passkey-login", {"credential": key.get(options)})
    assert response.status_code == 400 and not logged_in(client)


def test_the_same_authenticator_cannot_be_registered_twice(patient_client):
    key = SoftKey(ORIGIN)
    assert _register(patient_client, key).status_code == 200
    options = _post(patient_client, "accounts:passkey-add-options").json()["publicKey"]
    assert [c["id"] for c in options["excludeCredentials"]] == [key.create(options)["id"]]
    again = _post(
        patient_client,
        "accounts:passkey-add-verify",
        {"credential": key.create(options), "name": ""},
    )
    assert again.status_code == 400 and "already set up" in again.json()["error"]


def test_the_user_handle_is_not_the_email_or_the_database_id(patient_client, patient_user):
    options = _post(patient_client, "accounts:passkey-add-options").json()["publicKey"]
    handle = options["user"]["id"]
    assert patient_user.username not in handle and handle != str(patient_user.pk)
    assert len(webauthn.user_handle(patient_user)) == 32
