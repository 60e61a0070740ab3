"""A patient links their account online with the details from their practice."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from healthspace.accounts.linkage import services
from healthspace.accounts.models import LinkageKey, PatientLink
from healthspace.accounts.sessions import throttle
from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now

from .conftest import make_user

pytestmark = pytest.mark.django_db

VERIFY_URL = "/account/verify/"


def form_for(issued, person, **changes) -> dict[str, str]:
    born = person.birth_date
    data = {
        "account_id": issued.account_id,
        "linkage_key": issued.linkage_key,
        "practice_ods": issued.practice_ods,
        "birth_day": str(born.day),
        "birth_month": str(born.month),
        "birth_year": str(born.year),
        "surname": person.surname,
    }
    data.update(changes)
    return data


def state() -> tuple:
    """Everything a verification attempt could change."""
    return (
        list(
            LinkageKey.objects.order_by("pk").values_list("pk", "used_at", "used_by", "expires_at")
        ),
        list(PatientLink.objects.values_list("user_id", "patient_id")),
    )


def comparable(html: str) -> str:
    # The CSRF token and the CSP nonce are new for every page, and the form shows back what
    # the person typed: none of these says anything about which detail was wrong.
    return re.sub(r'(value|nonce)="[^"]*"', r'\1=""', html)


@pytest.fixture
def hash_checks(monkeypatch) -> list[str]:
    checked: list[str] = []
    real = services.check_password

    def counting(password, encoded, *args, **kwargs):
        checked.append(encoded)
        return real(password, encoded, *args, **kwargs)

    monkeypatch.setattr(services, "check_password", counting)
    return checked


def test_url_is_where_the_letter_says():
    assert reverse("accounts:linkage-verify") == VERIFY_URL


def test_a_patient_links_their_account_with_the_details_from_their_practice(
    client, patients, patient_user, issue, sign_in, throttle_calls, hash_checks
):
    person = patients[0]
    issued = issue(person.patient)
    sign_in(client, patient_user)
    assert client.get(VERIFY_URL).status_code == 200
    # Typed loosely: lower case, spaces for dashes, the surname in capitals.
    response = client.post(
        VERIFY_URL,
        form_for(
            issued,
            person,
            account_id=issued.account_id.lower(),
            linkage_key=issued.linkage_key.replace("-", " ").lower(),
            practice_ods=f" {issued.practice_ods.lower()} ",
            surname=f"  {person.surname.upper()} ",
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("web:record")
    link = PatientLink.objects.get(user=patient_user)
    assert link.patient_id == person.patient.id
    assert link.method == PatientLink.Method.LINKAGE_KEY
    row = LinkageKey.objects.get(account_id=issued.account_id)
    assert row.used_at is not None and row.used_by_id == patient_user.pk
    event = AuditEvent.objects.get(action=services.VERIFY)
    assert (event.patient_id, event.outcome) == (person.patient.id, "success")
    assert len(hash_checks) == 1
    assert throttle_calls["check"] == [{"kind": "linkage", "identifier": "pat@example.org"}]
    [recorded] = throttle_calls["record"]
    assert recorded["kind"] == "linkage" and recorded["success"] is True
    assert recorded["identifier"] == "pat@example.org" and recorded["user"] == patient_user
    [notice] = [m for m in mail.outbox if "linked" in m.subject]
    assert notice.to == ["pat@example.org"]
    body = notice.subject + notice.body
    for private in (person.surname, person.patient.nhs_number, issued.account_id):
        assert private not in body
    # Linked now: the page sends them on to their record.
    assert client.get(VERIFY_URL)["Location"] == reverse("web:record")


def _wrong_account_id(issued, person):
    return form_for(issued, person, account_id="ZZZZZZZZZZ")


def _wrong_key(issued, person):
    wrong = (
        "22222-22222-22222" if issued.linkage_key != "22222-22222-22222" else "33333-33333-33333"
    )
    return form_for(issued, person, linkage_key=wrong)


def _wrong_ods(issued, person):
    return form_for(issued, person, practice_ods="Y00002")


def _wrong_birth_date(issued, person):
    other = person.birth_date + timedelta(days=1)
    return form_for(
        issued,
        person,
        birth_day=str(other.day),
        birth_month=str(other.month),
        birth_year=str(other.year),
    )


def _wrong_surname(issued, person):
    return form_for(issued, person, surname="Nobody")


def _expired(issued, person):
    LinkageKey.objects.filter(account_id=issued.account_id).update(
        expires_at=now() - timedelta(seconds=1)
    )
    return form_for(issued, person)


def _used(issued, person):
    someone = make_user("someone@example.org")
    LinkageKey.objects.filter(account_id=issued.account_id).update(used_at=now(), used_by=someone)
    return form_for(issued, person)


def _revoked(issued, person):
    services.linkage_key_issue(
        actor=services.Actor.system(services.CLI_PURPOSE), patient_id=person.patient.id
    )
    return form_for(issued, person)


@pytest.mark.parametrize(
    "attempt",
    [
        _wrong_account_id,
        _wrong_key,
        _wrong_ods,
        _wrong_birth_date,
        _wrong_surname,
        _expired,
        _used,
        _revoked,
    ],
)
def test_wrong_details_never_say_which_part_was_wrong(
    client, patients, patient_user, issue, sign_in, throttle_calls, hash_checks, attempt
):
    person = patients[0]
    issued = issue(person.patient)
    sign_in(client, patient_user)
    reference = client.post(VERIFY_URL, _wrong_account_id(issued, person))
    assert len(hash_checks) == 1  # an unknown account id still costs one Argon2 check
    data = attempt(issued, person)
    before = state()
    response = client.post(VERIFY_URL, data)
    assert state() == before
    assert response.status_code == reference.status_code == 200
    html = response.content.decode()
    assert services.GENERIC_ERROR in html
    assert comparable(html) == comparable(reference.content.decode())
    assert len(hash_checks) == 2
    assert not PatientLink.objects.filter(user=patient_user).exists()
    assert [c["success"] for c in throttle_calls["record"]] == [False, False]
    assert all(c["kind"] == "linkage" for c in throttle_calls["record"])


def test_a_key_works_once(client, patients, patient_user, issue, sign_in, throttle_calls):
    person = patients[0]
    issued = issue(person.patient)
    sign_in(client, patient_user)
    assert client.post(VERIFY_URL, form_for(issued, person)).status_code == 302
    PatientLink.objects.filter(user=patient_user).delete()  # the record is free again
    other = make_user("other@example.org")
    sign_in(client, other)
    response = client.post(VERIFY_URL, form_for(issued, person))
    assert response.status_code == 200
    assert services.GENERIC_ERROR in response.content.decode()
    assert not PatientLink.objects.exists()


def test_correct_details_for_a_record_linked_to_another_account_do_not_link_twice(
    client, patients, patient_user, issue, sign_in, throttle_calls
):
    person = patients[0]
    PatientLink.objects.create(
        user=make_user("first@example.org"),
        patient=person.patient,
        verified_at=now(),
        verified_by="test",
        method=PatientLink.Method.IN_PERSON,
    )
    issued = issue(person.patient)
    sign_in(client, patient_user)
    response = client.post(VERIFY_URL, form_for(issued, person))
    assert "already linked to another HealthSpace account" in response.content.decode()
    assert not PatientLink.objects.filter(user=patient_user).exists()
    assert LinkageKey.objects.get(account_id=issued.account_id).used_at is None


def test_when_throttled_nothing_is_checked(
    client, patients, patient_user, issue, sign_in, monkeypatch, hash_checks
):
    recorded = []
    monkeypatch.setattr(throttle, "check", lambda request, **kw: throttle.Verdict(False, 600))
    monkeypatch.setattr(throttle, "record", lambda request, **kw: recorded.append(kw))
    person = patients[0]
    issued = issue(person.patient)
    sign_in(client, patient_user)
    response = client.post(VERIFY_URL, form_for(issued, person))
    assert response.status_code == 429
    assert "Try again in 10 minutes" in response.content.decode()
    assert hash_checks == [] and recorded == []
    assert not PatientLink.objects.exists()


def test_incomplete_forms_show_each_missing_field(client, patient_user, sign_in, throttle_calls):
    sign_in(client, patient_user)
    response = client.post(
        VERIFY_URL, {"birth_day": "31", "birth_month": "2", "birth_year": "1990"}
    )
    html = response.content.decode()
    for message in (
        "Enter your account ID",
        "Enter your linkage key",
        "Enter your practice ODS code",
        "Date of birth must be a real date",
        "Enter your surname",
    ):
        assert message in html
    assert 'href="#birth_date-day"' in html and 'id="birth_date-day"' in html
    assert throttle_calls["check"] == []


def test_only_signed_in_patients_with_a_confirmed_email_can_verify(client, sign_in, patients):
    assert client.get(VERIFY_URL)["Location"].startswith(reverse("web:login"))
    sign_in(client, make_user("new@example.org", confirmed=False))
    response = client.get(VERIFY_URL)
    assert "Confirm your email address first" in response.content.decode()
    assert 'name="linkage_key"' not in response.content.decode()
    sign_in(client, make_user("staff@example.org", kind="staff"))
    assert client.get(VERIFY_URL).status_code == 404
