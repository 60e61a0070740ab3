"""A clinician finds a patient, asks permission, and sees what their role allows, with
every step decided by access.decide, audited, and visible to the patient."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from healthspace.access.context import ConsentState
from healthspace.accounts.models import Account
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient
from healthspace.audit.verify import verify_database
from healthspace.cases.models import PrivacyCase
from healthspace.consent.models import ConsentRecord
from healthspace.core.clock import now
from healthspace.core.nhs_numbers import format_spaced
from healthspace.notify.testing import run_due_tasks
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import Patient
from healthspace.staff.models import PermissionAnswer, RelationshipClaim
from healthspace.staff.testing import make_staff_user, organisation_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def patient(synthetic_patients):
    """A verified patient registered at the demo practice (Y00001)."""
    ensure_demo_logins(count=1)
    return Patient.objects.filter(account_link__isnull=False).select_related("account_link").get()


_org = organisation_for
make_staff = make_staff_user


def client_for(user):
    return signed_in_client(user, second_factor="passkey")


def find(client, patient, *, birth_date=None):
    born = birth_date or patient.birth_date
    return client.post(
        "/staff/",
        {
            "nhs_number": format_spaced(patient.nhs_number),
            "birth_day": str(born.day),
            "birth_month": str(born.month),
            "birth_year": str(born.year),
        },
    )


def found(client, patient):
    response = find(client, patient)
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == f"/staff/patient/{patient.id}/"
    return response


def answer(client, patient, value, explanation=""):
    return client.post(
        f"/staff/patient/{patient.id}/permission/", {"answer": value, "explanation": explanation}
    )


def events(patient, action):
    return list(AuditEvent.objects.filter(patient_id=patient.id, action=action).order_by("seq"))


# --- finding a patient -----------------------------------------------------------------


def test_find_needs_a_valid_nhs_number_and_a_matching_birth_date(patient):
    client = client_for(make_staff("clinician"))
    bad = client.post(
        "/staff/",
        {"nhs_number": "1234567890", "birth_day": "1", "birth_month": "1", "birth_year": "1980"},
    )
    assert bad.status_code == 400
    assert "Enter a valid NHS number" in bad.content.decode()

    wrong_day = patient.birth_date + timedelta(days=1)
    response = find(client, patient, birth_date=wrong_day)
    assert response.status_code == 400
    assert "No patient matches that NHS number and date of birth" in response.content.decode()
    # a real NHS number with the wrong birth date is a failed attempt on that patient's trail
    (denied,) = events(patient, "patient.find")
    assert (denied.outcome, denied.reason) == ("denied", "birth-date-did-not-match")

    found(client, patient)
    assert events(patient, "patient.find")[-1].outcome == "success"


def test_patient_pages_open_only_for_a_patient_found_in_this_session(patient):
    user = make_staff("clinician")
    client = client_for(user)
    for url in ("", "scr/", "relationship/", "emergency/"):
        assert client.get(f"/staff/patient/{patient.id}/{url}").status_code == 404
    found(client, patient)
    assert client.get(f"/staff/patient/{patient.id}/").status_code == 200
    # another session of the same person starts again
    assert client_for(user).get(f"/staff/patient/{patient.id}/").status_code == 404


@pytest.mark.parametrize("who", ["patient", "anonymous"])
def test_staff_pages_do_not_exist_for_patients_or_anonymous_visitors(patient, who):
    from django.test import Client

    client = (
        signed_in_client(get_user_model().objects.get(patient_link__patient=patient))
        if who == "patient"
        else Client()
    )
    assert client.get("/staff/").status_code == 404
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 404


def test_staff_must_have_passed_a_passkey(patient):
    client = signed_in_client(make_staff("clinician"), second_factor="totp")
    response = client.get("/staff/")
    assert response.status_code == 302 and "two-factor" in response["Location"]


# --- the care team, permission to view and what each role sees ------------------------


def test_care_team_clinician_asks_permission_then_sees_core_with_additional_withheld(patient):
    client = client_for(make_staff("clinician"))
    found(client, patient)
    hub = client.get(f"/staff/patient/{patient.id}/").content.decode()
    assert "Ask the patient: may I look at your Summary Care Record?" in hub

    # not asked yet: the record page sends them back to ask, and the attempt is audited
    assert client.get(f"/staff/patient/{patient.id}/scr/")["Location"].endswith(
        f"/staff/patient/{patient.id}/"
    )
    assert events(patient, "scr.view")[-1].reason == "permission-not-asked"

    response = answer(client, patient, "given")
    assert response["Location"] == f"/staff/patient/{patient.id}/scr/"
    page = client.get(f"/staff/patient/{patient.id}/scr/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Withheld" in text and "additional information activity" in text
    view = events(patient, "scr.view")[-1]
    assert view.outcome == "success" and view.reason == "permission-given"
    assert view.detail["sections"] == ["medications", "allergies", "adverse_reactions"]
    assert "problems" in view.detail["withheld"]
    assert view.detail["roles"] == ["clinician"] and view.detail["org"] == "Y00001"


def test_additional_information_needs_the_activity_and_the_patients_agreement(patient):
    client = client_for(make_staff("clinician", "additional-information"))
    found(client, patient)
    answer(client, patient, "given")
    text = client.get(f"/staff/patient/{patient.id}/scr/").content.decode()
    assert "The patient has not agreed to share additional information" in text

    ConsentRecord.objects.create(
        patient_id=patient.id,
        version=1,
        state=ConsentState.CORE_AND_ADDITIONAL,
        recorded_at=now(),
        recorded_by="test",
        source="patient-online",
    )
    text = client.get(f"/staff/patient/{patient.id}/scr/").content.decode()
    assert "Withheld" not in text
    assert "withheld" not in events(patient, "scr.view")[-1].detail


def test_a_refusal_means_no_view_until_the_patient_says_yes(patient):
    client = client_for(make_staff("clinician"))
    found(client, patient)
    assert answer(client, patient, "refused")["Location"] == f"/staff/patient/{patient.id}/"
    assert (
        "The patient refused permission"
        in client.get(f"/staff/patient/{patient.id}/").content.decode()
    )
    client.get(f"/staff/patient/{patient.id}/scr/")
    assert events(patient, "scr.view")[-1].reason == "permission-refused"
    answer(client, patient, "given")
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 200


def test_cannot_be_asked_needs_a_reason(patient):
    client = client_for(make_staff("clinician"))
    found(client, patient)
    response = answer(client, patient, "cannot-be-asked")
    assert response.status_code == 400
    assert "at least 10 characters" in response.content.decode()
    assert not PermissionAnswer.objects.exists()
    answer(client, patient, "cannot-be-asked", "Unconscious on arrival, needs medicines list")
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 200
    assert events(patient, "scr.view")[-1].reason == "patient-cannot-be-asked"


def test_permission_is_asked_again_in_every_session(patient):
    user = make_staff("clinician")
    first = client_for(user)
    found(first, patient)
    answer(first, patient, "given")
    second = client_for(user)
    found(second, patient)
    assert second.get(f"/staff/patient/{patient.id}/scr/").status_code == 302


def test_a_registration_clerk_never_sees_clinical_content(patient):
    client = client_for(make_staff("registration-clerk"))
    found(client, patient)
    hub = client.get(f"/staff/patient/{patient.id}/").content.decode()
    assert "Your role does not include viewing the Summary Care Record" in hub
    assert answer(client, patient, "given").status_code == 302
    assert not PermissionAnswer.objects.exists()
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 302
    assert events(patient, "scr.view")[-1].reason == "role-has-no-clinical-access"


# --- outside the care team ------------------------------------------------------------


def test_outside_the_care_team_a_self_claimed_relationship_alerts_and_expires(patient):
    client = client_for(make_staff("clinician", ods="RR801", first="Sam", last="Jones"))
    found(client, patient)
    assert (
        "You are not part of this patient's care team"
        in client.get(f"/staff/patient/{patient.id}/").content.decode()
    )
    answer(client, patient, "given")  # no relationship: nothing recorded
    assert not PermissionAnswer.objects.exists()
    assert events(patient, "permission.record")[-1].outcome == "denied"

    missing = client.post(f"/staff/patient/{patient.id}/relationship/", {"reason": "other"})
    assert missing.status_code == 400 and not RelationshipClaim.objects.exists()
    response = client.post(f"/staff/patient/{patient.id}/relationship/", {"reason": "urgent-care"})
    assert response.status_code == 302
    claim = RelationshipClaim.objects.get()
    alert = PrivacyCase.objects.get(kind="self-claimed-relationship")
    assert alert.audit_event_id == claim.audit_event_id and alert.patient_id == patient.id

    answer(client, patient, "given")
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 200
    view = events(patient, "scr.view")[-1]
    assert view.reason == "permission-given+self-claimed-relationship"
    entry = access_history_for_patient(patient_id=patient.id, limit=1)[0]
    assert entry.who == "Sam Jones" and "Said they are caring for you" in entry.why

    RelationshipClaim.objects.update(expires_at=now() - timedelta(seconds=1))
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 302
    assert events(patient, "scr.view")[-1].reason == "no-legitimate-relationship"


def test_emergency_access_overrides_a_refusal_and_alerts(patient):
    client = client_for(make_staff("clinician", "additional-information", ods="RR802"))
    found(client, patient)
    short = client.post(f"/staff/patient/{patient.id}/emergency/", {"explanation": "urgent"})
    assert short.status_code == 400
    assert "at least 10 characters" in short.content.decode()
    # refused input leaves nothing behind: no answer, no alert, no audit event
    assert not PermissionAnswer.objects.exists() and not PrivacyCase.objects.exists()
    assert not events(patient, "emergency.access")
    response = client.post(
        f"/staff/patient/{patient.id}/emergency/",
        {"explanation": "Collapsed in the street, anaphylaxis suspected"},
    )
    assert response["Location"] == f"/staff/patient/{patient.id}/scr/"
    assert PrivacyCase.objects.filter(kind="emergency-access", patient_id=patient.id).count() == 1
    text = client.get(f"/staff/patient/{patient.id}/scr/").content.decode()
    assert "You are using emergency access" in text
    view = events(patient, "scr.view")[-1]
    assert view.reason == "emergency-access" and "withheld" not in view.detail
    assert access_history_for_patient(patient_id=patient.id, limit=1)[0].why == "Emergency access"


def test_a_hidden_record_shows_only_that_it_is_hidden_even_in_an_emergency(patient):
    ConsentRecord.objects.create(
        patient_id=patient.id,
        version=1,
        state=ConsentState.HIDDEN,
        recorded_at=now(),
        recorded_by="test",
        source="patient-online",
    )
    client = client_for(make_staff("clinician"))
    found(client, patient)
    hub = client.get(f"/staff/patient/{patient.id}/").content.decode()
    assert "This patient has hidden their Summary Care Record" in hub
    assert "Emergency access" not in hub
    client.post(
        f"/staff/patient/{patient.id}/emergency/",
        {"explanation": "Collapsed in the street, anaphylaxis suspected"},
    )
    assert not PermissionAnswer.objects.exists() and not PrivacyCase.objects.exists()
    assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 302
    assert events(patient, "scr.view")[-1].reason == "record-hidden"


def test_dissent_tells_staff_the_patient_chose_not_to_have_an_scr(patient):
    ConsentRecord.objects.create(
        patient_id=patient.id,
        version=1,
        state=ConsentState.DISSENT,
        recorded_at=now(),
        recorded_by="test",
        source="gp-practice",
    )
    client = client_for(make_staff("clinician"))
    found(client, patient)
    hub = client.get(f"/staff/patient/{patient.id}/").content.decode()
    assert "This patient has chosen not to have a Summary Care Record" in hub


# --- the patient is told -----------------------------------------------------------------


def test_the_patient_may_ask_for_an_email_on_each_staff_view_without_clinical_content(patient):
    Account.objects.filter(user__patient_link__patient=patient).update(notify_staff_views=True)
    client = client_for(make_staff("clinician"))
    found(client, patient)
    answer(client, patient, "given")
    mail.outbox.clear()
    client.get(f"/staff/patient/{patient.id}/scr/")
    assert mail.outbox == []  # queued for the worker, not sent inside the request
    run_due_tasks()
    (message,) = mail.outbox
    assert "Who has looked at your record" in message.body
    for private in (patient.nhs_number, "Riverside", "Asha", "Patel"):
        assert private not in message.body + message.subject


def test_whom_to_email_is_read_with_the_access_facts_or_asked_for(patient):
    """The SCR page's context carries the opt-in read with the access facts; a context made
    without it (another caller) makes the view look it up, so nobody goes untold."""
    from healthspace.access.context import AccessContext
    from healthspace.accounts.actors import actor_for_user
    from healthspace.accounts.sessions.services import key_hash
    from healthspace.staff.selectors import StaffContext, access_context_for
    from healthspace.staff.services import _notify_patient_of_staff_view

    staff = make_staff("clinician")
    actor = actor_for_user(staff)
    link_user = Account.objects.get(user__patient_link__patient=patient).user_id
    facts = access_context_for(
        actor=actor, user_id=staff.pk, session_key_hash=key_hash("k"), patient_id=patient.id
    )
    assert facts.staff_view_emails_read and facts.staff_view_emails_to is None
    Account.objects.filter(user_id=link_user).update(notify_staff_views=True)
    facts = access_context_for(
        actor=actor, user_id=staff.pk, session_key_hash=key_hash("k"), patient_id=patient.id
    )
    assert facts.staff_view_emails_to == link_user
    mail.outbox.clear()
    _notify_patient_of_staff_view(patient.id, StaffContext(access=AccessContext()))
    run_due_tasks()
    assert len(mail.outbox) == 1


def test_the_whole_journey_leaves_every_chain_verifiable(patient):
    client = client_for(make_staff("clinician"))
    found(client, patient)
    answer(client, patient, "given")
    client.get(f"/staff/patient/{patient.id}/scr/")
    assert verify_database().ok


def test_the_patient_sees_the_role_and_organisation_at_the_time_of_the_view(patient):
    user = make_staff("clinician", ods="RR803", first="Sam", last="Jones")
    client = client_for(user)
    found(client, patient)
    client.post(f"/staff/patient/{patient.id}/relationship/", {"reason": "urgent-care"})
    answer(client, patient, "given")
    client.get(f"/staff/patient/{patient.id}/scr/")
    # they later move to another organisation and role: the trail keeps the old ones
    Account.objects.filter(user=user).update(organisation=_org("Y99999", "Elsewhere"))
    user.groups.clear()
    entry = access_history_for_patient(patient_id=patient.id, limit=1)[0]
    assert (entry.roles, entry.organisation) == (("Clinician",), "Trust RR803")


def test_the_staff_record_page_costs_a_fixed_number_of_queries(
    patient, django_assert_max_num_queries
):
    client = client_for(make_staff("clinician", "additional-information"))
    found(client, patient)
    answer(client, patient, "given")
    client.get(f"/staff/patient/{patient.id}/scr/")  # the first view may save the session
    # the session with its signed-in record and user (one query), the user's facts, the
    # guard's facts (consent, practice, claim, answer and the opt-in to emails: one query),
    # the read (patient, items; the data key is the key store's), the audit append (head
    # lock, insert and head update) and the transaction's own; none of it per item
    with django_assert_max_num_queries(10) as ctx:
        assert client.get(f"/staff/patient/{patient.id}/scr/").status_code == 200
    first = len(ctx.captured_queries)
    sql = [q["sql"] for q in ctx.captured_queries]  # subqueries' tables are aliased (U0)
    assert not [q for q in sql if q.startswith('SELECT "staff_permissionanswer".')]
    assert not [q for q in sql if q.startswith('SELECT "consent_consentrecord".')]
    assert not [q for q in sql if q.startswith('SELECT pl."user_id" FROM')]  # with the facts
    # the user and the signed-in record come with the session, not on their own
    own = ('FROM "auth_user" t ', 'FROM "accounts_usersession" t ')
    assert not [q for q in sql if any(table in q for table in own)]
    from healthspace.records.models import ScrItem

    assert ScrItem.objects.filter(patient=patient).count() > 5  # many items, same queries
    with django_assert_max_num_queries(first):
        client.get(f"/staff/patient/{patient.id}/scr/")
