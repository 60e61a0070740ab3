"""Notices: fixed words, typed values only, queued in the action's transaction and sent
by the worker when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from healthspace.notify import notices
from healthspace.notify.gateways import EmailGateway, GovukNotifyGateway, gateway
from healthspace.notify.notices import TEXTS, Notice, NoticeValueError
from healthspace.notify.services import notice_send
from healthspace.notify.testing import run_due_tasks

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def user():
    return get_user_model().objects.create(username="pat@example.test", email="pat@example.test")


def test_every_notice_has_words_and_a_link_and_no_placeholder_but_its_typed_values():
    for notice, text in TEXTS.items():
        values = {name: T0.isoformat() for name in text.values}
        values.update({name: T0.date().isoformat() for name in text.dates})
        subject, body = notices.render(notice, base_url="https://hs.example", values=values)
        assert subject and "https://hs.example/" in body
        assert "{" not in body and "}" not in body


@pytest.mark.parametrize(
    "values",
    [
        {"text": "my rash is worse"},  # free text: never
        {"when": "Tuesday at the diabetes clinic"},  # a string, however shaped
        {"when": datetime(2026, 12, 1, 9, 0)},  # naive: ambiguous
        {"when": T0, "where": T0},  # a value the notice does not take
        {},  # a reminder needs its time
    ],
)
def test_a_notice_takes_only_its_typed_values(user, values):
    with pytest.raises(NoticeValueError), transaction.atomic():
        notice_send(user_id=user.pk, notice=Notice.APPOINTMENT_REMINDER, **values)
    assert not DBTaskResult.objects.exists()


def test_a_message_notice_takes_no_values_at_all(user):
    with pytest.raises(NoticeValueError), transaction.atomic():
        notice_send(user_id=user.pk, notice=Notice.NEW_MESSAGE, subject="Test results")


def test_a_notice_queued_in_a_transaction_that_rolls_back_is_never_sent(user):
    def failing_action():
        with transaction.atomic():
            notice_send(user_id=user.pk, notice=Notice.NEW_MESSAGE)
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        failing_action()
    run_due_tasks()
    assert mail.outbox == []


def test_the_worker_sends_a_notice_when_it_falls_due_and_not_before(user):
    with time_machine.travel(T0, tick=False):
        with transaction.atomic():
            notice_send(
                user_id=user.pk,
                notice=Notice.APPOINTMENT_REMINDER,
                at=T0 + timedelta(hours=1),
                when=T0 + timedelta(days=1),
            )
        run_due_tasks()
        assert mail.outbox == []
    with time_machine.travel(T0 + timedelta(minutes=59, seconds=59), tick=False):
        run_due_tasks()
        assert mail.outbox == []
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        run_due_tasks()
    (message,) = mail.outbox
    assert message.to == ["pat@example.test"]
    assert "Wednesday 2 December 2026 at 9:00am" in message.body  # Europe/London, GMT
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        run_due_tasks()
    assert len(mail.outbox) == 1  # sent once


def test_a_failed_send_is_tried_again_later_then_given_up(user):
    with time_machine.travel(T0, tick=False):
        with transaction.atomic():
            notice_send(user_id=user.pk, notice=Notice.NEW_MESSAGE)
        with mock.patch.object(EmailGateway, "send", side_effect=OSError("smtp down")):
            run_due_tasks()
    assert mail.outbox == []
    retry = DBTaskResult.objects.filter(status="READY").get()
    assert retry.run_after == T0 + timedelta(minutes=1)
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        run_due_tasks()
    assert len(mail.outbox) == 1


def test_a_deactivated_user_gets_nothing(user):
    user.is_active = False
    user.save()
    with transaction.atomic():
        notice_send(user_id=user.pk, notice=Notice.NEW_MESSAGE)
    run_due_tasks()
    assert mail.outbox == []


def test_govuk_notify_gets_the_template_id_the_link_and_typed_values_only(settings, user):
    settings.HEALTHSPACE_NOTIFY_GATEWAY = "govuk-notify"
    settings.GOVUK_NOTIFY_API_KEY = "test-" + "a" * 36 + "-" + "b" * 36
    settings.HEALTHSPACE_NOTIFY_TEMPLATES = {"appointment-reminder": "tmpl-1"}
    settings.HEALTHSPACE_BASE_URL = "https://hs.example"
    sender = gateway()
    assert isinstance(sender, GovukNotifyGateway)
    with mock.patch.object(sender.client, "send_email_notification") as send:
        sender.send(
            to="pat@example.test",
            notice=Notice.APPOINTMENT_REMINDER,
            values={"when": T0.isoformat()},
        )
    send.assert_called_once_with(
        email_address="pat@example.test",
        template_id="tmpl-1",
        personalisation={
            "when": "Tuesday 1 December 2026 at 9:00am",
            "link": "https://hs.example/organiser/diary/",
        },
    )
    with pytest.raises(RuntimeError, match=r"no GOV\.UK Notify template"):
        sender.send(to="pat@example.test", notice=Notice.NEW_MESSAGE, values={})
