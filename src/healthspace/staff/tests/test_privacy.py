"""The privacy officer's console: alerts and cases, unhide and deletion requests. Every
page is the privacy officer's alone, every look at a patient's identifiers is in that
patient's trail, and every decision is recorded, with the officer's note kept out of the
audit chain."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from html import unescape
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, ConsentState
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import Account
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import audit_record
from healthspace.audit.verify import verify_database
from healthspace.cases import services as cases
from healthspace.cases.models import CaseDecision, ConsentRequest, PrivacyCase
from healthspace.cases.selectors import deletion_requests, privacy_case
from healthspace.consent.models import ConsentRecord
from healthspace.consent.selectors import consent_state_for
from healthspace.consent.services import consent_change
from healthspace.core.clock import now
from healthspace.core.nhs_numbers import format_spaced, synthetic_for
from healthspace.records.models import Patient
from healthspace.staff import services as staff
from healthspace.staff.selectors import StaffContext
from healthspace.staff.testing import make_staff_user

pytestmark = pytest.mark.django_db

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
BORN = date(1961, 4, 23)
QUEUE = "/staff/privacy/"
REQUESTS = "/staff/privacy/requests/"
NEW_REQUEST = "/staff/privacy/requests/new/"
DELETIONS = "/staff/privacy/deletions/"
NOTE = "Spoke to the ward manager: patient was admitted through ED that night"
EMERGENCY_WHY = "Collapsed in the waiting room, unresponsive, checking allergies"

_n = iter(range(10_000))


def make_staff(*roles: str, ods: str = "RR801", first: str = "Asha", last: str = "Patel"):
    return make_staff_user(*roles, ods=ods, first=first, last=last)


def make_patient(seed: str = "privacy") -> Patient:
    return Patient.objects.create(
        nhs_number=synthetic_for(seed),
        birth_date=BORN,
        resource=b"",
        content_hash="x",
        source_system="test",
    )


def client_for(user):
    return signed_in_client(user, second_factor="passkey")


def label(user) -> str:
    return f"staff:user:{user.pk}"


def set_consent(patient: Patient, *states: ConsentState) -> None:
    """The patient's own choices, made online, one after another."""
    actor = Actor("patient", "user:0", patient_id=patient.id)
    for state in states:
        consent_change(actor=actor, patient_id=patient.id, new_state=state, source="patient-online")


def emergency(clinician, patient: Patient, explanation: str = EMERGENCY_WHY) -> int:
    """Emergency access through the clinician's own service: it raises the alert."""
    answer = staff.emergency_access_record(
        actor=actor_for_user(clinician),
        user_id=clinician.pk,
        session_key_hash="session",
        patient_id=patient.id,
        context=StaffContext(access=AccessContext()),
        explanation=explanation,
    )
    return answer.audit_event_id


def claim(clinician, patient: Patient, explanation: str = "Community pharmacist, NMS review"):
    made = staff.relationship_claim(
        actor=actor_for_user(clinician),
        user_id=clinician.pk,
        patient_id=patient.id,
        context=StaffContext(access=AccessContext()),
        reason="other",
        explanation=explanation,
    )
    return made.audit_event_id


def view(user, patient: Patient, sections=("medications", "allergies")) -> AuditEvent:
    with transaction.atomic():
        return audit_record(
            actor=actor_for_user(user),
            action="scr.view",
            patient_id=patient.id,
            outcome="success",
            reason="permission-given",
            detail={"sections": list(sections)},
        )


def case_for(event_id: int) -> PrivacyCase:
    return PrivacyCase.objects.get(audit_event_id=event_id)


def all_details() -> str:
    return json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def patient() -> Patient:
    return make_patient()


@pytest.fixture
def officer():
    return make_staff("privacy-officer", ods="X26", first="Priya", last="Officer")


@pytest.fixture
def po(officer):
    return client_for(officer)


