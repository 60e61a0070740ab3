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
        SHARING_PAUSED = (
            "sharing-paused",
            "Patient paused all sharing: they may be under pressure to share",
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


class CaseDecision(models.Model):
    """The privacy officer's decision that closed a case: what they concluded and who
    decided. The note stays here (and in ``PrivacyCase.decision``), never in the audit
    trail, which records only the case id and the outcome."""

    class Outcome(models.TextChoices):
        APPROPRIATE = "appropriate", "Appropriate: no further action"
        APPROPRIATE_EXPLAINED = (
            "appropriate-patient-contacted",
            "Appropriate: the patient was contacted with an explanation",
        )
        INAPPROPRIATE_REFERRED = (
            "inappropriate-referred",
            "Inappropriate: referred for investigation",
        )
        INAPPROPRIATE_REFERRED_TOLD = (
            "inappropriate-referred-patient-contacted",
            "Inappropriate: referred for investigation and the patient told",
        )

    # One decision per case: the backstop behind the row lock against deciding twice.
    case = models.OneToOneField(
        PrivacyCase, on_delete=models.PROTECT, related_name="decision_record"
    )
    outcome = models.CharField(max_length=48, choices=Outcome.choices)
    decided_at = models.DateTimeField()
    decided_by = models.CharField(max_length=100)  # actor audit label, not a name

    def __str__(self) -> str:
        return f"decision on case {self.case_id} ({self.outcome})"


class ConsentRequest(models.Model):
    """A patient's request that only a privacy officer may decide: unhiding a hidden record
    (made in writing, recorded here by the officer) or deleting it (made online; the row
    is written when the officer decides). ``patient_id`` is not a foreign key: the request
    and its decision outlive a deleted record."""

    class Kind(models.TextChoices):
        UNHIDE = "unhide", "Unhide the record"
        DELETION = "deletion", "Delete the record"

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for a decision"
        GRANTED = "granted", "Granted"
        REFUSED = "refused", "Refused"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    patient_id = models.UUIDField()
    received_on = models.DateField()  # the date on the letter (deletion: the online request)
    reference = models.CharField(max_length=64)
    requested_state = models.CharField(max_length=24)  # unhide: the visible state asked for
    recorded_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=100)  # actor audit label, not a name
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)
    decision_note = models.TextField(max_length=2000, blank=True)
    # the consent version the decision wrote (None while open)
    consent_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "status", "received_on"], name="consent_request_queue")
        ]
        constraints = [
            # A second recording of the same letter (double submit, two officers) cannot
            # leave two open requests for one record.
            models.UniqueConstraint(
                fields=["patient_id", "kind"],
                condition=models.Q(status="open"),
                name="consent_request_one_open",
            )
        ]

    def __str__(self) -> str:  # no patient id: str() ends up in logs
        return f"consent request {self.pk} ({self.kind}, {self.status})"
