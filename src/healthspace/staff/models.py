"""What a clinician establishes before looking at a record: a self-claimed relationship,
and the patient's answer to "may I look at your record?" (per patient, per session).

``patient_id`` is not a foreign key: these rows are evidence the privacy officer reviews,
and outlive the record. Reasons typed by staff stay here, never in logs; audit events
carry the row's id.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from healthspace.access.context import Permission


class RelationshipClaim(models.Model):
    """A clinician outside the patient's practice says they are caring for them."""

    class Reason(models.TextChoices):
        URGENT_CARE = "urgent-care", "Treating the patient in urgent or emergency care"
        REFERRAL = "referral", "Treating the patient on referral from another service"
        OUT_OF_HOURS = "out-of-hours", "Out-of-hours service or NHS 111"
        PHARMACY = "pharmacy", "Pharmacy: dispensing or a medicines review"
        OTHER = "other", "Another reason (explain)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient_id = models.UUIDField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    explanation = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    audit_event_id = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(
                fields=["user", "patient_id", "-expires_at"], name="relationship_claim_live"
            )
        ]

    def __str__(self) -> str:
        return f"relationship claim {self.pk}"


class PermissionAnswer(models.Model):
    """The patient's answer to "may I look?", asked every time: one session, one patient.

    Emergency access is recorded here too (answer ``emergency`` with the reason): it is what
    stands in for permission in that session.
    """

    ANSWERS = [
        (p.value, p.value)
        for p in (
            Permission.GIVEN,
            Permission.REFUSED,
            Permission.CANNOT_BE_ASKED,
            Permission.EMERGENCY,
        )
    ]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    session_key_hash = models.CharField(max_length=64)
    patient_id = models.UUIDField()
    answer = models.CharField(max_length=16, choices=ANSWERS)
    explanation = models.CharField(max_length=500, blank=True)
    recorded_at = models.DateTimeField()
    audit_event_id = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(
                fields=["session_key_hash", "patient_id", "-recorded_at"],
                name="permission_answer_session",
            )
        ]

    def __str__(self) -> str:
        return f"permission answer {self.pk} ({self.answer})"
