"""The patient's page: it only ever shows and changes the session's own record."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from healthspace.access.context import AccessContext, Relationship
from healthspace.access.context import ConsentState as S
from healthspace.accounts.factors import guards
from healthspace.accounts.models import Account, PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.consent.models import ConsentRecord, Source
from healthspace.consent.selectors import consent_state_for
from healthspace.consent.services import consent_change
from healthspace.consent.tests.conftest import actor_for
from healthspace.core import clock

pytestmark = pytest.mark.django_db
CHOICES = reverse("consent:choices")
CONFIRM = reverse("consent:confirm")


def _verified_user(email, patient_id):
    user = get_user_model().objects.create_user(username=email, email=email, password="x" * 20)
    Account.objects.create(user=user, kind=Account.Kind.PATIENT, email_confirmed_at=clock.now())
    PatientLink.objects.create(
        user=user, patient_id=patient_id, verified_at=clock.now(), verified_by="test", method="demo"
    )
    return user


@pytest.fixture
def own(make_patient):
    return make_patient("9999999999")


@pytest.fixture
def other(make_patient):
    return make_patient("9999999998")


@pytest.fixture
def client_for(own):
    """A logged-in verified patient whose session passed a second factor."""
    return signed_in_client(_verified_user("patient@example.org", own))


def test_needs_a_second_factor_this_session(own):
    client = signed_in_client(_verified_user("patient@example.org", own), second_factor="")
    response = client.get(CHOICES)
    assert response.status_code == 302
    assert response["Location"] == guards.second_factor_url()


def test_needs_login(client):
    assert client.get(CHOICES).status_code == 302


def test_page_shows_current_choice_and_allowed_options(client_for):
    page = client_for.get(CHOICES).content.decode()
    assert "Your choices about your Summary Care Record" in page
    assert "Core information only (the standard choice)" in page
    assert 'value="core-and-additional"' in page
    assert 'value="hidden"' in page
    assert 'value="dissent"' not in page
    assert 'value="implied"' not in page


def test_choose_confirm_and_save(client_for, own):
    confirm_page = client_for.post(CHOICES, {"choice": "core-and-additional"})
    assert confirm_page.status_code == 200
    assert "Check your choice" in confirm_page.content.decode()
    assert not ConsentRecord.objects.exists()  # nothing changes before confirming

    saved = client_for.post(CONFIRM, {"choice": "core-and-additional"})
    assert saved.status_code == 302
    assert consent_state_for(patient_id=own) == S.CORE_AND_ADDITIONAL
    assert "Your choice has been saved" in client_for.get(saved["Location"]).content.decode()
    history = client_for.get(CHOICES).content.decode()
    assert "Core and additional information" in history and "You, online" in history


@pytest.mark.parametrize("data", [{}, {"choice": "dissent"}, {"choice": "nonsense"}])
def test_a_missing_or_unoffered_choice_shows_the_error_summary(client_for, data):
    response = client_for.post(CHOICES, data)
    page = response.content.decode()
    assert response.status_code == 400
    assert "nhsuk-error-summary" in page and "Error: " in page
    assert not ConsentRecord.objects.exists()


def test_uses_the_sessions_patient_only(client_for, own, other):
    # a record id smuggled into the form or query string is ignored
    client_for.post(f"{CONFIRM}?patient_id={other}", {"choice": "hidden", "patient_id": other})
    assert consent_state_for(patient_id=own) == S.HIDDEN
    assert consent_state_for(patient_id=other) == S.IMPLIED


def test_history_is_the_sessions_patient_only(client_for, other):
    consent_change(
        actor=actor_for(Source.GP_PRACTICE, other),
        patient_id=other,
        new_state=S.CORE_AND_ADDITIONAL,
        source=Source.GP_PRACTICE,
        context=AccessContext(relationship=Relationship.CARE_TEAM),  # their own practice
    )
    page = client_for.get(CHOICES).content.decode()
    assert "Your GP practice" not in page
    assert "You have not made a choice" in page


def test_patient_cannot_unhide(client_for, own):
    client_for.post(CONFIRM, {"choice": "hidden"})
    page = client_for.get(CHOICES).content.decode()
    assert 'value="core-only"' not in page and "write to your GP practice" in page

    response = client_for.post(CONFIRM, {"choice": "core-only"})
    assert response.status_code == 400
    assert "nhsuk-error-summary" in response.content.decode()
    assert consent_state_for(patient_id=own) == S.HIDDEN
    assert ConsentRecord.objects.filter(patient_id=own).count() == 1


def test_the_current_choice_is_shown_as_text_not_as_escaped_markup(client_for):
    html = client_for.get(reverse("consent:choices")).content.decode()
    assert "&lt;p&gt;" not in html and "&lt;strong&gt;" not in html
