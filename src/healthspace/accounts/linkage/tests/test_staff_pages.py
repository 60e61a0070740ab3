"""The registration clerk's pages: find a patient, issue linkage details, link in person."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core import mail
from django.urls import reverse

from healthspace.access.roles import Role
from healthspace.accounts.linkage import services
from healthspace.accounts.models import LinkageKey, PatientLink
from healthspace.audit.models import AuditEvent
from healthspace.core.nhs_numbers import format_spaced
from healthspace.records.models import Organisation

from .conftest import make_user

pytestmark = pytest.mark.django_db

LOOKUP = "/account/staff/linkage/"
ISSUE = "/account/staff/linkage/issue/"
IN_PERSON = "/account/staff/linkage/in-person/"


def test_urls():
    assert reverse("accounts:staff-linkage") == LOOKUP
    assert reverse("accounts:staff-linkage-issue") == ISSUE
    assert reverse("accounts:staff-linkage-in-person") == IN_PERSON


@pytest.mark.parametrize("who", ["anonymous", "patient", "clinician", "clerk-without-role"])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", LOOKUP),
        ("post", LOOKUP),
        ("get", ISSUE),  # not even "method not allowed": the page is not there for them
        ("post", ISSUE),
        ("post", IN_PERSON),
    ],
)
def test_the_staff_pages_do_not_exist_for_anyone_but_registration_clerks(
    client, patients, sign_in, who, method, url
):
    org = Organisation.objects.get(ods_code="Y00001")
    users = {
        "patient": lambda: make_user("p@example.org"),
        "clinician": lambda: make_user(
            "c@example.org", kind="staff", org=org, roles=[Role.CLINICIAN]
        ),
        "clerk-without-role": lambda: make_user("k@example.org", kind="staff", org=org),
    }
    if who in users:
        sign_in(client, users[who]())
    data = {
        "nhs_number": patients[0].patient.nhs_number,
        "email": "p@example.org",
        "id_checked": "on",
    }
    response = getattr(client, method)(url, data)
    assert response.status_code == 404
    assert not LinkageKey.objects.exists() and not PatientLink.objects.exists()


def test_a_clerk_finds_a_patient_at_their_practice_and_sees_demographics_only(
    client, patients, clerk, sign_in
):
    person = patients[0]
    sign_in(client, clerk)
    assert client.get(LOOKUP).status_code == 200
    response = client.post(LOOKUP, {"nhs_number": format_spaced(person.patient.nhs_number)})
    html = response.content.decode()
    assert f"{person.given} {person.surname}" in html
    assert person.birth_date.strftime("%-d %B %Y") in html
    assert format_spaced(person.patient.nhs_number) in html
    assert "Allerg" not in html and "Medication" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "two forms on one page must not share ids"
    event = AuditEvent.objects.get(action=services.LOOKUP)
    assert (event.patient_id, event.outcome) == (person.patient.id, "success")


def test_a_patient_at_another_practice_looks_the_same_as_no_patient(
    client, patients, clerk, sign_in
):
    sign_in(client, clerk)
    elsewhere = client.post(LOOKUP, {"nhs_number": patients[1].patient.nhs_number})
    absent = client.post(LOOKUP, {"nhs_number": "9434765919"})
    for response in (elsewhere, absent):
        html = response.content.decode()
        assert services.NOT_FOUND_MESSAGE in html
        assert patients[1].surname not in html
    assert AuditEvent.objects.get(action=services.LOOKUP).outcome == "denied"


def test_a_clerk_issues_linkage_details_shown_once_on_a_printable_page(
    client, patients, clerk, sign_in
):
    sign_in(client, clerk)
    response = client.post(ISSUE, {"nhs_number": patients[0].patient.nhs_number})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    row = LinkageKey.objects.get()
    key = re.search(r"\b(?:[2-9A-HJ-NP-Z]{5}-){2}[2-9A-HJ-NP-Z]{5}\b", html).group(0)
    assert check_password(key.replace("-", ""), row.key_hash)
    assert row.account_id in html and "Y00001" in html
    assert "not stored" in html
    assert row.issued_by == f"staff:user:{clerk.pk}"
    assert reverse("accounts:linkage-verify") in html


def test_a_clerk_of_another_practice_cannot_issue(client, patients, other_clerk, sign_in):
    sign_in(client, other_clerk)
    response = client.post(ISSUE, {"nhs_number": patients[0].patient.nhs_number})
    assert response.status_code == 404
    assert not LinkageKey.objects.exists()
    assert AuditEvent.objects.get(action=services.ISSUE).outcome == "denied"


def test_a_clerk_links_an_account_in_person_after_checking_id(
    client, patients, clerk, patient_user, sign_in
):
    person = patients[0]
    sign_in(client, clerk)
    response = client.post(
        IN_PERSON,
        {"nhs_number": person.patient.nhs_number, "email": "PAT@example.org", "id_checked": "on"},
    )
    assert response.status_code == 200
    assert "Account linked" in response.content.decode()
    link = PatientLink.objects.get(user=patient_user)
    assert link.patient_id == person.patient.id
    assert link.method == PatientLink.Method.IN_PERSON
    assert link.verified_by == f"staff:user:{clerk.pk}"
    event = AuditEvent.objects.get(action=services.LINK_IN_PERSON)
    assert (event.patient_id, event.outcome) == (person.patient.id, "success")
    [notice] = [m for m in mail.outbox if "linked" in m.subject]
    assert notice.to == ["pat@example.org"] and person.surname not in notice.body


@pytest.mark.parametrize(
    ("case", "field_message"),
    [
        ("unknown email", "This account cannot be linked"),
        ("email not confirmed", "This account cannot be linked"),
        ("staff account", "This account cannot be linked"),
        ("account already linked", "This account cannot be linked"),
        ("record already linked", "already linked to a HealthSpace account"),
        ("patient at another practice", services.NOT_FOUND_MESSAGE),
        ("ID not checked", "Confirm that you have checked"),
    ],
)
def test_in_person_linking_refuses(client, patients, clerk, sign_in, case, field_message):
    person = patients[1] if case == "patient at another practice" else patients[0]
    email = "pat@example.org"
    if case != "unknown email":
        make_user(
            email,
            confirmed=case != "email not confirmed",
            kind="staff" if case == "staff account" else "patient",
        )
    if case in ("account already linked", "record already linked"):
        owner = (
            get_user_model().objects.get(username=email)
            if case == "account already linked"
            else make_user("first@example.org")
        )
        target = patients[2].patient if case == "account already linked" else person.patient
        PatientLink.objects.create(
            user=owner, patient=target, verified_at=target.created_at, verified_by="t"
        )
    before = list(PatientLink.objects.values_list("user_id", "patient_id"))
    sign_in(client, clerk)
    data = {"nhs_number": person.patient.nhs_number, "email": email}
    if case != "ID not checked":
        data["id_checked"] = "on"
    response = client.post(IN_PERSON, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert field_message in html
    for target in re.findall(r'href="#([\w-]+)"', html):  # the error summary's links work
        assert f'id="{target}"' in html
    assert list(PatientLink.objects.values_list("user_id", "patient_id")) == before
