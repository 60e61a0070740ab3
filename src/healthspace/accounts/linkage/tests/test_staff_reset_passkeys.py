"""A lost security key: the operator removes the staff member's passkeys and issues a new
set-up link; their sessions end and the old passcode stops working."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from healthspace.accounts.models import Passkey
from healthspace.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_reset_removes_passkeys_ends_sessions_and_prints_a_new_link(clerk, sign_in):
    client = Client()
    sign_in(client, clerk)  # with a passkey
    assert Passkey.objects.filter(user=clerk).exists()
    out = StringIO()

    call_command("staff-reset-passkeys", clerk.username, stdout=out)

    assert not Passkey.objects.filter(user=clerk).exists()
    clerk.refresh_from_db()
    assert not clerk.has_usable_password()
    assert "/account/staff/setup/" in out.getvalue()
    response = client.get(reverse("accounts:sessions"))  # logged out everywhere
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))
    event = AuditEvent.objects.get(action="account.staff-passkeys-reset")
    assert event.detail["passkeys_removed"] == 1


def test_only_staff_logins_can_be_reset(patient_user):
    with pytest.raises(CommandError, match="no staff login"):
        call_command("staff-reset-passkeys", patient_user.username)
    with pytest.raises(CommandError, match="no staff login"):
        call_command("staff-reset-passkeys", "nobody@example.org")
