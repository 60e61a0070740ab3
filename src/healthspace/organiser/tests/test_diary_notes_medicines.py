"""The diary, notes and "My medicines" pages: add, change, delete, with NHS.UK errors,
sealed at rest, and the words patients need (a reminder says only the date and time; the
medicines list is theirs and not a prescription)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from healthspace.core.clock import now
from healthspace.organiser.forms import parse_time
from healthspace.organiser.models import Appointment, Medicine, Note

pytestmark = pytest.mark.django_db


def raw_payloads(table: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT payload FROM {table}")  # noqa: S608 (a fixed table name)
        return b"".join(bytes(p) for (p,) in cursor.fetchall())


def test_an_appointment_is_added_changed_and_deleted(basic):
    soon = timezone.localtime(now() + timedelta(days=10))
    body = {
        "what": "Asthma review",
        "where": "Riverside Health Centre",
        "notes": "bring inhaler",
        "starts_day": str(soon.day),
        "starts_month": str(soon.month),
        "starts_year": str(soon.year),
        "starts_time": "2:30pm",
        "reminder": "1d",
    }
    assert basic.client.post("/organiser/diary/add/", body).status_code == 302
    page = basic.client.get("/organiser/diary/").content.decode()
    assert "Asthma review" in page and "Riverside Health Centre" in page and "Email on" in page
    assert "The email only says the date and time" in page
    assert b"Asthma" not in raw_payloads("organiser_appointment")
    row = Appointment.objects.get()
    assert timezone.localtime(row.starts_at).hour == 14
    edit = basic.client.get(f"/organiser/diary/{row.id}/edit/").content.decode()
    assert 'value="Asthma review"' in edit and 'value="14:30"' in edit
    body.update(what="Asthma review (phone)", reminder="none")
    assert basic.client.post(f"/organiser/diary/{row.id}/edit/", body).status_code == 302
    row.refresh_from_db()
    assert row.reminder == "none" and row.reminder_at is None
    assert "Asthma review (phone)" in basic.client.get("/organiser/diary/").content.decode()
    assert basic.client.post(f"/organiser/diary/{row.id}/delete/").status_code == 302
    assert not Appointment.objects.exists()


def test_past_appointments_are_kept_apart_from_those_coming_up(basic):
    from healthspace.organiser import services

    for days, what in ((-3, "Blood test"), (4, "Dentist")):
        services.appointment_add(
            actor=basic.actor,
            owner_id=basic.owner_id,
            starts_at=now() + timedelta(days=days),
            what=what,
        )
    page = basic.client.get("/organiser/diary/").content.decode()
    assert page.index("Coming up") < page.index("Dentist") < page.index("Past appointments")
    assert page.index("Past appointments") < page.index("Blood test")


def test_notes_are_added_changed_deleted_and_sealed(basic):
    response = basic.client.post(
        "/organiser/notes/add/", {"title": "Questions", "text": "Ask about the rash"}
    )
    assert response.status_code == 302
    assert b"rash" not in raw_payloads("organiser_note")
    note = Note.objects.get()
    assert "Ask about the rash" in basic.client.get("/organiser/notes/").content.decode()
    basic.client.post(
        f"/organiser/notes/{note.id}/edit/", {"title": "Questions", "text": "Rash is better"}
    )
    assert "Rash is better" in basic.client.get("/organiser/notes/").content.decode()
    basic.client.post(f"/organiser/notes/{note.id}/delete/")
    assert not Note.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": "", "text": "x"}, "Enter a title for your note"),
        ({"title": "t", "text": ""}, "Enter your note"),
        ({"title": "t", "text": "x" * 5001}, "Your note must be 5000 characters or fewer"),
    ],
)
def test_a_note_needs_a_title_and_text(basic, body, message):
    response = basic.client.post("/organiser/notes/add/", body)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Note.objects.exists()


def test_my_medicines_says_it_is_not_a_prescription_and_points_to_the_scr(verified, basic):
    page = verified.client.get("/organiser/medicines/").content.decode()
    assert "It is not your prescription" in page
    assert 'href="/record/"' in page  # the GP record's medicines are in the SCR
    assert (
        "which you can see once your account is linked"
        in basic.client.get("/organiser/medicines/").content.decode()
    )


def test_medicines_are_listed_as_taken_or_stopped(basic):
    client = basic.client
    client.post(
        "/organiser/medicines/add/",
        {
            "name": "Ramipril 5mg",
            "how": "1 in the morning",
            "what_for": "blood pressure",
            "since_month": "3",
            "since_year": "2024",
        },
    )
    client.post(
        "/organiser/medicines/add/",
        {"name": "Amoxicillin", "since_year": "2025", "stopped_month": "2", "stopped_year": "2025"},
    )
    page = client.get("/organiser/medicines/").content.decode()
    assert (
        page.index("Medicines I take")
        < page.index("Ramipril 5mg")
        < page.index("Medicines I have stopped")
    )
    assert page.index("Medicines I have stopped") < page.index("Amoxicillin")
    assert "Since March 2024" in page and "Stopped February 2025" in page
    assert b"Ramipril" not in raw_payloads("organiser_medicine")
    ramipril = next(
        m
        for m in Medicine.objects.all()
        if "Ramipril" in client.get(f"/organiser/medicines/{m.id}/edit/").content.decode()
    )
    client.post(f"/organiser/medicines/{ramipril.id}/delete/")
    assert Medicine.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": ""}, "Enter the name of the medicine"),
        ({"name": "X", "since_month": "13", "since_year": "2024"}, "The month you started must be a number from 1 to 12"),
        ({"name": "X", "since_month": "3"}, "Enter the year you started"),
        ({"name": "X", "since_year": "24"}, "Enter the year you started with 4 numbers"),
        ({"name": "X", "since_year": "2099"}, "The date you started must be in the past"),
        ({"name": "X", "since_year": "2024", "stopped_year": "2023"}, "The date you stopped must be after you started"),
    ],
)  # fmt: skip
def test_medicine_dates_are_checked(basic, body, message):
    response = basic.client.post("/organiser/medicines/add/", body)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Medicine.objects.exists()


@pytest.mark.parametrize(
    ("typed", "hour", "minute"),
    [("08:30", 8, 30), ("8.30", 8, 30), ("18:45", 18, 45), ("6:15pm", 18, 15), ("6pm", 18, 0),
     ("12am", 0, 0), ("12:30 PM", 12, 30), ("00:00", 0, 0)],
)  # fmt: skip
def test_times_are_read_as_people_write_them(typed, hour, minute):
    value = parse_time(typed)
    assert (value.hour, value.minute) == (hour, minute)


@pytest.mark.parametrize("typed", ["24:00", "13pm", "8", "half past two", "08:60", "0am"])
def test_times_that_are_not_real_are_refused(typed):
    assert parse_time(typed) is None
