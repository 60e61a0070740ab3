"""Setting up, renaming and removing factors: own factors only, the password again when
the login is older than 10 minutes (ASVS 7.5.1), the owner told by email."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthspace.accounts.factors import guards, services
from healthspace.accounts.factors.tests.conftest import PASSWORD, password_step, scr_allowed
from healthspace.accounts.models import Passkey
from healthspace.core import clock

pytestmark = pytest.mark.django_db
SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')


def _passkey(user, name: str = "Laptop") -> Passkey:
    return Passkey.objects.create(
        user=user, name=name, credential_id=f"{name}-{user.pk}", public_key=b"",
        created_at=clock.now(),
    )  # fmt: skip


@pytest.fixture
def patient_client(client, patient_user) -> Client:
    """A verified patient logged in with the password, about to set up a first factor."""
    password_step(client, patient_user)
    client.get(reverse("accounts:two-factor-verify"))
    return client


def _age_login(client: Client, seconds: int) -> None:
    session = client.session
    session[guards.SESSION_AUTH_AT] = time.time() - seconds
    session.save()


def test_an_authenticator_app_is_set_up_without_javascript(patient_client, patient_user):
    page = patient_client.get(reverse("accounts:totp-setup"))
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    secret = SECRET_RE.search(html).group(1)
    device_id = re.search(r'name="device" value="(\d+)"', html).group(1)
    code = pyotp.TOTP(secret.replace(" ", "")).now()

    with_codes = patient_client.post(
        reverse("accounts:totp-setup"), {"device": device_id, "code": code, "name": "My phone"}
    )
    assert with_codes["Location"].startswith(reverse("accounts:recovery-codes"))
    assert TOTPDevice.objects.get(user=patient_user, confirmed=True).name == "My phone"
    assert guards.session_factor(patient_client) == "totp"
    shown = patient_client.get(with_codes["Location"]).content.decode()
    assert len(re.findall(r"<code[^>]*>[a-z2-9]{5}-[a-z2-9]{5}</code>", shown)) == 10
    # Shown once: the page afterwards says how many are left, not what they are.
    later = patient_client.get(reverse("accounts:recovery-codes")).content.decode()
    assert "You have 10 recovery codes left" in later and "<code" not in later
    assert scr_allowed(patient_client, patient_user)


def test_adding_a_factor_asks_for_the_password_when_the_login_is_older_than_10_minutes(
    patient_client,
):
    _age_login(patient_client, services.REAUTH_MAX_SECONDS + 1)
    for name in ("accounts:totp-setup", "accounts:passkey-add"):
        response = patient_client.get(reverse(name))
        assert response["Location"].startswith(reverse("accounts:two-factor-reauth"))
    refused = patient_client.post(reverse("accounts:passkey-add-options"))
    assert refused.status_code == 403 and "confirm-password" in refused.json()["redirect"]

    wrong = patient_client.post(
        reverse("accounts:two-factor-reauth"),
        {"password": "not the password", "next": reverse("accounts:totp-setup")},
    )
    assert wrong.status_code == 200 and "Enter your password correctly" in wrong.content.decode()
    right = patient_client.post(
        reverse("accounts:two-factor-reauth"),
        {"password": PASSWORD, "next": reverse("accounts:totp-setup")},
    )
    assert right["Location"] == reverse("accounts:totp-setup")
    assert patient_client.get(reverse("accounts:totp-setup")).status_code == 200


def test_a_session_that_did_not_pass_a_factor_cannot_change_factors(patient_client, patient_user):
    _passkey(patient_user)  # added elsewhere, after this session logged in
    for name in ("accounts:two-factor", "accounts:totp-setup", "accounts:passkey-add"):
        response = patient_client.get(reverse(name))
        assert response["Location"].startswith(reverse("accounts:two-factor-verify")), name


def _logged_in_with_factor(client: Client, user) -> None:
    session = client.session
    session[guards.SESSION_FACTOR] = "passkey"
    session.save()


def test_removing_needs_the_password_and_is_told_to_the_owner(
    patient_client, patient_user, django_capture_on_commit_callbacks
):
    keep, remove = _passkey(patient_user, "Keep"), _passkey(patient_user, "Remove")
    _logged_in_with_factor(patient_client, patient_user)
    _age_login(patient_client, services.REAUTH_MAX_SECONDS + 1)
    url = reverse("accounts:passkey-remove")
    asked = patient_client.post(url, {"id": remove.pk})
    assert asked["Location"].startswith(reverse("accounts:two-factor-reauth"))
    assert Passkey.objects.filter(pk=remove.pk).exists()

    _age_login(patient_client, 0)
    confirm = patient_client.get(f"{url}?id={remove.pk}").content.decode()
    assert 'Remove passkey "Remove"?' in confirm
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = patient_client.post(url, {"id": remove.pk})
    assert done["Location"] == reverse("accounts:two-factor")
    assert list(Passkey.objects.filter(user=patient_user)) == [keep]
    assert [m.subject for m in mail.outbox] == [
        "A passkey was removed from your HealthSpace account"
    ]
    assert mail.outbox[0].to == [patient_user.email]


@pytest.mark.parametrize("route", ["accounts:passkey-remove", "accounts:passkey-rename"])
def test_another_users_passkey_is_not_found(patient_client, patient_user, staff_user, route):
    theirs = _passkey(staff_user)
    _passkey(patient_user)
    _logged_in_with_factor(patient_client, patient_user)
    assert patient_client.get(f"{reverse(route)}?id={theirs.pk}").status_code == 404
    post = patient_client.post(reverse(route), {"id": theirs.pk, "name": "mine now"})
    assert post.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Laptop"


def test_a_passkey_is_renamed(patient_client, patient_user):
    passkey = _passkey(patient_user)
    _logged_in_with_factor(patient_client, patient_user)
    response = patient_client.post(
        reverse("accounts:passkey-rename"), {"id": passkey.pk, "name": "Phone"}
    )
    assert response["Location"] == reverse("accounts:two-factor")
    passkey.refresh_from_db()
    assert passkey.name == "Phone"
    listed = patient_client.get(reverse("accounts:two-factor")).content.decode()
    assert "Phone" in listed and "Passkey renamed" in listed


def test_removing_the_last_factor_also_ends_the_recovery_codes(patient_client, patient_user):
    app = services.totp_demo_device(patient_user, pyotp.random_base32())
    services.recovery_codes_generate(user=patient_user)
    _logged_in_with_factor(patient_client, patient_user)
    url = reverse("accounts:totp-remove")
    assert (
        "This is your only second way to log in"
        in patient_client.get(f"{url}?id={app.pk}").content.decode()
    )
    patient_client.post(url, {"id": app.pk})
    assert not TOTPDevice.objects.filter(user=patient_user).exists()
    assert not StaticToken.objects.filter(device__user=patient_user).exists()
    # Without a factor the record sends them to set one up again.
    assert not scr_allowed(patient_client, patient_user)


def test_staff_cannot_remove_their_only_passkey(staff_user):
    # Staff log in only with a passkey: without one they would be locked out.
    only, spare = _passkey(staff_user, "Only"), _passkey(staff_user, "Spare")
    assert services.passkey_remove(user=staff_user, passkey_id=spare.pk).ok
    refused = services.passkey_remove(user=staff_user, passkey_id=only.pk)
    assert (refused.ok, refused.reason) == (False, "last-staff-passkey")
    assert Passkey.objects.filter(pk=only.pk).exists()


def test_staff_cannot_set_up_an_authenticator_app(client, staff_user):
    password_step(client, staff_user)
    client.get(reverse("accounts:two-factor-verify"))
    response = client.get(reverse("accounts:totp-setup"))
    assert response.status_code == 403
    assert not TOTPDevice.objects.filter(user=staff_user).exists()


def test_new_recovery_codes_need_the_password_and_replace_the_old(patient_client, patient_user):
    services.totp_demo_device(patient_user, pyotp.random_base32())
    old = services.recovery_codes_generate(user=patient_user)
    _logged_in_with_factor(patient_client, patient_user)
    _age_login(patient_client, services.REAUTH_MAX_SECONDS + 1)
    url = reverse("accounts:recovery-codes")
    assert patient_client.post(url)["Location"].startswith(reverse("accounts:two-factor-reauth"))
    _age_login(patient_client, 0)
    shown = patient_client.get(patient_client.post(url)["Location"]).content.decode()
    new = re.findall(r"<code[^>]*>([a-z2-9]{5}-[a-z2-9]{5})</code>", shown)
    assert len(new) == 10 and not set(new) & set(old)
    stored = StaticToken.objects.filter(device__user=patient_user).count()
    assert stored == 10


def test_a_passkey_needs_javascript_and_the_page_says_so(patient_client):
    page = patient_client.get(reverse("accounts:passkey-add")).content.decode()
    assert '<script type="module" src="/static/accounts/passkeys.js"></script>' in page
    assert "needs JavaScript" in page and reverse("accounts:totp-setup") in page
    no_js = patient_client.post(reverse("accounts:passkey-add"), {"name": "x"})
    assert no_js.status_code == 400 and "Set up an authenticator app instead" in (
        no_js.content.decode()
    )
    script = patient_client.get("/static/accounts/passkeys.js")
    assert script.status_code == 200