@pytest.fixture
def clinician():
    return make_staff("clinician", first="Sam", last="Jones")


# --- the queue ------------------------------------------------------------------------


def test_queue_shows_alerts_raised_by_staff_services_oldest_first_with_counts(
    po, officer, patient, clinician
):
    first = case_for(emergency(clinician, patient))
    second = case_for(claim(make_staff("clinician", first="Lee"), patient))
    third = case_for(emergency(make_staff("clinician", first="Kim"), make_patient("b")))

    response = po.get(QUEUE)
    assert response.status_code == 200
    body = response.content.decode()
    rows = [body.index(f'href="/staff/privacy/case/{c.pk}/"') for c in (first, second, third)]
    assert rows == sorted(rows), "open cases are listed oldest first"
    assert "Emergency access to review (2)" in body
    assert "Access on a self-claimed relationship to review (1)" in body
    assert "All kinds (3)" in body
    assert patient.nhs_number not in body and format_spaced(patient.nhs_number) not in body
    # the list shows nobody's identifiers: one event, in the officer's own trail
    (listed,) = AuditEvent.objects.filter(actor=label(officer), action="case.view")
    assert listed.patient_id is None and listed.detail["shown"] == 3

    only = po.get(QUEUE, {"kind": "self-claimed-relationship"}).content.decode()
    assert f"/case/{second.pk}/" in only and f"/case/{first.pk}/" not in only


def test_closed_cases_are_reachable_with_the_closed_filter(po, officer, patient, clinician):
    case = case_for(emergency(clinician, patient))
    cases.case_decide(
        actor=actor_for_user(officer), case_id=case.pk, outcome="appropriate", note=NOTE
    )
    assert f"/case/{case.pk}/" not in po.get(QUEUE).content.decode()
    closed = po.get(QUEUE, {"status": "closed"}).content.decode()
    assert f"/case/{case.pk}/" in closed and "Appropriate: no further action" in closed
    # an unknown filter is no filter, not an error
    assert po.get(QUEUE, {"status": "bogus", "kind": "x"}).status_code == 200


# --- one case -------------------------------------------------------------------------


