"""A patient's downloads ("Download your data") and the deletion receipts issued.

A download is built by the worker (``portability.tasks.build_download``) and kept sealed
under the account's own portal key until it expires (HEALTHSPACE_DOWNLOAD_HOURS), when
the worker deletes it; closing the account destroys that key (and deletes the rows).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Download(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Being prepared"
        READY = "ready", "Ready to download"
        FAILED = "failed", "Could not be prepared"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    format = models.CharField(max_length=8)  # services.FORMATS
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    size = models.PositiveIntegerField(default=0)
    payload = models.BinaryField(null=True)  # sealed under the owner's portal key
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["owner", "created_at"], name="download_owner")]

    def __str__(self) -> str:
        return f"download {self.id} ({self.status})"


def download_purpose(download_id) -> str:
    return f"portability:download:{download_id}"


class DeletionReceipt(models.Model):
    """A signed receipt (portability.receipts), kept so it can be shown again; it names
    no clinical content."""

    id = models.UUIDField(primary_key=True)  # the receipt's receipt_id
    kind = models.CharField(max_length=16)
    issued_at = models.DateTimeField()
    patient_id = models.UUIDField(null=True, blank=True)  # a deleted record's
    document = models.TextField()

    def __str__(self) -> str:
        return f"receipt {self.id} ({self.kind})"
