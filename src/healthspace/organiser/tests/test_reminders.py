"""Appointment reminders: queued with the save, sent by the worker when due (time injected
with time-machine), once, never for a deleted or moved appointment, and saying only the
date and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django_tasks_db.models import DBTaskResult

from healthspace.audit.models import AuditEvent
from healthspace.core.errors import InvalidInput
from healthspace.notify.testing import run_due_tasks
from healthspace.organiser import services
from healthspace.organiser.models import Appointment

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)  # a Monday, GMT
STARTS = T0 + timedelta(days=3, hours=5, minutes=30)  # Thursday 14 January, 2:30pm
DAY_BEFORE = STARTS - timedelta(days=1)


def add(person, *, starts_at=STARTS, reminder="1d", reminder_at=DAY_BEFORE):
    return services.appointment_add(
        actor=person.actor,
        owner_id=person.owner_id,
        starts_at=starts_at,
        what="Diabetes clinic",
        where="Riverside Health Centre",
        notes="bring the meter",
        reminder=reminder,
        reminder_at=reminder_at,
    )


def run_at(moment: datetime) -> None:
    with time_machine.travel(moment, tick=False):
        run_due_tasks()


@pytest.fixture(params=["verified", "basic"])
def person(request):
    return request.getfixturevalue(request.param)


def test_reminders_sent_by_the_worker_at_the_right_time(person):
    with time_machine.travel(T0, tick=False):
        add(person)
    run_at(T0)
    run_at(DAY_BEFORE - timedelta(seconds=1))
    assert mail.outbox == []  # nothing before the time
    run_at(DAY_BEFORE)
    (email,) = mail.outbox  # one email at the time
    assert email.to == [person.user.email or person.user.username]
    assert "Thursday 14 January 2027 at 2:30pm" in email.body
    for secret in ("Diabetes", "Riverside", "meter"):  # never what or where
        assert secret not in email.body and secret not in email.subject
    run_at(DAY_BEFORE + timedelta(hours=1))
    run_at(STARTS + timedelta(days=1))
    assert len(mail.outbox) == 1  # none again later
    assert Appointment.objects.get().reminder_sent_at == DAY_BEFORE
    sent = AuditEvent.objects.get(action="organiser.reminder", outcome="success")
    assert sent.actor == "system:cli:reminders" and sent.reason == "operator-command:reminders"
    assert sent.patient_id == person.actor.patient_id
    assert "Diabetes" not in str(sent.detail)


def test_no_reminder_after_the_appointment_is_deleted(person):
    with time_machine.travel(T0, tick=False):
        appointment = add(person)
        services.appointment_delete(
            actor=person.actor, owner_id=person.owner_id, appointment_id=appointment
        )
    run_at(DAY_BEFORE)
    run_at(STARTS)
    assert mail.outbox == []
    (task,) = DBTaskResult.objects.filter(task_path__endswith="appointment_reminder_send")
    assert task.status == "SUCCESSFUL" and task.return_value == "appointment-gone"


def test_a_moved_appointment_is_reminded_at_its_new_time_only(person):
    later = STARTS + timedelta(days=7)
    with time_machine.travel(T0, tick=False):
        appointment = add(person)
        services.appointment_update(
            actor=person.actor,
            owner_id=person.owner_id,
            appointment_id=appointment,
            starts_at=later,
            what="Diabetes clinic",
            reminder="1d",
            reminder_at=later - timedelta(days=1),
        )
    run_at(DAY_BEFORE)
    assert mail.outbox == []  # the old time: the queued task finds it moved
    run_at(later - timedelta(days=1))
    (email,) = mail.outbox
    assert "Thursday 21 January 2027 at 2:30pm" in email.body
    run_at(later + timedelta(days=1))
    assert len(mail.outbox) == 1
    results = sorted(
        DBTaskResult.objects.filter(task_path__endswith="appointment_reminder_send").values_list(
            "return_value", flat=True
        )
    )
    assert results == ["reminder-changed", "sent"]


def test_removing_the_reminder_sends_nothing(person):
    with time_machine.travel(T0, tick=False):
        appointment = add(person)
        services.appointment_update(
            actor=person.actor,
            owner_id=person.owner_id,
            appointment_id=appointment,
            starts_at=STARTS,
            what="Diabetes clinic",
        )
    run_at(STARTS)
    assert mail.outbox == []


def test_an_edit_that_keeps_the_reminder_time_does_not_queue_a_second_one(person):
    with time_machine.travel(T0, tick=False):
        appointment = add(person)
        services.appointment_update(
            actor=person.actor,
            owner_id=person.owner_id,
            appointment_id=appointment,
            starts_at=STARTS,
            what="Diabetes clinic (room 4)",
            reminder="1d",
            reminder_at=DAY_BEFORE,
        )
    run_at(DAY_BEFORE)
    run_at(STARTS)
    assert len(mail.outbox) == 1
    assert DBTaskResult.objects.filter(task_path__endswith="appointment_reminder_send").count() == 1


def test_the_worker_does_not_remind_of_an_appointment_that_has_started(person):
    with time_machine.travel(T0, tick=False):
        add(person, reminder="at", reminder_at=STARTS - timedelta(minutes=30))
    run_at(STARTS + timedelta(hours=1))  # the worker was down until after it began
    assert mail.outbox == []


def test_the_reminder_is_queued_with_the_save_or_not_at_all(person):
    with (
        time_machine.travel(T0, tick=False),
        pytest.raises(InvalidInput, match="Enter what the appointment is for"),
    ):
        services.appointment_add(
            actor=person.actor,
            owner_id=person.owner_id,
            starts_at=STARTS,
            what="",  # refused: nothing saved, nothing queued
            reminder="1d",
            reminder_at=DAY_BEFORE,
        )
    assert not DBTaskResult.objects.exists() and not Appointment.objects.exists()


@pytest.mark.parametrize(
    ("choice", "extra", "due"),
    [
        ("2h", {}, STARTS - timedelta(hours=2)),
        ("1d", {}, DAY_BEFORE),
        ("1w", {}, None),  # a week before has already passed: refused on the form
        (
            "at",
            {"remind_day": "13", "remind_month": "1", "remind_year": "2027", "remind_time": "6pm"},
            datetime(2027, 1, 13, 18, 0, tzinfo=UTC),
        ),
    ],
)
def test_the_diary_form_sets_the_reminder_chosen(person, choice, extra, due):
    body = {
        "what": "Diabetes clinic",
        "where": "",
        "notes": "",
        "starts_day": "14",
        "starts_month": "1",
        "starts_year": "2027",
        "starts_time": "14:30",
        "reminder": choice,
        **extra,
    }
    with time_machine.travel(T0, tick=False):
        client = fresh_client(person)
        response = client.post("/organiser/diary/add/", body)
        if due is None:
            assert response.status_code == 400
            assert "The time for this reminder has already passed" in response.content.decode()
            assert not Appointment.objects.exists()
            return
        assert response.status_code == 302, response.content.decode()[:2000]
        diary = client.get("/organiser/diary/").content.decode()
    row = Appointment.objects.get()
    assert (row.starts_at, row.reminder, row.reminder_at) == (STARTS, choice, due)
    assert "Diabetes clinic" in diary and "Email on" in diary
    (task,) = DBTaskResult.objects.filter(task_path__endswith="appointment_reminder_send")
    assert task.run_after == due
    assert task.args_kwargs["args"] == [str(row.id), due.isoformat()]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"reminder": "at", "remind_day": "15", "remind_month": "1", "remind_year": "2027",
             "remind_time": "09:00"},
            "The reminder must be before the appointment",
        ),
        ({"reminder": "at"}, "Enter the date of the reminder, with a day, month and year"),
        ({"reminder": ""}, "Choose whether you want a reminder"),
        ({"starts_time": "half past two"}, "Enter a real time of the appointment"),
        ({"what": ""}, "Enter what the appointment is"),
        ({"starts_year": "2037"}, "The date of the appointment must be within 5 years"),
    ],
)  # fmt: skip
def test_the_diary_form_refuses_what_cannot_be_reminded(person, extra, message):
    body = {
        "what": "Diabetes clinic",
        "starts_day": "14",
        "starts_month": "1",
        "starts_year": "2027",
        "starts_time": "14:30",
        "reminder": "none",
        **extra,
    }
    with time_machine.travel(T0, tick=False):
        response = fresh_client(person).post("/organiser/diary/add/", body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Appointment.objects.exists() and not DBTaskResult.objects.exists()


def fresh_client(person):
    """A session started now (time-machine's now): the fixture's would have timed out."""
    from healthspace.accounts.sessions.testing import signed_in_client
    from healthspace.organiser.tests.conftest import password_only_client

    if person.actor.patient_id is not None:
        return signed_in_client(person.user)
    return password_only_client(person.user)
