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


# --- Sharing (consent.sharing) -----------------------------------------------------------
# No foreign keys to the patient or to users: the rows (who was given what, until when,
# revoked by whom) are evidence that outlives accounts and records, like the audit trail.


class Grant(models.Model):
    """Read access to chosen sections of one patient's record for another account.

    ``kind``: a grant the patient made (``grant``), or a proxy approved by the patient's
    practice (``proxy``: a parent of a child under 11, someone acting for an adult who
    lacks capacity). Access needs ``status == active``, ``expires_at`` in the future and
    sharing not paused for the patient; the guard checks all three on every request.
    """

    class Kind(models.TextChoices):
        GRANT = "grant", "Shared by the patient"
        PROXY = "proxy", "Proxy approved by the practice"

    class Status(models.TextChoices):
        INVITED = "invited", "Waiting for them to accept"
        REQUESTED = "requested", "Waiting for the practice to decide"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        REFUSED = "refused", "Refused by the practice"
        REVOKED = "revoked", "Stopped"

    class ProxyBasis(models.TextChoices):
        PARENT = "parent-of-child", "Parent or guardian of a child under 11"
        CAPACITY = "adult-lacks-capacity", "Acting for an adult who lacks capacity"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.GRANT)
    patient_id = models.UUIDField()
    granted_by_user_id = models.IntegerField(null=True, blank=True)  # the patient's login
    grantee_user_id = models.IntegerField(null=True, blank=True)  # None: no such account
    invited_email = models.CharField(max_length=254, blank=True)  # as the patient typed it
    # whose record, in the grantee's list: the patient's account name (grant), or the
    # name the proxy gave (proxy); not read from the sealed record
    patient_label = models.CharField(max_length=100, blank=True)
    sections = models.JSONField(default=list)
    status = models.CharField(max_length=12, choices=Status.choices)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    # proxy: the basis the requester gave, the practice asked, and its decision
    proxy_basis = models.CharField(max_length=24, choices=ProxyBasis.choices, blank=True)
    practice_ods = models.CharField(max_length=16, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)  # actor audit label
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=100, blank=True)  # actor audit label
    # why it stopped, for the patient's and the practice's pages (never shown to grantees)
    revoked_reason = models.CharField(max_length=24, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient_id", "status"], name="grant_patient"),
            models.Index(fields=["grantee_user_id", "status"], name="grant_grantee"),
            models.Index(fields=["practice_ods", "status"], name="grant_practice_queue"),
        ]

    def __str__(self) -> str:  # no patient id: str() ends up in logs
        return f"grant {self.pk} ({self.kind}, {self.status})"


class ShareCode(models.Model):
    """A one-time code the patient gives a professional: typed at /share/ with the
    professional's name and organisation, it opens the patient's summary for
    ``VIEW_MINUTES``. Stored only as a keyed hash; single use; the patient can cancel it."""

    class Profession(models.TextChoices):
        PHARMACIST = "pharmacist", "Pharmacist"
        DOCTOR = "doctor", "Doctor"
        NURSE = "nurse", "Nurse"
        PARAMEDIC = "paramedic", "Paramedic"
        DENTIST = "dentist", "Dentist"
        OTHER = "other", "Other health or care professional"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient_id = models.UUIDField()
    created_by_user_id = models.IntegerField()
    code_hash = models.CharField(max_length=64, unique=True)
    profession = models.CharField(max_length=16, choices=Profession.choices)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()  # must be used before this
    view_minutes = models.PositiveIntegerField(default=30)
    used_at = models.DateTimeField(null=True, blank=True)
    # typed by the professional when they used it: shown to the patient in their trail
    viewer_name = models.CharField(max_length=100, blank=True)
    viewer_organisation = models.CharField(max_length=100, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=24, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient_id", "created_at"], name="share_code_patient")]

    def __str__(self) -> str:
        return f"share code {self.pk}"


class SharingPause(models.Model):
    """The patient paused all sharing (the "I'm being pressured" control). While a row
    has no ``lifted_at``, nothing shared opens and nothing new can be shared; the
    privacy officer's case (``case_id``) must be closed before the patient can lift it."""

    patient_id = models.UUIDField()
    paused_at = models.DateTimeField()
    paused_by = models.CharField(max_length=100)
    case_id = models.BigIntegerField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient_id"],
                condition=models.Q(lifted_at__isnull=True),
                name="sharing_one_open_pause",
            )
        ]

    def __str__(self) -> str:
        return f"sharing pause {self.pk}"
