"""The patient's own downloads, built in the background: ``request`` queues one (a row
and a task, in one transaction), the worker's ``build`` gathers and renders it (each part
decided and audited as the export of that patient's data) and seals the file under the
account's portal key; the status page shows its progress; ``expire`` deletes files past
their time. Only the account that asked can download it, until it expires.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.portal import portal_cipher_for
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.portability import services
from healthspace.portability.models import Download, download_purpose

log = logging.getLogger(__name__)
NOT_FOUND = "This download is not here: it may have expired. You can ask for a new one."
MAX_WAITING = 4  # downloads queued or being prepared at once, per account


def formats_for(user) -> tuple[str, ...]:
    """A basic account (no record linked), or one whose record was deleted at its
    request (its key destroyed), has only its organiser readings to download."""
    link = getattr(user, "patient_link", None)
    if link is None or record_deleted(link.patient_id):
        return ("csv",)
    return services.FORMATS


def record_deleted(patient_id) -> bool:
    from healthspace.vault.models import DataKey

    return DataKey.objects.filter(patient_id=patient_id, wrapped_key__isnull=True).exists()


def own_deletion_receipt(user):
    """The receipt of the deletion of the account's own record, if it was deleted."""
    from healthspace.portability.models import DeletionReceipt

    link = getattr(user, "patient_link", None)
    if link is None:
        return None
    return DeletionReceipt.objects.filter(patient_id=link.patient_id).order_by("-issued_at").first()


def request(*, user, what: str) -> Download:
    if what not in formats_for(user):
        raise InvalidInput("Choose what to download.")
    expire()
    waiting = Download.objects.filter(
        owner_id=user.pk, status__in=[Download.Status.QUEUED, Download.Status.RUNNING]
    ).count()
    if waiting >= MAX_WAITING:
        raise InvalidInput("You have downloads being prepared: wait for them to finish.")
    from healthspace.portability.tasks import build_download

    at = now()
    with transaction.atomic():
        row = Download.objects.create(
            owner_id=user.pk,
            format=what,
            created_at=at,
            expires_at=at + timedelta(hours=settings.HEALTHSPACE_DOWNLOAD_HOURS),
        )
        build_download.enqueue(str(row.id))
    return row


def _progress(row: Download, percent: int, status: str = Download.Status.RUNNING) -> None:
    Download.objects.filter(pk=row.pk).update(progress=percent, status=status)


def build(download_id: str) -> str:
    row = Download.objects.filter(pk=download_id, status=Download.Status.QUEUED).first()
    if row is None or row.expires_at <= now():
        return "nothing-to-do"
    user = get_user_model().objects.filter(pk=row.owner_id, is_active=True).first()
    if user is None:
        Download.objects.filter(pk=row.pk).delete()
        return "account-closed"
    _progress(row, 10)
    actor = actor_for_user(user)
    link = getattr(user, "patient_link", None)
    try:
        data = services.gather(
            actor=actor,
            patient_id=link.patient_id if link is not None else None,
            user_id=user.pk,
            what=row.format,
        )
        _progress(row, 60)
        body = services.render(data, row.format)
        sealed = portal_cipher_for(user_id=user.pk).seal(body, purpose=download_purpose(row.id))
    except Exception:
        log.exception("download %s failed", row.pk)  # ids only: no patient data in logs
        Download.objects.filter(pk=row.pk).update(status=Download.Status.FAILED, progress=0)
        return "failed"
    from healthspace.portability.tasks import expire_downloads

    with transaction.atomic():
        Download.objects.filter(pk=row.pk).update(
            status=Download.Status.READY,
            progress=100,
            payload=sealed,
            size=len(body),
            completed_at=now(),
        )
        expire_downloads.using(run_after=row.expires_at + timedelta(seconds=1)).enqueue()
    return "ready"


def get(*, user, download_id) -> Download:
    """The account's own download (another account's, or an expired one: not found)."""
    try:
        key = uuid.UUID(str(download_id))
    except ValueError:
        raise NotFound(NOT_FOUND) from None
    row = (
        Download.objects.defer("payload")
        .filter(pk=key, owner_id=user.pk, expires_at__gt=now())
        .first()
    )
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


def recent(*, user) -> list[Download]:
    return list(
        Download.objects.defer("payload")
        .filter(owner_id=user.pk, expires_at__gt=now())
        .order_by("-created_at")[:10]
    )


def file(*, user, download_id) -> tuple[bytes, str, str]:
    """(body, content type, file name) of a ready download of the account's own."""
    row = get(user=user, download_id=download_id)
    if row.status != Download.Status.READY:
        raise NotFound(NOT_FOUND)
    payload = Download.objects.values_list("payload", flat=True).get(pk=row.pk)
    body = portal_cipher_for(user_id=user.pk).open(bytes(payload), purpose=download_purpose(row.id))
    return body, services.CONTENT_TYPES[row.format], services.filename(row.format)


def expire() -> int:
    """Delete downloads past their time (the worker runs this when each expires)."""
    deleted, _ = Download.objects.filter(expires_at__lte=now()).delete()
    return deleted
