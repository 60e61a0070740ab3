"""The CSV of readings, and one account never reaching another's organiser: every route
with an id, tried with another account's reading, appointment, note and medicine ids,
by GET and POST, is "not found" and changes nothing."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import URLPattern, get_resolver

from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.models import AuditEvent
from healthspace.core.clock import now
from healthspace.organiser import services
from healthspace.organiser.measures import Measure
from healthspace.organiser.models import Appointment, Medicine, Note, Reading
from healthspace.organiser.tests.conftest import make_basic
from healthspace.organiser.views import CSV_COLUMNS
from healthspace.staff.testing import make_staff_user

pytestmark = pytest.mark.django_db

TAKEN = now().replace(microsecond=0) - timedelta(days=1)


def add(person, measure, values, entered, note=""):
    return services.reading_add(
        actor=person.actor,
        owner_id=person.owner_id,
        measure=measure,
        taken_at=TAKEN,
        values=values,
        entered=entered,
        note=note,
    )


def rows_of(response) -> list[dict[str, str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


@pytest.mark.parametrize(
    "note",
    ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\r=1", 'café 😊, "quoted"'],
)
def test_the_csv_neutralises_formulas_and_keeps_everything_else(basic, note):
    add(basic, Measure.HEART_RATE, {"bpm": 72}, {"unit": "bpm"}, note)
    response = basic.client.get("/organiser/readings/export.csv")
    (row,) = rows_of(response)
    if note[0] in "=+-@\t\r":
        assert row["note"] == "'" + note
    else:
        assert row["note"] == note


def test_the_csv_has_its_documented_columns_iso_times_and_no_cache(basic, verified):
    add(basic, Measure.BLOOD_PRESSURE, {"systolic": 128, "diastolic": 82}, {"unit": "mmHg"})
    add(basic, Measure.HEIGHT, {"cm": 175.0}, {"unit": "cm", "fields": {"height_cm": "175"}})
    add(
        basic,
        Measure.WEIGHT,
        {"kg": 71.67},
        {"unit": "st", "fields": {"weight_st": "11", "weight_st_lb": "4"}},
    )
    response = basic.client.get("/organiser/readings/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="healthspace-readings-\d{4}-\d{2}-\d{2}\.csv"',
        response["Content-Disposition"],
    )
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode("utf-8")[1:]
    assert body.splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = {r["measure"]: r for r in rows_of(response)}
    bp = rows["blood-pressure"]
    assert (bp["systolic_mmhg"], bp["diastolic_mmhg"], bp["value"], bp["unit"]) == (
        "128",
        "82",
        "",
        "mm[Hg]",
    )
    assert bp["taken_at"] == TAKEN.astimezone().isoformat(timespec="seconds")
    weight = rows["weight"]
    assert (weight["value"], weight["unit"], weight["as_entered"], weight["bmi"]) == (
        "71.67",
        "kg",
        "11st 4lb",
        "23.4",
    )
    assert weight["shared_with_care_team"] == "no"
    # one measure only
    only = rows_of(basic.client.get("/organiser/readings/export.csv?measure=height"))
    assert [r["measure"] for r in only] == ["height"]
    # audited as an export, with counts and no values
    event = AuditEvent.objects.filter(action="organiser.export").latest("id")
    assert event.detail["count"] == 1 and event.detail["measure"] == "height"
    # nobody else's readings: the other account's file is empty
    assert rows_of(verified.client.get("/organiser/readings/export.csv")) == []


# --- another account's ids, on every route --------------------------------------------


def organiser_routes() -> list[tuple[str, str]]:
    """(route, the kind of id it takes) for every organiser URL with an id in it."""
    (resolver,) = [
        p for p in get_resolver().url_patterns if getattr(p, "app_name", "") == "organiser"
    ]
    out = []
    for pattern in resolver.url_patterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        # ids of rows; a measure's slug names no row (those pages show the caller's own)
        kind = re.search(r"<uuid:(\w+)>", route)
        if kind:
            out.append(("/organiser/" + route, kind[1]))
    return out


@pytest.fixture
def owners_rows(verified):
    reading = add(
        verified,
        Measure.BLOOD_PRESSURE,
        {"systolic": 128, "diastolic": 82},
        {"unit": "mmHg"},
        "OWNER-SECRET",
    )
    appointment = services.appointment_add(
        actor=verified.actor,
        owner_id=verified.owner_id,
        starts_at=now() + timedelta(days=5),
        what="OWNER-SECRET clinic",
        reminder="1d",
        reminder_at=now() + timedelta(days=4),
    )
    note = services.note_add(
        actor=verified.actor, owner_id=verified.owner_id, title="OWNER-SECRET", text="private"
    )
    medicine = services.medicine_add(
        actor=verified.actor, owner_id=verified.owner_id, name="OWNER-SECRET 5mg"
    )
    return {
        "reading_id": reading,
        "appointment_id": appointment,
        "note_id": note,
        "medicine_id": medicine,
    }


# Valid-looking forms for every POST, so that only the owner check can stop them.
POST_BODY = {
    "unit": "mmHg",
    "systolic": "150",
    "diastolic": "90",
    "taken_day": "1",
    "taken_month": "1",
    "taken_year": "2026",
    "taken_time": "09:00",
    "what": "changed",
    "starts_day": "1",
    "starts_month": "1",
    "starts_year": "2030",
    "starts_time": "09:00",
    "reminder": "none",
    "title": "changed",
    "text": "changed",
    "name": "changed",
}


def snapshot():
    return [
        sorted((str(r.pk), bytes(r.payload), str(r.updated_at)) for r in model.objects.all())
        for model in (Reading, Appointment, Note, Medicine)
    ]


@pytest.mark.parametrize("who", ["another-patient", "basic-account", "clinician"])
def test_another_accounts_ids_are_not_found_on_every_route(owners_rows, who):
    routes = organiser_routes()
    assert {kind for _, kind in routes} == set(owners_rows)  # every kind of row is tried
    if who == "clinician":
        client = signed_in_client(make_staff_user("clinician"), second_factor="passkey")
    else:
        client = make_basic(who).client
    before = snapshot()
    tried = 0
    for route, kind in routes:
        path = re.sub(r"<uuid:\w+>", str(owners_rows[kind]), route)
        for method in ("get", "post"):
            response = getattr(client, method)(path, POST_BODY if method == "post" else None)
            body = response.content.decode()
            assert response.status_code == 404, (method, path, response.status_code)
            assert "OWNER-SECRET" not in body and "128/82" not in body
            tried += 1
    assert tried == 2 * len(routes) >= 16
    assert snapshot() == before


def test_the_owner_reaches_every_route_with_their_own_ids(verified, owners_rows):
    for route, kind in organiser_routes():
        path = re.sub(r"<uuid:\w+>", str(owners_rows[kind]), route)
        assert verified.client.get(path).status_code == 200, path


def test_staff_get_nothing_and_their_attempt_is_audited(owners_rows):
    clinician = make_staff_user("clinician")
    client = signed_in_client(clinician, second_factor="passkey")
    for path in ("/organiser/", "/organiser/readings/blood-pressure/", "/organiser/diary/"):
        response = client.get(path)
        assert response.status_code == 404
        assert "OWNER-SECRET" not in response.content.decode()
    denied = AuditEvent.objects.filter(actor=f"staff:user:{clinician.pk}", outcome="denied")
    assert denied.count() == 3
    assert {e.reason for e in denied} == {"not-permitted-for-staff"}
