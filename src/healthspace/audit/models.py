from django.db import models


class AuditEvent(models.Model):
    """Append-only record of who did what to which patient's record, and why.

    Written by services in the same transaction as the action. ``patient_id`` is not a
    foreign key: the audit outlives the record (deletion keeps a pseudonymous trail).
    ``detail`` holds counts and names of sections, never clinical content.
    """

    occurred_at = models.DateTimeField()
    patient_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16)
    reason = models.CharField(max_length=200)
    detail = models.JSONField(default=dict)

    class Meta:
        db_table = "audit_event"
        indexes = [models.Index(fields=["patient_id", "-occurred_at"], name="audit_patient_ts")]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} at {self.occurred_at:%Y-%m-%d %H:%M}"
