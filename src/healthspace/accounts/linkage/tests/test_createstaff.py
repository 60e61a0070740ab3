"""Staff logins: made only by an operator's command, set up through a one-time link."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from healthspace.access.roles import Role
from healthspace.accounts.linkage import staff
from healthspace.accounts.models import Account, UserSession
from healthspace.audit.models import AuditEvent
from healthspace.records.services import organisation_get_or_create

pytestmark = pytest.mark.django_db

SETUP = "/account/staff/setup/"
PASSCODE = "kettle orbit lantern 9431"


@pytest.fixture
def orgs(db):
    organisation_get_or_create(ods_code="Y00001", name="Riverside Medical Practice")
    organisation_get_or_create(ods_code="Y00002", name="Hillview Surgery")


def createstaff(*args: str) -> tuple[str, str]:
    out = io.StringIO()
    call_command("createstaff", *args, stdout=out)
    text = out.getvalue()
    link = re.search(r"(\S+/account/staff/setup/\S+/)", text).group(1)
    return text, link.removeprefix("http://127.0.0.1:8000")


def test_createstaff_makes_a_staff_login_without_a_password(orgs):
    text, link = createstaff(
        "Sam.Taylor@Riverside.example",
        "--role", Role.REGISTRATION_CLERK, "--role", Role.CLINICIAN,
        "--org", "y00001", "--name", "Sam Taylor",
    )  # fmt: skip
    user = get_user_model().objects.get(username="sam.taylor@riverside.example")
    assert not user.has_usable_password()
    assert (user.first_name, user.last_name) == ("Sam", "Taylor")
    assert user.account.kind == Account.Kind.STAFF
    assert user.account.organisation.ods_code == "Y00001"
    assert set(user.groups.values_list("name", flat=True)) == {
        Role.REGISTRATION_CLERK,
        Role.CLINICIAN,
    }
    assert "ONE-TIME SET-UP LINK" in text and "72" in text
    assert link.startswith(reverse("accounts:staff-setup")) and link != SETUP
    event = AuditEvent.objects.get(action=staff.STAFF_CREATE)
    assert event.actor == "system:cli:createstaff" and event.patient_id is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a@example.org", "--org", "Y00001"], "at least one --role"),
        (["a@example.org", "--role", "surgeon", "--org", "Y00001"], "Unknown role surgeon"),
        (["a@example.org", "--role", Role.CLINICIAN], "--org"),
        (
            ["a@example.org", "--role", Role.CLINICIAN, "--org", "X99999"],
            "Known ODS codes: Y00001, Y00002",
        ),
        (["not-an-email", "--role", Role.CLINICIAN, "--org", "Y00001"], "not a valid email"),
        (["taken@example.org", "--role", Role.CLINICIAN, "--org", "Y00001"], "already exists"),
    ],
)
def test_createstaff_refuses_clearly(orgs, args, message):
    get_user_model().objects.create(username="taken@example.org")
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("createstaff", *args, stdout=io.StringIO())
    assert get_user_model().objects.count() == 1
    assert not Account.objects.exists()


def test_the_set_up_link_sets_a_passcode_then_asks_for_a_passkey(client, orgs):
    _, link = createstaff("sam@riverside.example", "--role", Role.CLINICIAN, "--org", "Y00001")
    landing = client.get(link)
    # The token leaves the address bar at once.
    assert landing.status_code == 302 and landing["Location"] == SETUP
    page = client.get(SETUP)
    assert "sam@riverside.example" in page.content.decode()
    mismatch = client.post(SETUP, {"passcode": PASSCODE, "passcode_again": PASSCODE + "!"})
    assert "The passcodes do not match" in mismatch.content.decode()
    weak = client.post(SETUP, {"passcode": "password", "passcode_again": "password"})
    assert "There is a problem" in weak.content.decode()
    user = get_user_model().objects.get(username="sam@riverside.example")
    assert not user.has_usable_password()

    done = client.post(SETUP, {"passcode": PASSCODE, "passcode_again": PASSCODE})
    assert done.status_code == 302
    assert done["Location"] == reverse("accounts:passkey-add")
    user.refresh_from_db()
    assert user.check_password(PASSCODE)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert UserSession.objects.filter(user=user).exists()  # through login_complete
    # Spent: the link does not work a second time.
    client.logout()
    assert client.get(link).status_code == 404


@pytest.mark.parametrize("spoil", ["expired", "tampered", "not staff"])
def test_set_up_links_that_are_not_valid(client, orgs, monkeypatch, spoil):
    _, link = createstaff("sam@riverside.example", "--role", Role.CLINICIAN, "--org", "Y00001")
    if spoil == "expired":
        monkeypatch.setattr(staff, "SETUP_MAX_AGE_SECONDS", -1)
    elif spoil == "tampered":
        link = link[:-4] + ("aaa/" if not link.endswith("aaa/") else "bbb/")
    else:
        Account.objects.update(kind=Account.Kind.PATIENT)
    response = client.get(link)
    assert response.status_code == 404
    assert "This set-up link is not valid" in response.content.decode()
    assert client.post(SETUP, {"passcode": PASSCODE, "passcode_again": PASSCODE}).status_code == 404
    assert not get_user_model().objects.get().has_usable_password()


def test_a_new_link_replaces_the_old_one_until_set_up_is_finished(client, orgs):
    _, old = createstaff("sam@riverside.example", "--role", Role.CLINICIAN, "--org", "Y00001")
    _, new = createstaff("sam@riverside.example", "--new-link")
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 302
    client.post(SETUP, {"passcode": PASSCODE, "passcode_again": PASSCODE})
    with pytest.raises(CommandError, match="finished setting up"):
        call_command("createstaff", "sam@riverside.example", "--new-link", stdout=io.StringIO())
