"""The service's lifecycle: its state history (append-only, for audit) and the closure
reminder campaigns with their per-account send ledger."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ServiceState(models.TextChoices):
    OPEN = "open", "Open"
    REGISTRATIONS_CLOSED = "registrations-closed", "Registrations closed"
    CLOSURE_ANNOUNCED = "closure-announced", "Closure announced"
    READ_ONLY = "read-only", "Read-only"
    PURGED = "purged", "Purged"


class ServiceStateChange(models.Model):
    """One change of the service's state. Never updated or deleted: the latest row is the
    state now, and the rows before it say who changed it, when and why (each change is
    also an audit event)."""

    state = models.CharField(max_length=24, choices=ServiceState.choices)
    closure_date = models.DateField(null=True, blank=True)  # set once a closure is announced
    changed_at = models.DateTimeField()
    changed_by = models.CharField(max_length=200)  # the operator command's actor label
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "ops_service_state_change"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.state} at {self.changed_at:%Y-%m-%d %H:%M}"


class ClosureCampaign(models.Model):
    """One round of closure reminder emails (announcing a closure starts one)."""

    closure_date = models.DateField()
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ops_closure_campaign"

    def __str__(self) -> str:
        return f"closure reminders for {self.closure_date}"


class ClosureReminder(models.Model):
    """The send ledger: one row per (campaign, account), written in the same transaction
    as the queued email. A fan-out that crashed and runs again skips the accounts that
    have a row, so nobody is emailed twice."""

    campaign = models.ForeignKey(ClosureCampaign, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    queued_at = models.DateTimeField()
    task_id = models.CharField(max_length=64)

    class Meta:
        db_table = "ops_closure_reminder"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="ops_reminder_once"),
        ]

    def __str__(self) -> str:
        return f"closure reminder {self.campaign_id} to user {self.user_id}"


class MonthlyUsage(models.Model):
    """The monthly counts of one closed calendar month (ops.stats, docs/statistics.md),
    kept once computed: a month that has ended gets no new events (each is written at the
    time of its action), so its counts never change and the 12-month table reads these rows
    instead of counting a year of the trail again. Aggregate counts only, never suppressed
    here (suppression is applied when they are shown); no patient, account or person."""

    month = models.DateField(unique=True)  # the first day of the month
    figures = models.JSONField()  # figure name -> count (ops.stats.MONTHLY_FIGURES)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "ops_monthly_usage"

    def __str__(self) -> str:
        return f"usage of {self.month:%Y-%m}"
