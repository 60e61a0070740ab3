"""The health organiser's rows. They belong to an account (``owner``), verified or not,
and never to a record: a basic account keeps an organiser too.

Everything the patient typed is in ``payload``, sealed under the account's portal key
(``accounts.portal.portal_cipher_for``) with a per-row purpose (``organiser:<kind>:<id>``),
so a payload copied to another row or another account does not open. In the clear is only
what queries need: the owner, the measure, times (to sort, chart and remind), whether a
reading is shared, and the reminder's bookkeeping.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Reading(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    measure = models.CharField(max_length=32)  # measures.Measure
    taken_at = models.DateTimeField()
    # sealed: {"values": {...canonical...}, "entered": {"unit", "fields"}, "note": str}
    payload = models.BinaryField()
    # shared with the care team: a patient-recorded Observation in the SCR (verified only)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "organiser_reading"
        indexes = [
            models.Index(fields=["owner", "measure", "-taken_at"], name="org_reading_owner_measure")
        ]

    def __str__(self) -> str:
        return f"reading {self.id}"


class Appointment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    # sealed: {"what": str, "where": str, "notes": str}
    payload = models.BinaryField()
    # the reminder: how it was chosen ("none", "2h", "1d", "1w", "at"), when it is due,
    # and when it went (a queued task checks all three before sending)
    reminder = models.CharField(max_length=8, default="none")
    reminder_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "organiser_appointment"
        indexes = [models.Index(fields=["owner", "starts_at"], name="org_appt_owner_starts")]

    def __str__(self) -> str:
        return f"appointment {self.id}"


class Note(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    payload = models.BinaryField()  # sealed: {"title": str, "text": str}
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "organiser_note"
        indexes = [models.Index(fields=["owner", "-updated_at"], name="org_note_owner_updated")]

    def __str__(self) -> str:
        return f"note {self.id}"


class Medicine(models.Model):
    """A medicine as the patient sees it: their own list, not a prescription."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # sealed: {"name", "how", "what_for", "since": "YYYY-MM"|"", "stopped": "YYYY-MM"|""}
    payload = models.BinaryField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "organiser_medicine"
        indexes = [models.Index(fields=["owner", "created_at"], name="org_medicine_owner")]

    def __str__(self) -> str:
        return f"medicine {self.id}"
