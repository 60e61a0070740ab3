"""A patient sees who looked at their record, and can say "I don't recognise this"."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from healthspace.access.actors import Actor
from healthspace.accounts.factors.guards import SESSION_FACTOR
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient, reason_in_words
from healthspace.cases.models import PrivacyCase
from healthspace.cases.services import case_open_not_recognised
from healthspace.cases.tests.conftest import record_event
from healthspace.core.errors import NotFound

pytestmark = pytest.mark.django_db

LIST = "/record/access/who-has-looked/"
NOT_RECOGNISED = "/record/access/not-recognised/"


def test_urls_are_mounted_where_the_main_urlconf_will_put_them():
    assert reverse("cases:who-has-looked") == LIST
    assert reverse("cases:not-recognised") == NOT_RECOGNISED


def test_list_shows_views_newest_first_with_who_organisation_and_why(
    patients, make_staff, signed_in
):
    (user, patient_id), _ = patients
    clinician = make_staff("Asha", "Patel", "Leeds General Infirmary", ("clinician",))
    clerk = make_staff("Ben", "Okafor", "Hull Royal Infirmary", ("registration-clerk",))
    record_event(clinician, patient_id, reason="emergency-access")
    record_event(clerk, patient_id, action="demographics.view", reason="care-team")
    record_event(
        Actor("patient", f"user:{user.pk}", patient_id=patient_id), patient_id, reason="own-record"
    )

    html = signed_in(user).get(LIST).content.decode()

    assert "<caption" in html and 'scope="col"' in html
    rows = re.findall(r'<tr class="nhsuk-table__row" role="row">(.*?)</tr>', html, re.S)[1:]
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)) for r in rows]
    assert "You" in texts[0] and "Your own login" in texts[0]
    assert "Ben Okafor" in texts[1] and "Hull Royal Infirmary" in texts[1]
    assert "Registration clerk" in texts[1] and "name, address and contact details" in texts[1]
    assert "Asha Patel" in texts[2] and "Leeds General Infirmary" in texts[2]
    assert "Clinician" in texts[2] and "Emergency access" in texts[2]
    assert "Viewed your Summary Care Record" in texts[2]
    # the import that created the record, oldest
    assert "HealthSpace (data from your GP practice)" in texts[-1]
    # one button per staff row, each telling a screen reader which row it is about
    assert html.count('t recognise this<span class="nhsuk-u-visually-hidden">') == 2
    assert "by Asha Patel</span>" in html


def test_another_patients_events_never_appear(patients, make_staff, signed_in):
    (user, patient_id), (_, other_id) = patients
    snooper = make_staff("Carl", "Other", "Elsewhere Trust")
    record_event(snooper, other_id)

    html = signed_in(user).get(LIST).content.decode()
    entries = access_history_for_patient(patient_id=patient_id)

    assert "Carl Other" not in html and "Elsewhere Trust" not in html
    other_ids = set(AuditEvent.objects.filter(patient_id=other_id).values_list("id", flat=True))
    assert not other_ids & {e.id for e in entries}
    # the paging cursor does not reach into another patient's trail either
    html = signed_in(user).get(f"{LIST}?before={max(other_ids)}").content.decode()
    assert "Carl Other" not in html


def test_reading_the_list_is_itself_audited(patients, signed_in):
    (user, patient_id), _ = patients
    signed_in(user).get(LIST)
    event = AuditEvent.objects.filter(patient_id=patient_id, action="audit.view").get()
    assert (event.actor, event.outcome, event.reason) == (
        f"patient:user:{user.pk}",
        "success",
        "own-record",
    )


def test_posting_another_patients_event_is_not_found_and_opens_no_case(
    patients, make_staff, signed_in
):
    (user, _), (_, other_id) = patients
    theirs = record_event(make_staff(), other_id)
    client = signed_in(user)
    for data in (
        {"event_id": theirs.pk},
        {"event_id": theirs.pk, "confirm": "1", "note": "x"},
        {"event_id": "not-a-number", "confirm": "1"},
        {"event_id": 10**12, "confirm": "1"},
    ):
        response = client.post(NOT_RECOGNISED, data)
        assert response.status_code == 404, data
    assert not PrivacyCase.objects.exists()
    assert not AuditEvent.objects.filter(action="case.open").exists()


def test_not_recognised_asks_what_looks_wrong_then_tells_the_privacy_officer(
    patients, make_staff, signed_in
):
    (user, patient_id), _ = patients
    event = record_event(make_staff("Dana", "Smith"), patient_id)
    client = signed_in(user)

    ask = client.post(NOT_RECOGNISED, {"event_id": event.pk})
    assert ask.status_code == 200
    assert "What looks wrong?" in ask.content.decode() and "Dana Smith" in ask.content.decode()
    assert not PrivacyCase.objects.exists()  # the first step only asks

    done = client.post(
        NOT_RECOGNISED, {"event_id": event.pk, "confirm": "1", "note": "Never been there"}
    )
    assert done.status_code == 302
    page = client.get(done["Location"]).content.decode()
    assert "We have told the privacy officer" in page and "nhsuk-panel" in page

    case = PrivacyCase.objects.get()
    assert (case.patient_id, case.audit_event_id, case.kind, case.status) == (
        patient_id,
        event.pk,
        "not-recognised",
        "open",
    )
    assert case.patient_note == "Never been there"
    opened = AuditEvent.objects.get(action="case.open")
    assert opened.patient_id == patient_id and opened.detail["case_id"] == case.pk
    assert "Never been there" not in str(opened.detail)  # the note stays out of the trail
    assert "You told us about this" in client.get(LIST).content.decode()


def test_a_note_over_the_limit_is_an_error_on_the_page(patients, make_staff, signed_in):
    (user, patient_id), _ = patients
    event = record_event(make_staff(), patient_id)
    response = signed_in(user).post(
        NOT_RECOGNISED, {"event_id": event.pk, "confirm": "1", "note": "a" * 2001}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "There is a problem" in html and 'href="#note"' in html
    assert not PrivacyCase.objects.exists()


def test_one_open_case_per_event(patients, make_staff):
    (user, patient_id), _ = patients
    event = record_event(make_staff(), patient_id)
    actor = Actor("patient", f"user:{user.pk}", patient_id=patient_id)
    first = case_open_not_recognised(
        actor=actor, patient_id=patient_id, audit_event_id=event.pk, note="a"
    )
    again = case_open_not_recognised(
        actor=actor, patient_id=patient_id, audit_event_id=event.pk, note="b"
    )
    assert first.pk == again.pk and PrivacyCase.objects.count() == 1
    assert AuditEvent.objects.filter(action="case.open").count() == 1


def test_service_refuses_an_event_of_another_patient(patients, make_staff):
    (user, patient_id), (_, other_id) = patients
    theirs = record_event(make_staff(), other_id)
    with pytest.raises(NotFound):
        case_open_not_recognised(
            actor=Actor("patient", f"user:{user.pk}", patient_id=patient_id),
            patient_id=patient_id,
            audit_event_id=theirs.pk,
            note="",
        )
    assert not PrivacyCase.objects.exists()


def test_patient_without_a_linked_record_gets_the_no_record_page(signed_in, db):
    user = get_user_model().objects.create(username="basic@example.com")
    response = signed_in(user, second_factor="").get(LIST)
    assert response.status_code == 404
    assert "There is no record here that you can see" in response.content.decode()


def test_verified_patient_without_a_second_factor_this_session_is_sent_to_it(patients, signed_in):
    (user, _), _ = patients
    client = signed_in(user)
    session = client.session
    del session[SESSION_FACTOR]
    session.save()
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two-factor-verify"))
    assert not AuditEvent.objects.filter(action="audit.view").exists()


def test_list_needs_a_login(client):
    response = client.get(LIST)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_older_link_pages_through_the_trail_without_gaps_or_repeats(patients, make_staff):
    (_, patient_id), _ = patients
    staff = make_staff()
    for _ in range(7):
        record_event(staff, patient_id)
    everything = [e.id for e in access_history_for_patient(patient_id=patient_id, limit=100)]
    seen, before = [], None
    while True:
        page = access_history_for_patient(patient_id=patient_id, limit=3, before=before)
        if not page:
            break
        seen += [e.id for e in page]
        before = page[-1].id
    assert seen == everything


def test_query_count_does_not_grow_with_the_number_of_events(
    patients, make_staff, signed_in, django_assert_max_num_queries
):
    (user, patient_id), (other_user, other_id) = patients

    def fill(pid, n):
        people = [make_staff(f"Name{i}", "Staff", f"Org {i}") for i in range(n)]
        for person in people:
            record_event(person, pid, detail={"sections": ["allergies"]})

    fill(patient_id, 5)
    fill(other_id, 50)
    few = signed_in(user)
    with CaptureQueriesContext(connection) as five:
        assert few.get(LIST).status_code == 200
    many = signed_in(other_user)
    with django_assert_max_num_queries(len(five.captured_queries)):
        html = many.get(LIST).content.decode()
    assert len(re.findall(r"by Name\d+ Staff</span>", html)) == 50


@pytest.mark.parametrize(
    ("reason", "outcome", "words"),
    [
        ("own-record", "success", "Your own login"),
        ("permission-given", "success", "You gave permission"),
        ("emergency-access", "success", "Emergency access"),
        (
            "permission-given+self-claimed-relationship",
            "success",
            "You gave permission; Said they are caring for you",
        ),
        ("operator-command:import", "success", "A routine task on the HealthSpace service"),
        ("no-relationship", "denied", "They did not have permission"),
        ("something-new", "success", "No reason recorded"),
    ],
)
def test_reasons_in_plain_words(reason, outcome, words):
    assert reason_in_words(reason, outcome) == words


def test_denied_views_say_refused(patients, make_staff):
    (_, patient_id), _ = patients
    record_event(make_staff(), patient_id, outcome="denied", reason="no-relationship")
    newest = access_history_for_patient(patient_id=patient_id, limit=1)[0]
    assert newest.what == "Tried to view your record and was refused"


def test_only_the_patient_may_read_their_access_log_or_open_a_case_and_refusals_are_audited(db):
    import uuid

    from healthspace.access.actors import Actor
    from healthspace.audit.models import AuditEvent
    from healthspace.cases.selectors import own_access_history
    from healthspace.cases.services import case_open_not_recognised
    from healthspace.core.errors import NotFound

    patient_id = uuid.uuid4()
    stranger = Actor("patient", "user:99", patient_id=uuid.uuid4())
    with pytest.raises(NotFound):
        own_access_history(actor=stranger, patient_id=patient_id)
    with pytest.raises(NotFound):
        case_open_not_recognised(actor=stranger, patient_id=patient_id, audit_event_id=1, note="")
    refused = AuditEvent.objects.filter(patient_id=patient_id, outcome="denied")
    assert sorted(refused.values_list("action", flat=True)) == ["audit.view", "case.open"]


def test_a_patient_can_choose_emails_about_staff_views(patients, signed_in):
    from healthspace.accounts.models import Account

    user, _ = patients[0]
    client = signed_in(user)
    assert 'id="notify"' in client.get("/record/access/who-has-looked/").content.decode()
    response = client.post("/record/access/notify/", {"notify": "on"}, follow=True)
    assert "We will email you when staff look at your record." in response.content.decode()
    assert Account.objects.get(user=user).notify_staff_views
    client.post("/record/access/notify/", {})
    assert not Account.objects.get(user=user).notify_staff_views


def test_an_alert_a_rule_raised_is_not_shown_as_reported_by_the_patient(
    patients, make_staff, signed_in
):
    from django.db import transaction

    from healthspace.cases.services import alert_raise

    (user, patient_id), _ = patients
    event = record_event(make_staff("Eve", "Jones"), patient_id, reason="emergency-access")
    with transaction.atomic():
        alert_raise(patient_id=patient_id, kind="emergency-access", audit_event_id=event.pk)

    page = signed_in(user).get(LIST).content.decode()
    assert "Our privacy officer is already checking this" in page
    assert "You told us about this" not in page  # the patient said nothing
    assert f'name="event_id" value="{event.pk}"' not in page  # one open case per event


def test_the_page_reads_its_user_once_and_the_staff_with_their_groups_in_one_query(
    patients, make_staff, signed_in
):
    """docs/performance.md: the user's facts (link, factors, preference) are one query, the
    people in the trail with their groups another; the budget is the page's whole count."""
    (user, patient_id), _ = patients
    for i in range(3):
        record_event(make_staff(f"Name{i}", "Staff", f"Org {i}"), patient_id)
    client = signed_in(user)
    client.get(LIST)  # the first request may save the session
    with CaptureQueriesContext(connection) as page:
        assert client.get(LIST).status_code == 200
    sql = [q["sql"] for q in page.captured_queries]
    assert not [s for s in sql if "accounts_passkey" in s and "EXISTS" not in s.upper()]
    assert not [s for s in sql if "_prefetch_related_val" in s]  # groups: no query of their own
    assert sum("accounts_account" in s for s in sql) <= 2  # the facts and the trail's staff
    # session, user, user session, facts; the trail, its staff, open cases; the audit event
    # (head lock, insert and head advance: one statement on PostgreSQL, two on SQLite) in
    # its transaction (BEGIN/COMMIT, or a savepoint inside the test's transaction)
    budget = 11 if connection.vendor == "postgresql" else 12
    assert len(sql) <= budget, "\n".join(sql)
