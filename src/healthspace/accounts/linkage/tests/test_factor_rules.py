"""Verification and clerk pages need a second factor passed in the session."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_patient_links_a_record_only_after_setting_up_a_second_factor(patient_user, sign_in):
    client = Client()
    sign_in(client, patient_user, second_factor="")  # password only, no factor yet
    page = client.get(reverse("accounts:linkage-verify")).content.decode()
    assert "Set up a second way to log in first" in page
    assert reverse("accounts:two-factor-setup") in page
    # posting linkage details changes nothing either
    client.post(reverse("accounts:linkage-verify"), {"account_id": "X"})
    from healthspace.accounts.models import PatientLink

    assert not PatientLink.objects.filter(user=patient_user).exists()


def test_with_a_factor_passed_the_verification_form_is_shown(patient_user, sign_in):
    client = Client()
    sign_in(client, patient_user)
    page = client.get(reverse("accounts:linkage-verify")).content.decode()
    assert 'name="linkage_key"' in page or "linkage key" in page.lower()


def test_a_clerk_without_a_passkey_in_this_session_is_sent_to_the_second_factor(clerk, sign_in):
    client = Client()
    sign_in(client, clerk, second_factor="")
    response = client.get(reverse("accounts:staff-linkage"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:two-factor-verify")

    with_key = Client()
    sign_in(with_key, clerk)  # passkey
    assert with_key.get(reverse("accounts:staff-linkage")).status_code == 200
