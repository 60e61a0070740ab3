"""Closure reminder emails: one campaign per announcement, fanned out in batches by the
worker, with a send ledger (``ClosureReminder``, unique per campaign and account) written
in the same transaction as each queued email. A batch that crashes half way leaves the
accounts it had done in the ledger; run again (the next batch task, or `healthspace
service remind`), it goes on with the others and never emails anyone twice.

The email (notify ``SERVICE_CLOSING``) carries the closure date and the link to download
one's data, nothing else."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from healthspace.accounts.models import Account
from healthspace.core.clock import now
from healthspace.notify.notices import Notice
from healthspace.notify.services import notice_send
from healthspace.ops.models import ClosureCampaign, ClosureReminder

logger = logging.getLogger(__name__)


def campaign_start(*, closure_date: dt.date) -> ClosureCampaign:
    """Call inside the transaction that announces the closure: the campaign and its first
    batch task are written with it (django-tasks-db)."""
    from healthspace.ops.tasks import closure_reminders_batch

    campaign = ClosureCampaign.objects.create(closure_date=closure_date, created_at=now())
    closure_reminders_batch.enqueue(campaign.id)
    return campaign


def recipients() -> QuerySet:
    """Every active login with an address we know is theirs: staff, operators, and
    patients who confirmed their email (an unconfirmed address may be someone else's)."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(account__kind=Account.Kind.PATIENT, account__email_confirmed_at__isnull=True)
    )


def pending(campaign: ClosureCampaign) -> QuerySet:
    done = ClosureReminder.objects.filter(campaign=campaign).values("user_id")
    return recipients().exclude(pk__in=done).order_by("pk")


def batch_send(*, campaign_id: int, size: int | None = None) -> str:
    from healthspace.ops import lifecycle
    from healthspace.ops.tasks import closure_reminders_batch

    campaign = ClosureCampaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return "no-such-campaign"
    latest = ClosureCampaign.objects.order_by("-id").values_list("id", flat=True).first()
    if latest != campaign.id:
        return "superseded"  # announced again with another date: that campaign sends
    current = lifecycle.status(fresh=True)
    if not current.closing or current.purged or current.closure_date != campaign.closure_date:
        return "called-off"
    size = size or settings.HEALTHSPACE_CLOSURE_REMINDER_BATCH
    queued = 0
    for user_id in pending(campaign).values_list("pk", flat=True)[:size]:
        try:
            with transaction.atomic():
                task_id = notice_send(
                    user_id=user_id, notice=Notice.SERVICE_CLOSING, closing_on=campaign.closure_date
                )
                ClosureReminder.objects.create(
                    campaign=campaign, user_id=user_id, queued_at=now(), task_id=task_id
                )
        except IntegrityError:  # another worker queued it first: its email stands, not ours
            continue
        queued += 1
    with transaction.atomic():
        if pending(campaign).exists():
            closure_reminders_batch.enqueue(campaign.id)
            more = "more to come"
        else:
            ClosureCampaign.objects.filter(pk=campaign.id, finished_at__isnull=True).update(
                finished_at=now()
            )
            more = "done"
    logger.info("closure reminders: campaign %s queued %d, %s", campaign.id, queued, more)
    return f"queued {queued}, {more}"


def resume() -> str:
    """Queue the latest campaign's next batch (after a crash, or to run it at once)."""
    from healthspace.ops.tasks import closure_reminders_batch

    campaign = ClosureCampaign.objects.order_by("-id").first()
    if campaign is None:
        return "no closure has been announced"
    with transaction.atomic():
        closure_reminders_batch.enqueue(campaign.id)
    left = pending(campaign).count()
    return f"campaign {campaign.id} ({campaign.closure_date}): {left} account(s) still to email"


def new_round() -> str:
    """Email everyone again about the announced closure (a later reminder): a new
    campaign, with its own ledger, audited as the operator's."""
    from healthspace.audit.services import audit_record
    from healthspace.core.errors import InvalidInput
    from healthspace.ops import lifecycle

    with transaction.atomic():
        current = lifecycle.status(fresh=True)
        if not current.closing or current.purged or current.closure_date is None:
            raise InvalidInput(
                "announce the closure first (`healthspace service announce-closure DATE`)"
            )
        campaign = campaign_start(closure_date=current.closure_date)
        audit_record(
            actor=lifecycle.OPERATOR,
            action="service.reminders",
            patient_id=None,
            outcome="success",
            reason="operator-command:remind",
            detail={"campaign": campaign.id, "closure_date": current.closure_date.isoformat()},
        )
    return f"campaign {campaign.id}: {pending(campaign).count()} account(s) to email"


def progress() -> dict[str, object] | None:
    campaign = ClosureCampaign.objects.order_by("-id").first()
    if campaign is None:
        return None
    return {
        "campaign": campaign.id,
        "closure_date": campaign.closure_date.isoformat(),
        "queued": ClosureReminder.objects.filter(campaign=campaign).count(),
        "pending": pending(campaign).count(),
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }
