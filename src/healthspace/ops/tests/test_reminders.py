"""Closure reminder emails: every user once, in batches, with the date and the export
link and nothing else; a crash half way and a rerun still email each account once."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from healthspace.accounts.models import Account
from healthspace.core.clock import now
from healthspace.notify.testing import run_due_tasks
from healthspace.ops import lifecycle, reminders
from healthspace.ops.models import ClosureCampaign, ClosureReminder

pytestmark = pytest.mark.django_db

LATER = now().date() + dt.timedelta(days=45)


@pytest.fixture
def users(settings):
    settings.HEALTHSPACE_CLOSURE_REMINDER_BATCH = 2  # several batches for 5 accounts
    made = []
    for n in range(5):
        user = get_user_model().objects.create(
            username=f"p{n}@example.test", email=f"p{n}@example.test"
        )
        Account.objects.create(user=user, kind=Account.Kind.PATIENT, email_confirmed_at=now())
        made.append(user)
    # never emailed: an address nobody confirmed, and a login that was switched off
    unconfirmed = get_user_model().objects.create(username="u@example.test", email="u@example.test")
    Account.objects.create(user=unconfirmed, kind=Account.Kind.PATIENT)
    get_user_model().objects.create(
        username="off@example.test", email="off@example.test", is_active=False
    )
    return made


def _sent_to(mailoutbox) -> Counter:
    return Counter(address for message in mailoutbox for address in message.to)


def test_announcing_emails_every_user_once_with_the_date_and_the_export_link(users, mailoutbox):
    lifecycle.closure_announce(closure_date=LATER)
    run_due_tasks()
    assert _sent_to(mailoutbox) == Counter({u.email: 1 for u in users})
    message = mailoutbox[0]
    assert message.subject == "HealthSpace is closing"
    assert lifecycle.date_in_words(LATER) in message.body
    assert lifecycle.EXPORT_PATH in message.body
    campaign = ClosureCampaign.objects.get()
    assert campaign.finished_at is not None
    assert ClosureReminder.objects.filter(campaign=campaign).count() == len(users)
    # the worker ran it in batches of 2: 5 accounts -> 3 batch tasks
    from django_tasks_db.models import DBTaskResult

    batches = DBTaskResult.objects.filter(task_path="healthspace.ops.tasks.closure_reminders_batch")
    assert batches.count() == 3


def test_the_notice_path_is_the_export_page():
    from django.urls import reverse

    from healthspace.notify.notices import TEXTS, Notice

    assert TEXTS[Notice.SERVICE_CLOSING].path == lifecycle.EXPORT_PATH
    assert reverse(lifecycle.EXPORT_URL_NAME) == lifecycle.EXPORT_PATH


def test_a_crash_mid_batch_and_a_rerun_email_each_account_exactly_once(
    users, mailoutbox, monkeypatch, settings
):
    settings.HEALTHSPACE_CLOSURE_REMINDER_BATCH = 10
    lifecycle.closure_announce(closure_date=LATER)
    campaign = ClosureCampaign.objects.get()
    real, calls = reminders.notice_send, []

    def dies_on_the_third(**kwargs):
        calls.append(kwargs["user_id"])
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(reminders, "notice_send", dies_on_the_third)
    with pytest.raises(RuntimeError):
        reminders.batch_send(campaign_id=campaign.id)
    assert ClosureReminder.objects.filter(campaign=campaign).count() == 2
    monkeypatch.setattr(reminders, "notice_send", real)

    # the rerun: `healthspace service remind`, and the worker (which also runs the first
    # batch task, queued by the announcement, which finds those two done)
    assert "3 account(s) still to email" in reminders.resume()
    run_due_tasks()
    run_due_tasks()
    assert _sent_to(mailoutbox) == Counter({u.email: 1 for u in users})
    assert ClosureReminder.objects.filter(campaign=campaign).count() == len(users)


def test_two_batches_at_once_never_email_anyone_twice(users, mailoutbox):
    lifecycle.closure_announce(closure_date=LATER)
    campaign = ClosureCampaign.objects.get()
    # a second worker running the same campaign (a rerun while the first is still going)
    reminders.batch_send(campaign_id=campaign.id, size=3)
    reminders.resume()
    run_due_tasks()
    assert _sent_to(mailoutbox) == Counter({u.email: 1 for u in users})


def test_a_closure_called_off_or_moved_sends_nothing_for_the_old_date(users, mailoutbox):
    lifecycle.closure_announce(closure_date=LATER)
    lifecycle.reopen()
    run_due_tasks()
    assert not mailoutbox
    lifecycle.closure_announce(closure_date=LATER)
    lifecycle.closure_announce(closure_date=LATER + dt.timedelta(days=7))  # moved
    run_due_tasks()
    assert _sent_to(mailoutbox) == Counter({u.email: 1 for u in users})
    assert all(lifecycle.date_in_words(LATER + dt.timedelta(days=7)) in m.body for m in mailoutbox)


def test_a_new_round_emails_everyone_again_once(users, mailoutbox, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="announce the closure first"):
        call_command("service", "remind", "--new-round")
    lifecycle.closure_announce(closure_date=LATER)
    run_due_tasks()
    call_command("service", "remind", "--new-round")
    assert "5 account(s) to email" in capsys.readouterr().out
    run_due_tasks()
    assert _sent_to(mailoutbox) == Counter({u.email: 2 for u in users})
