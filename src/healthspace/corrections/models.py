"""A patient's request to correct an item of their Summary Care Record, and its answer.

What the patient wrote and what the clinician answered are about the SCR and must be read
by the practice, so they are sealed under the patient's SCR key (``vault.cipher_for``): a
deleted record (its key destroyed) takes them with it. In the clear stay only what the
queues need: whose, which item and version, which practice, status and times.
"""

from __future__ import annotations

import uuid

from django.db import models

from healthspace.corrections.workflow import OPEN_STATUSES, Status
from healthspace.records.models import Organisation, Patient, ScrItem


class CorrectionRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    # The item asked about; kept when the item goes (a later import cannot remove it,
    # but a record's deletion can), the request then says the item is no longer there.
    item = models.ForeignKey(ScrItem, null=True, on_delete=models.SET_NULL, related_name="+")
    item_version = models.PositiveIntegerField()  # the version the patient read
    section = models.CharField(max_length=32)  # records.models.Section of the item then
    # The practice whose queue it went to, as it was when the patient asked: a later
    # change of registration does not move an open request.
    practice = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    practice_ods = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    submitted_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.CharField(max_length=64, blank=True, default="")  # audit label
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=64, blank=True, default="")  # audit label
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    amended_version = models.PositiveIntegerField(null=True, blank=True)  # the item's, after
    # Sealed JSON {"wrong", "should_say", "item_title"}; purpose corrections:request:<id>
    words = models.BinaryField()
    # Sealed JSON {"outcome", "explanation", "by", "changes"}; purpose corrections:answer:<id>
    answer = models.BinaryField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # the practice's queue: open requests, oldest first
            models.Index(
                fields=["practice_ods", "status", "submitted_at"], name="correction_queue"
            ),
            # the patient's own list
            models.Index(fields=["patient", "-submitted_at"], name="correction_patient"),
        ]
        constraints = [
            # one open request per item: a second one would split the practice's answer
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(status__in=OPEN_STATUSES),
                name="correction_one_open_per_item",
            )
        ]

    def __str__(self) -> str:  # never the words: str() ends up in logs
        return f"Correction request {self.id} ({self.status})"

    @property
    def words_purpose(self) -> str:
        return f"corrections:request:{self.id}"

    @property
    def answer_purpose(self) -> str:
        return f"corrections:answer:{self.id}"
