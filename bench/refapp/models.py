"""The reference tables: plain JSONB rows, as a FHIR server without encryption, access
rules or a hash chain would keep them (docs/anchors/performance.md, R2-R4)."""

from django.db import models


class RefPatient(models.Model):
    id = models.UUIDField(primary_key=True)
    resource = models.JSONField()

    def __str__(self) -> str:
        return str(self.pk)


class RefResource(models.Model):
    patient = models.ForeignKey(RefPatient, on_delete=models.CASCADE, db_index=True)
    resource_type = models.CharField(max_length=64)
    resource = models.JSONField()

    def __str__(self) -> str:
        return f"{self.resource_type} of {self.patient_id}"


class RefAudit(models.Model):
    occurred_at = models.DateTimeField()
    patient_id = models.UUIDField()
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["patient_id", "-occurred_at"], name="refaudit_pt_ts")]

    def __str__(self) -> str:
        return f"{self.action} {self.patient_id}"