def test_case_page_shows_the_event_in_words_with_the_explanation_and_nearby_activity(
    po, officer, patient, clinician
):
    earlier = now() - timedelta(days=2)
    with mock.patch("healthspace.audit.services.now", return_value=earlier):
        view(clinician, patient, sections=("problems",))  # outside the 24 hours
    before = view(clinician, patient)
    event_id = emergency(clinician, patient)
    after = view(clinician, patient, sections=("allergies",))
    view(make_staff("clinician", first="Other"), patient)  # someone else: not shown
    view(clinician, make_patient("elsewhere"))  # another record: not shown
    # they have since changed jobs: the page shows who they were at the time
    clinician.groups.set([Group.objects.get_or_create(name="registration-clerk")[0]])
    case = case_for(event_id)

    response = po.get(f"/staff/privacy/case/{case.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert format_spaced(patient.nhs_number) in body
    assert "Sam Jones" in body and "Clinician" in body and "Trust RR801 (RR801)" in body
    assert "Used emergency access to the patient's record" in unescape(body)
    assert EMERGENCY_WHY in body
    detail = privacy_case(actor=actor_for_user(officer), case_id=case.pk)
    assert [e.id for e in detail.around] == [before.pk, after.pk]
    assert detail.event.roles == ("Clinician",) and detail.event.explanation == EMERGENCY_WHY
    assert "Registration clerk" not in body
    # viewing it is in the patient's trail, with the case id and nothing else of note
    seen = AuditEvent.objects.filter(
        patient_id=patient.id, action="case.view", actor=label(officer)
    )
    assert seen.count() == 2 and seen.first().detail["case_id"] == case.pk


def test_a_relationship_claim_case_shows_the_reason_the_clinician_gave(po, patient, clinician):
    case = case_for(claim(clinician, patient, explanation="Dispensing an urgent supply today"))
    body = po.get(f"/staff/privacy/case/{case.pk}/").content.decode()
    assert "Another reason (explain)" in body and "Dispensing an urgent supply today" in body
    assert "Said they are involved in the patient's care" in unescape(body)


def test_a_not_recognised_case_shows_the_patients_note(po, patient, clinician):
    seen = view(clinician, patient)
    case = cases.case_open_not_recognised(
        actor=Actor("patient", "user:0", patient_id=patient.id),
        patient_id=patient.id,
        audit_event_id=seen.pk,
        note="I have never been to this hospital",
    )
    body = po.get(f"/staff/privacy/case/{case.pk}/").content.decode()
    assert "What the patient told us" in body and "I have never been to this hospital" in body
    assert (
        "Viewed the patient's Summary Care Record" in unescape(body)
        and "medications, allergies" in body
    )


def test_case_page_queries_do_not_grow_with_the_activity_around_it(
    officer, patient, clinician, django_assert_max_num_queries
):
    case = case_for(emergency(clinician, patient))
    for _ in range(3):
        view(clinician, patient)
    actor = actor_for_user(officer)
    with django_assert_max_num_queries(30) as few:
        privacy_case(actor=actor, case_id=case.pk)
    for _ in range(20):
        view(clinician, patient)
    with django_assert_max_num_queries(len(few.captured_queries)):
        privacy_case(actor=actor, case_id=case.pk)


# --- deciding a case ------------------------------------------------------------------


def test_deciding_closes_the_case_records_who_and_audits_the_outcome_only(
    po, officer, patient, clinician
):
    case = case_for(emergency(clinician, patient))
    response = po.post(
        f"/staff/privacy/case/{case.pk}/",
        {"outcome": "inappropriate-referred", "note": NOTE},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/staff/privacy/case/{case.pk}/"
    case.refresh_from_db()
    assert case.status == PrivacyCase.Status.CLOSED and case.closed_at is not None
    assert case.decision == NOTE
    decided = CaseDecision.objects.get(case=case)
    assert decided.outcome == "inappropriate-referred" and decided.decided_by == label(officer)
    assert decided.decided_at == case.closed_at

    (event,) = AuditEvent.objects.filter(patient_id=patient.id, action="case.decide")
    assert event.outcome == "success" and event.reason == "privacy-officer"
    assert {k: event.detail[k] for k in ("case_id", "outcome")} == {
        "case_id": case.pk,
        "outcome": "inappropriate-referred",
    }
    assert set(event.detail) <= {"case_id", "outcome", "roles", "org", "request_id"}
    assert NOTE not in all_details() and EMERGENCY_WHY not in all_details()

    page = po.get(response["Location"]).content.decode()
    assert "Inappropriate: referred for investigation" in page and NOTE in page
    assert "Priya Officer" in page and "Close the case" not in page


def test_a_closed_case_cannot_be_decided_again(po, officer, patient, clinician):
    case = case_for(emergency(clinician, patient))
    po.post(f"/staff/privacy/case/{case.pk}/", {"outcome": "appropriate", "note": NOTE})

    again = client_for(make_staff("privacy-officer")).post(
        f"/staff/privacy/case/{case.pk}/",
        {"outcome": "inappropriate-referred", "note": "second thoughts"},
    )
    assert again.status_code == 400
    assert "This case is already closed" in again.content.decode()
    assert CaseDecision.objects.get(case=case).outcome == "appropriate"
    assert AuditEvent.objects.filter(action="case.decide").count() == 1


def test_a_decision_needs_an_outcome_and_a_note(po, patient, clinician):
    case = case_for(emergency(clinician, patient))
    response = po.post(f"/staff/privacy/case/{case.pk}/", {})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Choose the outcome of your review" in body
    assert "Enter a note explaining the decision" in body
    case.refresh_from_db()
    assert case.status == PrivacyCase.Status.OPEN
    assert po.post(f"/staff/privacy/case/{case.pk}/", {"outcome": "appropriate"}).status_code == 400


# --- only the privacy officer ---------------------------------------------------------


@pytest.mark.parametrize("role", ["clinician", "registration-clerk", "operator"])
def test_every_privacy_url_is_not_found_for_other_staff_and_the_refusal_is_audited(
    role, officer, patient, clinician
):
    case = case_for(emergency(clinician, patient))
    hidden = make_patient("hidden")
    set_consent(hidden, ConsentState.HIDDEN)
    request = cases.unhide_request_record(
        actor=actor_for_user(officer),
        nhs_number=hidden.nhs_number,
        birth_date=BORN,
        received_on=date.today(),
        reference="DOC-1",
        requested_state="core-only",
    )
    leaving = make_patient("leaving")
    set_consent(leaving, ConsentState.DELETION_REQUESTED)
    other = make_staff(role)
    client = client_for(other)
    decision = {"decision": "grant", "note": "x", "outcome": "appropriate"}
    letter = {
        "nhs_number": hidden.nhs_number,
        **{f"birth_{k}": getattr(BORN, k) for k in ("day", "month", "year")},
        **{f"received_{k}": getattr(BORN, k) for k in ("day", "month", "year")},
        "reference": "DOC-2",
        "requested_state": "implied",
    }
    # (method, path, data, the record whose trail holds the refusal, the action refused)
    tries = [
        ("get", QUEUE, None, None, "case.view"),
        ("get", f"{QUEUE}?status=closed", None, None, "case.view"),
        ("get", f"/staff/privacy/case/{case.pk}/", None, patient.id, "case.view"),
        ("post", f"/staff/privacy/case/{case.pk}/", decision, patient.id, "case.decide"),
        ("get", REQUESTS, None, None, "case.view"),
        ("get", NEW_REQUEST, None, None, "consent.request-record"),
        ("post", NEW_REQUEST, letter, None, "consent.request-record"),
        ("get", f"{REQUESTS}{request.pk}/", None, hidden.id, "case.view"),
        ("post", f"{REQUESTS}{request.pk}/", decision, hidden.id, "consent.request-record"),
        ("get", DELETIONS, None, None, "case.view"),
        ("get", f"{DELETIONS}{leaving.id}/", None, leaving.id, "case.view"),
        ("post", f"{DELETIONS}{leaving.id}/", decision, leaving.id, "consent.request-record"),
    ]
    wrong = []
    for method, path, data, patient_id, action in tries:
        before = AuditEvent.objects.filter(actor=label(other), outcome="denied").count()
        response = getattr(client, method)(path, data or {})
        if response.status_code != 404:
            wrong.append(f"{method} {path}: {response.status_code}")
        refusals = AuditEvent.objects.filter(actor=label(other), outcome="denied").order_by("pk")
        if refusals.count() != before + 1:
            wrong.append(f"{method} {path}: {refusals.count() - before} refusals audited")
            continue
        last = refusals.last()
        if (last.patient_id, last.action) != (patient_id, action):
            wrong.append(f"{method} {path}: refusal audited as {last.action} on {last.patient_id}")
    assert not wrong, "\n".join(wrong)
    # nothing was decided by them
    assert PrivacyCase.objects.get(pk=case.pk).status == PrivacyCase.Status.OPEN
    assert consent_state_for(patient_id=hidden.id) == ConsentState.HIDDEN
    assert consent_state_for(patient_id=leaving.id) == ConsentState.DELETION_REQUESTED


def test_the_console_does_not_exist_for_patients(patient):
    user = get_user_model().objects.create(username="patient@example.org")
    Account.objects.create(user=user)
    client = signed_in_client(user)
    for path in (QUEUE, REQUESTS, NEW_REQUEST, DELETIONS):
        assert client.get(path).status_code == 404


def test_staff_need_a_passkey_session_even_as_privacy_officer(officer):
    response = signed_in_client(officer, second_factor="totp").get(QUEUE)
    assert response.status_code == 302 and "two-factor" in response["Location"]


# --- unhide requests ------------------------------------------------------------------


def letter_for(patient: Patient, **changes) -> dict[str, str]:
    received = date.today() - timedelta(days=3)
    data = {
        "nhs_number": format_spaced(patient.nhs_number),
        "birth_day": str(BORN.day),
        "birth_month": str(BORN.month),
        "birth_year": str(BORN.year),
        "received_day": str(received.day),
        "received_month": str(received.month),
        "received_year": str(received.year),
        "reference": "DM-2026-00042",
        "requested_state": "core-and-additional",
    }
    return {**data, **changes}


def test_a_written_unhide_request_is_recorded_and_granting_it_unhides_the_record(
    po, officer, patient
):
    set_consent(patient, ConsentState.CORE_ONLY, ConsentState.HIDDEN)
    assert po.get(NEW_REQUEST).status_code == 200

    response = po.post(NEW_REQUEST, letter_for(patient))
    assert response.status_code == 302, response.content.decode()[:2000]
    request = ConsentRequest.objects.get()
    assert response["Location"] == f"{REQUESTS}{request.pk}/"
    assert (request.kind, request.status, request.requested_state) == (
        "unhide",
        "open",
        "core-and-additional",
    )
    assert request.recorded_by == label(officer) and request.reference == "DM-2026-00042"
    assert request.received_on == date.today() - timedelta(days=3)
    listed = po.get(REQUESTS).content.decode()
    assert "DM-2026-00042" in listed and patient.nhs_number not in listed

    page = po.get(response["Location"]).content.decode()
    assert format_spaced(patient.nhs_number) in page and "Hidden" in page

    decided = po.post(response["Location"], {"decision": "grant", "note": NOTE})
    assert decided.status_code == 302
    request.refresh_from_db()
    assert request.status == "granted" and request.decided_by == label(officer)
    assert request.decision_note == NOTE
    assert consent_state_for(patient_id=patient.id) == ConsentState.CORE_AND_ADDITIONAL
    latest = ConsentRecord.objects.filter(patient_id=patient.id).order_by("-version").first()
    assert latest.version == request.consent_version
    assert latest.source == "privacy-officer" and latest.note == f"unhide request {request.pk}"
    assert latest.recorded_by == label(officer)

    trail = AuditEvent.objects.filter(patient_id=patient.id, actor=label(officer))
    recorded = [e.detail for e in trail.filter(action="consent.request-record").order_by("seq")]
    assert [(d["kind"], d.get("decision")) for d in recorded] == [
        ("unhide", None),
        ("unhide", "granted"),
    ]
    change = trail.get(action="consent.change")
    assert (change.detail["from"], change.detail["to"]) == ("hidden", "core-and-additional")
    assert NOTE not in all_details() and "DM-2026-00042" not in all_details()

    again = po.post(response["Location"], {"decision": "refuse", "note": "late"})
    assert again.status_code == 400 and "already been decided" in again.content.decode()
    assert verify_database().ok


def test_refusing_an_unhide_request_keeps_the_record_hidden(po, officer, patient):
    set_consent(patient, ConsentState.HIDDEN)
    po.post(NEW_REQUEST, letter_for(patient))
    request = ConsentRequest.objects.get()
    response = po.post(f"{REQUESTS}{request.pk}/", {"decision": "refuse", "note": NOTE})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "refused" and request.consent_version is None
    assert consent_state_for(patient_id=patient.id) == ConsentState.HIDDEN
    assert "Refused" in po.get(f"{REQUESTS}?status=decided").content.decode()


@pytest.mark.parametrize(
    ("states", "changes", "message", "trail"),
    [
        ((), {}, "is not hidden, so there is nothing to unhide", ("refused", "record-not-hidden")),
        (
            (ConsentState.DELETION_REQUESTED,),
            {},
            "has asked for their record to be deleted",
            ("refused", "deletion-requested"),
        ),
        (
            (ConsentState.HIDDEN,),
            {"birth_day": str(BORN.day + 1)},
            "No patient matches that NHS number and date of birth",
            ("denied", "birth-date-did-not-match"),
        ),
        (
            (ConsentState.HIDDEN,),
            {"nhs_number": synthetic_for("nobody")},
            "No patient matches that NHS number and date of birth",
            None,
        ),
    ],
    ids=["not-hidden", "deletion-pending", "wrong-birth-date", "unknown-nhs-number"],
)
def test_an_unhide_request_is_refused_unless_the_letter_matches_a_hidden_record(
    po, officer, patient, states, changes, message, trail
):
    set_consent(patient, *states)
    response = po.post(NEW_REQUEST, letter_for(patient, **changes))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ConsentRequest.objects.exists()
    attempt = AuditEvent.objects.filter(actor=label(officer), action="consent.request-record").get()
    if trail is None:  # an NHS number nobody has: the officer's own trail
        assert (attempt.patient_id, attempt.outcome) == (None, "not-found")
    else:
        assert attempt.patient_id == patient.id
        assert (attempt.outcome, attempt.reason) == trail


def test_the_unhide_form_checks_its_fields(po, patient):
    response = po.post(
        NEW_REQUEST,
        letter_for(
            patient,
            nhs_number="1234567890",
            received_year=str(date.today().year + 1),
            reference="",
            requested_state="hidden",
        ),
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid NHS number" in body
    assert "must be a real date in the past" in body
    assert "Enter the reference of the letter" in body
    assert "Choose what the patient asked for" in body
    assert 'href="#received_on-day"' in body and 'href="#requested_state"' in body


def test_only_one_unhide_request_per_record_waits_at_a_time(po, patient):
    set_consent(patient, ConsentState.HIDDEN)
    assert po.post(NEW_REQUEST, letter_for(patient)).status_code == 302
    second = po.post(NEW_REQUEST, letter_for(patient, reference="DM-2"))
    assert second.status_code == 400 and "already an unhide request" in second.content.decode()
    assert ConsentRequest.objects.count() == 1


# --- deletion requests ----------------------------------------------------------------


def test_granting_a_deletion_request_deletes_the_record(po, officer, patient):
    set_consent(patient, ConsentState.CORE_ONLY, ConsentState.DELETION_REQUESTED)
    listed = po.get(DELETIONS).content.decode()
    assert f"{DELETIONS}{patient.id}/" in listed and patient.nhs_number not in listed
    page = po.get(f"{DELETIONS}{patient.id}/").content.decode()
    assert format_spaced(patient.nhs_number) in page
    assert "Core information only (the patient&#39;s choice)" in page  # what refusal restores

    response = po.post(f"{DELETIONS}{patient.id}/", {"decision": "grant", "note": NOTE})
    assert response.status_code == 302
    assert consent_state_for(patient_id=patient.id) == ConsentState.DELETED
    request = ConsentRequest.objects.get()
    assert (request.kind, request.status, request.decided_by) == (
        "deletion",
        "granted",
        label(officer),
    )
    latest = ConsentRecord.objects.filter(patient_id=patient.id).order_by("-version").first()
    assert latest.note == f"deletion request {request.pk}" and latest.source == "privacy-officer"
    assert request.consent_version == latest.version
    assert f"{DELETIONS}{patient.id}/" not in po.get(DELETIONS).content.decode()
    # the decision stays readable; deciding again is refused
    assert "Granted" in po.get(f"{DELETIONS}{patient.id}/").content.decode()
    again = po.post(f"{DELETIONS}{patient.id}/", {"decision": "refuse", "note": "undo"})
    assert again.status_code == 400 and "no longer waiting" in again.content.decode()
    assert consent_state_for(patient_id=patient.id) == ConsentState.DELETED
    assert NOTE not in all_details()
    assert verify_database().ok


@pytest.mark.parametrize(
    ("before", "restored"),
    [
        ((), ConsentState.IMPLIED),
        ((ConsentState.CORE_ONLY,), ConsentState.CORE_ONLY),
        ((ConsentState.CORE_AND_ADDITIONAL,), ConsentState.CORE_AND_ADDITIONAL),
        ((ConsentState.HIDDEN,), ConsentState.HIDDEN),
    ],
)
def test_refusing_a_deletion_request_restores_the_state_before_it(po, patient, before, restored):
    set_consent(patient, *before, ConsentState.DELETION_REQUESTED)
    response = po.post(f"{DELETIONS}{patient.id}/", {"decision": "refuse", "note": NOTE})
    assert response.status_code == 302
    assert consent_state_for(patient_id=patient.id) == restored
    assert ConsentRequest.objects.get().status == "refused"


def test_refusing_deletion_after_dissent_keeps_the_record_hidden(po, patient):
    # dissent cannot be chosen for an existing record any more; older histories have it
    ConsentRecord.objects.create(
        patient_id=patient.id,
        version=1,
        state=ConsentState.DISSENT,
        recorded_at=now(),
        recorded_by="migration",
        source="gp-practice",
    )
    set_consent(patient, ConsentState.DELETION_REQUESTED)
    po.post(f"{DELETIONS}{patient.id}/", {"decision": "refuse", "note": NOTE})
    assert consent_state_for(patient_id=patient.id) == ConsentState.HIDDEN


def test_a_record_not_waiting_for_deletion_has_no_deletion_page(po, patient):
    set_consent(patient, ConsentState.HIDDEN)
    assert po.get(f"{DELETIONS}{patient.id}/").status_code == 404
    assert po.get(f"{DELETIONS}{uuid.uuid4()}/").status_code == 404


def test_the_deletion_list_is_one_query_whatever_the_number_of_records(officer):
    actor = actor_for_user(officer)
    deletion_requests(actor=actor)  # the officer's audit chain exists from here on

    def listed() -> tuple[int, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            found = deletion_requests(actor=actor)
        sql = [q["sql"] for q in queries.captured_queries]
        return len(found.waiting), sql

    for n in range(2):
        set_consent(make_patient(f"del-{n}"), ConsentState.DELETION_REQUESTED)
    few, few_sql = listed()
    for n in range(2, 8):
        states = [ConsentState.HIDDEN] if n % 2 else []
        set_consent(make_patient(f"del-{n}"), *states, ConsentState.DELETION_REQUESTED)
    set_consent(make_patient("kept"), ConsentState.HIDDEN)
    many, many_sql = listed()
    assert (few, many) == (2, 8)
    assert len(many_sql) == len(few_sql)
    assert sum("consent_consentrecord" in q for q in many_sql) == 1


# --- the identity issue's misuse reports ------------------------------------------------


def test_a_reported_misuse_is_a_case_with_the_patients_note(po, patient):
    from healthspace.accounts.sessions.compromise import ACTION

    with transaction.atomic():
        event = audit_record(
            actor=Actor("patient", "user:0", patient_id=patient.id),
            action=ACTION,
            patient_id=patient.id,
            outcome="case-opened",
            reason="reported-by-patient",
            detail={"note_chars": 12},
        )
        case = cases.alert_raise(
            patient_id=patient.id, kind="compromise-reported", audit_event_id=event.pk
        )
    PrivacyCase.objects.filter(pk=case.pk).update(patient_note="My ex knows my password")
    body = po.get(f"/staff/privacy/case/{case.pk}/").content.decode()
    assert "My ex knows my password" in body
    assert "Reported that the patient's account may have been misused" in unescape(body)
    assert verify_database().ok
