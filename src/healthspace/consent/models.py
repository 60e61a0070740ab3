"""The patient's SCR consent, one row per version. Append-only: a change adds a version and
never updates or deletes an earlier one, so the history answers "what applied when"."""

from __future__ import annotations

import uuid

from django.db import models

from healthspace.access.context import ConsentState


class Source(models.TextChoices):
    PATIENT_ONLINE = "patient-online", "You, online"
    GP_PRACTICE = "gp-practice", "Your GP practice"
    PRIVACY_OFFICER = "privacy-officer", "A privacy officer"


class ConsentRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No foreign key: the consent history (including "deleted") outlives the record.
    patient_id = models.UUIDField(db_index=True)
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=24, choices=[(s.value, s.value) for s in ConsentState])
    recorded_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=100)  # actor audit label, not a name
    source = models.CharField(max_length=16, choices=Source.choices)
    note = models.CharField(max_length=200, blank=True, default="")
    supersedes = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            # The backstop against forked histories: two writers cannot both add version n.
            models.UniqueConstraint(
                fields=["patient_id", "version"], name="consent_one_row_per_version"
            )
        ]
        ordering = ["patient_id", "-version"]

    def __str__(self) -> str:
        return f"consent v{self.version}"
