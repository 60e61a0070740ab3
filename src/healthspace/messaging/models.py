"""Communicator: conversations (threads) between a patient and a care team.

A thread belongs to one patient and one team (an organisation: the patient's GP practice,
or the team of a clinician who started it). What is said is sealed under the patient
account's **portal key** (``accounts.portal``), apart from the SCR key, so closing the
account crypto-shreds the conversation: subjects, bodies, attachment names and bytes.

In the clear stays only what the queues need: whose thread and which team, open or closed,
timestamps, who must reply next, how long the patient has been waiting, the assignment
and read markers. Every row carries ``patient_id`` (the schema can be distributed by it).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Side(models.TextChoices):
    PATIENT = "patient", "The patient"
    TEAM = "team", "The care team"


class Thread(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey("records.Patient", on_delete=models.CASCADE, related_name="+")
    # The patient's account: its portal key seals the content. Threads of an account that
    # is later closed cannot be opened again, by anyone.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("records.Organisation", on_delete=models.PROTECT, related_name="+")
    subject = models.BinaryField()  # sealed {"subject": str}
    opened_by = models.CharField(max_length=8, choices=Side.choices)
    opened_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    last_message_at = models.DateTimeField()
    last_sender = models.CharField(max_length=8, choices=Side.choices)  # the other replies
    message_count = models.PositiveIntegerField(default=0)
    # The patient's oldest message the team has not answered: the inbox's order. None when
    # the team spoke last.
    waiting_since = models.DateTimeField(null=True, blank=True)
    # Read markers, one per side: something new from the other side is unread until
    # someone on this side opens the thread.
    unread_by_patient = models.BooleanField(default=False)
    unread_by_team = models.BooleanField(default=False)
    patient_read_at = models.DateTimeField(null=True, blank=True)
    team_read_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=8, choices=Side.choices, blank=True)
    closed_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            # the team's queues: open threads by how long the patient has waited
            models.Index(fields=["team", "status", "waiting_since"], name="thread_team_queue"),
            models.Index(fields=["team", "assigned_to", "status"], name="thread_team_assigned"),
            models.Index(fields=["patient", "-last_message_at"], name="thread_patient"),
        ]

    def __str__(self) -> str:  # never the subject: str() ends up in logs
        return f"thread {self.id}"


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    patient = models.ForeignKey("records.Patient", on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=8, choices=Side.choices)
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.BinaryField()  # sealed {"body": str}: plain text, never HTML
    sent_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["thread", "sent_at"], name="message_thread")]

    def __str__(self) -> str:
        return f"message {self.id}"


class Attachment(models.Model):
    """A PDF, PNG or JPEG that passed ``messaging.attachments`` (images re-encoded),
    stored sealed in the database: no file on disk to leak, back up apart or forget."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey("records.Patient", on_delete=models.CASCADE, related_name="+")
    meta = models.BinaryField()  # sealed {"name": str, "content_type": str, "size": int}
    data = models.BinaryField()  # sealed bytes
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["thread"], name="attachment_thread")]

    def __str__(self) -> str:
        return f"attachment {self.id}"
