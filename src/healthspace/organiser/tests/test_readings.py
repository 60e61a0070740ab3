"""Readings through the pages: add, see on the chart and in the table, change, delete;
bad input is a 400 with an NHS.UK error and changes nothing; what is stored is sealed;
every read and write is audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now
from healthspace.organiser import selectors, services
from healthspace.organiser.measures import Measure
from healthspace.organiser.models import Reading
from healthspace.vault.crypto import CannotDecrypt

pytestmark = pytest.mark.django_db

BP_URL = "/organiser/readings/blood-pressure/"


def when(moment=None) -> dict[str, str]:
    local = timezone.localtime(moment or now() - timedelta(hours=1))
    return {
        "taken_day": str(local.day),
        "taken_month": str(local.month),
        "taken_year": str(local.year),
        "taken_time": f"{local:%H:%M}",
    }


def add_bp(client, systolic="128", diastolic="82", note="", moment=None):
    return client.post(
        f"{BP_URL}add/",
        {
            "unit": "mmHg",
            "systolic": systolic,
            "diastolic": diastolic,
            "note": note,
            **when(moment),
        },
    )


@pytest.fixture(params=["verified", "basic"])
def person(request):
    return request.getfixturevalue(request.param)


def test_a_patient_adds_a_blood_pressure_reading_and_sees_it_on_the_chart_and_table(person):
    response = add_bp(person.client, note="after a walk")
    assert response.status_code == 302
    (row,) = Reading.objects.filter(owner=person.user)
    assert response["Location"] == f"{BP_URL}?saved={row.id}"
    page = person.client.get(response["Location"]).content.decode()
    assert "Your reading of <strong>128/82mmHg</strong> was saved." in page
    # the chart: one systolic and one diastolic marker, described for screen readers
    assert re.search(
        r'<desc id="chart-blood-pressure-desc">1 reading on [^<]*; latest 128/82mmHg.</desc>', page
    )
    assert page.count('class="hs-chart__point"') == 2
    assert 'data-value="128"' in page and 'data-value="82"' in page
    # the table: the reading and its note
    assert "128/82mmHg</td>" in page and "after a walk" in page
    assert "NICE guideline NG136" in page and "Your own targets may be different" in page
    overview = person.client.get("/organiser/").content.decode()
    assert "Latest: <strong>128/82mmHg</strong>" in overview


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"systolic": "400", "diastolic": "20"}, "Systolic (top number) must be between 50mmHg and 300mmHg"),
        ({"systolic": "80", "diastolic": "120"}, "Systolic (top number) must be higher than diastolic"),
        ({"systolic": "one", "diastolic": "80"}, "Systolic (top number) must be a number, like 120"),
        ({"taken_day": "31", "taken_month": "2"}, "The date of the reading must be a real date"),
        ({"taken_time": "25:00"}, "Enter a real time of the reading, like 08:30 or 6:15pm"),
        ({"taken_time": ""}, "Enter the time of the reading"),
        ({"note": "x" * 501}, "The note must be 500 characters or fewer"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_with_the_error_and_changes_nothing(basic, data, message):
    body = {"unit": "mmHg", "systolic": "128", "diastolic": "82", **when(), **data}
    before = AuditEvent.objects.count()
    response = basic.client.post(f"{BP_URL}add/", body)
    assert response.status_code == 400
    page = response.content.decode()
    assert "There is a problem" in page and message in page
    assert "<title>Error: Add a blood pressure reading" in page
    assert page.count(message) == 2  # in the error summary and at the box
    assert not Reading.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_reading_in_the_future_is_refused_but_a_few_minutes_ahead_is_not(basic):
    response = add_bp(basic.client, moment=now() + timedelta(hours=1))
    assert response.status_code == 400
    assert "The date and time of the reading must be in the past" in response.content.decode()
    assert add_bp(basic.client, moment=now() + timedelta(minutes=3)).status_code == 302


def test_weight_in_stones_is_stored_in_kg_shown_as_typed_and_gives_a_bmi(basic):
    client = basic.client
    client.post(
        "/organiser/readings/height/add/",
        {"unit": "ft", "height_ft": "5", "height_in": "9", **when()},
    )
    response = client.post(
        "/organiser/readings/weight/add/",
        {"unit": "st", "weight_st": "11", "weight_st_lb": "4", **when()},
    )
    assert response.status_code == 302
    page = client.get("/organiser/readings/weight/").content.decode()
    assert "11st 4lb" in page
    assert "Body mass index (BMI)" in page and ">23.3<" in page  # 71.67kg, 175.3cm
    assert 'data-value="11.29"' in page  # charted in stones, as the latest was typed


def test_a_reading_is_changed_and_deleted(basic):
    add_bp(basic.client)
    row = Reading.objects.get()
    edit = f"/organiser/readings/{row.id}/edit/"
    form = basic.client.get(edit).content.decode()
    assert 'value="128"' in form and 'value="82"' in form
    response = basic.client.post(
        edit, {"unit": "mmHg", "systolic": "131", "diastolic": "85", "note": "", **when()}
    )
    assert response.status_code == 302
    assert "131/85mmHg" in basic.client.get(BP_URL).content.decode()
    assert basic.client.get(f"/organiser/readings/{row.id}/delete/").status_code == 200
    assert basic.client.post(f"/organiser/readings/{row.id}/delete/").status_code == 302
    assert not Reading.objects.exists()
    changes = AuditEvent.objects.filter(
        action="organiser.change", actor=f"patient:user:{basic.user.pk}"
    )
    assert [e.detail["change"] for e in changes.order_by("id")] == ["add", "edit", "delete"]


def test_a_very_high_blood_pressure_reading_says_what_to_do(basic):
    response = add_bp(basic.client, systolic="186", diastolic="121")
    page = basic.client.get(response["Location"]).content.decode()
    assert "Your blood pressure reading is very high" in page
    assert "Call 999 or go to A&amp;E" in page


def test_unknown_measures_are_not_found(basic):
    assert basic.client.get("/organiser/readings/cholesterol/").status_code == 404
    assert basic.client.get("/organiser/readings/cholesterol/add/").status_code == 404


def test_what_the_patient_typed_is_sealed_under_the_accounts_portal_key(basic):
    add_bp(basic.client, note="dizzy after the new tablets")
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM organiser_reading")
        (payload,) = cursor.fetchone()
    raw = bytes(payload)
    assert b"dizzy" not in raw and b"128" not in raw and b"mmHg" not in raw
    # the payload is bound to its row: copied to another row of the same account, it
    # does not open
    first = Reading.objects.get()
    add_bp(basic.client, systolic="140")
    second = Reading.objects.exclude(pk=first.pk).get()
    second.payload = first.payload
    second.save()
    with pytest.raises(CannotDecrypt):
        selectors.readings_for(
            actor=basic.actor, owner_id=basic.owner_id, measure=Measure.BLOOD_PRESSURE, since=None
        )


def test_every_page_view_is_audited_in_the_accounts_trail(verified):
    verified.client.get("/organiser/")
    verified.client.get(BP_URL)
    events = AuditEvent.objects.filter(
        action="organiser.view", actor=f"patient:user:{verified.user.pk}"
    )
    assert [e.detail["what"] for e in events.order_by("id")] == ["overview", "readings"]
    # a verified account's events are in its record's trail ("who has looked" shows them)
    assert {e.patient_id for e in events} == {verified.actor.patient_id}
    assert all(e.reason == "own-organiser" for e in events)


def test_the_list_pages_take_a_fixed_number_of_queries(basic, django_assert_max_num_queries):
    for i in range(3):
        add_bp(basic.client, systolic=str(120 + i), moment=now() - timedelta(days=40 + i))
    for i in range(60):
        services.reading_add(
            actor=basic.actor,
            owner_id=basic.owner_id,
            measure=Measure.WEIGHT if i % 2 else Measure.HEART_RATE,
            taken_at=now() - timedelta(days=i),
            values={"kg": 70 + i / 10} if i % 2 else {"bpm": 60 + i},
            entered={"unit": "kg"} if i % 2 else {"unit": "bpm"},
        )
    # the same for 3 readings or 3,000: the session and login (6, and 3 to save the
    # session), the portal key (2), the readings (1 or 2, and the latest height), the
    # audit event (3)
    for path, most in (
        ("/organiser/", 17),
        (BP_URL, 18),
        ("/organiser/readings/weight/?period=all", 19),
    ):
        with django_assert_max_num_queries(most):
            assert basic.client.get(path).status_code == 200
