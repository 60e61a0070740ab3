"""'I think someone has seen my record' secures the account in one step."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from healthspace.accounts.models import Account, Passkey, PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.cases.models import PrivacyCase
from healthspace.core.clock import now
from healthspace.records.models import Patient

pytestmark = pytest.mark.django_db
OLD, NEW = "correct horse battery staple 42", "a quite different passphrase 77"


@pytest.fixture
def patient_user(synthetic_patients):
    user = get_user_model().objects.create_user(
        username="p@example.org", email="p@example.org", password=OLD
    )
    Account.objects.create(user=user, email_confirmed_at=now())
    patient = Patient.objects.first()
    PatientLink.objects.create(user=user, patient=patient, verified_at=now(), verified_by="test")
    for name in ("My phone", "Unknown key"):
        Passkey.objects.create(
            user=user, name=name, credential_id=name, public_key=b"k", created_at=now()
        )
    return user


def test_one_step_changes_password_ends_other_sessions_removes_passkeys_and_opens_a_case(
    patient_user,
):
    other = signed_in_client(patient_user, user_agent="Firefox/140 (Linux)")
    here = signed_in_client(patient_user)
    unknown = Passkey.objects.get(name="Unknown key")

    response = here.post(
        reverse("accounts:compromised"),
        {"current_password": OLD, "new_password": NEW, "passkeys": [unknown.pk], "note": "my ex"},
    )

    assert response.status_code == 200 and "Your account is secured" in response.content.decode()
    patient_user.refresh_from_db()
    assert patient_user.check_password(NEW)
    assert list(Passkey.objects.filter(user=patient_user).values_list("name", flat=True)) == [
        "My phone"
    ]
    assert here.get(reverse("accounts:sessions")).status_code == 200  # this device stays
    assert other.get(reverse("accounts:sessions")).status_code == 302  # the other is out
    case = AuditEvent.objects.get(action="account.compromise-reported")
    assert case.patient_id == patient_user.patient_link.patient_id
    assert case.detail["passkeys_removed"] == 1 and case.detail["sessions_ended"] == 1
    # the patient's words go to the privacy officer's case; the chain keeps only their size
    assert "note" not in case.detail and case.detail["note_chars"] == len("my ex")
    alert = PrivacyCase.objects.get(audit_event_id=case.pk)
    assert alert.kind == PrivacyCase.Kind.COMPROMISE_REPORTED and alert.patient_note == "my ex"
    assert alert.patient_id == case.patient_id and alert.status == PrivacyCase.Status.OPEN


@pytest.mark.parametrize(
    ("current", "new", "error"),
    [
        ("wrong password", NEW, 'href="#id_current_password"'),
        (OLD, "12345678", 'href="#id_new_password"'),  # password rules apply here too
    ],
)
def test_bad_input_changes_nothing(patient_user, current, new, error):
    client = signed_in_client(patient_user)
    response = client.post(
        reverse("accounts:compromised"), {"current_password": current, "new_password": new}
    )
    assert error in response.content.decode()
    patient_user.refresh_from_db()
    assert patient_user.check_password(OLD)
    assert Passkey.objects.filter(user=patient_user).count() == 2
    assert not AuditEvent.objects.filter(action="account.compromise-reported").exists()
    assert not PrivacyCase.objects.exists()
