"""Privacy cases: a patient (or a rule) asks the privacy officer to look at an access."""

from __future__ import annotations

from django.db import models


class PrivacyCase(models.Model):
    """One question for the privacy officer about one patient's record.

    ``patient_id`` and ``audit_event_id`` are not foreign keys: a case outlives the record
    (closure, crypto-shredding) and points into the append-only audit trail.
    """

    class Kind(models.TextChoices):
        NOT_RECOGNISED = "not-recognised", "Patient does not recognise an access"
        COMPROMISE_REPORTED = "compromise-reported", "Patient reported account misuse"
        EMERGENCY_ACCESS = "emergency-access", "Emergency access to review"
        SELF_CLAIMED_RELATIONSHIP = (
            "self-claimed-relationship",
            "Access on a self-claimed relationship to review",
        )

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    opened_at = models.DateTimeField()
    patient_id = models.UUIDField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    audit_event_id = models.BigIntegerField(null=True, blank=True)
    patient_note = models.TextField(max_length=2000, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    decision = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "opened_at"], name="privacy_case_queue")]
        constraints = [
            # One open case per audited event, whoever opens it: a double submit or a
            # second tab cannot queue the same question twice.
            models.UniqueConstraint(
                fields=["audit_event_id"],
                condition=models.Q(status="open", audit_event_id__isnull=False),
                name="privacy_case_one_open_per_event",
            )
        ]

    def __str__(self) -> str:  # no patient id: str() ends up in logs
        return f"privacy case {self.pk} ({self.kind}, {self.status})"
