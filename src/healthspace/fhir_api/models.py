"""Bulk Data export jobs (FHIR Bulk Data Access: kick-off, polling, NDJSON files).

The files are kept as chunks, one per patient and resource type, each sealed under that
patient's own data key: a crypto-shredded patient's exports become unreadable with the
rest of their record, and nothing of a patient sits in the clear. Chunks are deleted
when the job expires (HEALTHSPACE_BULK_EXPORT_HOURS) or is cancelled.
"""

from __future__ import annotations

import uuid

from django.db import models


class ExportJob(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    registration = models.ForeignKey(
        "smart.AppRegistration", on_delete=models.CASCADE, related_name="+"
    )
    level = models.CharField(max_length=8)  # system, patient, group
    scopes = models.TextField()  # the token's scopes at kick-off: the job never does more
    types = models.JSONField(default=list)  # _type; empty: every type the scopes allow
    since = models.DateTimeField(null=True, blank=True)
    request_url = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACCEPTED)
    patients_total = models.PositiveIntegerField(default=0)
    patients_done = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["registration", "status"], name="export_job_client")]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"


class ExportChunk(models.Model):
    job = models.ForeignKey(ExportJob, on_delete=models.CASCADE, related_name="chunks")
    resource_type = models.CharField(max_length=64)
    patient_id = models.UUIDField()
    count = models.PositiveIntegerField()
    payload = models.BinaryField()  # NDJSON lines, sealed under the patient's data key

    class Meta:
        indexes = [models.Index(fields=["job", "resource_type", "id"], name="export_chunk_file")]

    def __str__(self) -> str:
        return f"{self.resource_type} chunk of {self.job_id}"


def chunk_purpose(job_id, resource_type: str, patient_id) -> str:
    return f"fhir-export:{job_id}:{resource_type}:{patient_id}"
