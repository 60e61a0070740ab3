"""Identity: accounts, verification (linkage keys), second factors, throttling, sessions.

TOTP devices and recovery codes use django-otp's own models (otp_totp.TOTPDevice,
otp_static.StaticDevice); passkeys are stored here (``webauthn`` package).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Account(models.Model):
    """What HealthSpace knows about a login beyond Django's User (username = email)."""

    class Kind(models.TextChoices):
        PATIENT = "patient", "Patient"
        STAFF = "staff", "Staff"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PATIENT)
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    # Staff: the organisation they work for (their roles are Django groups named in
    # access.roles). Part of their identity: the access rules use it.
    organisation = models.ForeignKey(
        "records.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Patients: "email me when a member of staff looks at my record" (off unless chosen).
    notify_staff_views = models.BooleanField(default=False)
    # "Change your password now": set when misuse is suspected, never on a schedule.
    password_change_required = models.BooleanField(default=False)
    # Throttling: a lock the owner can lift by email; never longer than LOCK_MAX.
    locked_until = models.DateTimeField(null=True, blank=True)
    # The key subject of what the account keeps in HealthSpace itself (organiser,
    # messages): a random id, so the vault key of a closed account maps back to nobody.
    portal_subject = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"account of user {self.user_id}"


class PatientLink(models.Model):
    """Links a login to the one patient record it may see (a verified account)."""

    class Method(models.TextChoices):
        LINKAGE_KEY = "linkage-key", "Linkage key from the practice"
        IN_PERSON = "in-person", "Identity checked in person by a registration clerk"
        DEMO = "demo", "Demo set-up"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient_link"
    )
    patient = models.OneToOneField(
        "records.Patient", on_delete=models.CASCADE, related_name="account_link"
    )
    verified_at = models.DateTimeField()
    verified_by = models.CharField(max_length=100)
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.DEMO)

    def __str__(self) -> str:
        return f"link of user {self.user_id}"


class LinkageKey(models.Model):
    """Linkage details a practice issues (as GP online services do): account id + key +
    practice ODS code. Only a hash of the key is kept; single use; expires."""

    patient = models.ForeignKey("records.Patient", on_delete=models.CASCADE, related_name="+")
    account_id = models.CharField(max_length=32, unique=True)  # printed on the letter
    key_hash = models.CharField(max_length=200)  # Argon2id of the key
    practice_ods = models.CharField(max_length=16)
    issued_by = models.CharField(max_length=100)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["patient", "issued_at"], name="linkage_key_patient")]

    def __str__(self) -> str:
        return f"linkage key {self.account_id}"


class AuthAttempt(models.Model):
    """Every sign-in (and linkage, reset) attempt, for throttling and for the audit trail.

    The submitted identifier and the client address are kept only as keyed hashes
    (vault blind index), never the password.
    """

    class Kind(models.TextChoices):
        LOGIN = "login", "Password"
        SECOND_FACTOR = "second-factor", "Second factor"
        LINKAGE = "linkage", "Linkage details"
        RESET = "reset", "Password reset request"

    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    identifier_hash = models.CharField(max_length=64)
    address_hash = models.CharField(max_length=64)
    success = models.BooleanField()
    reason = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["identifier_hash", "-occurred_at"], name="auth_attempt_ident"),
            models.Index(fields=["address_hash", "-occurred_at"], name="auth_attempt_addr"),
            models.Index(fields=["user", "-occurred_at"], name="auth_attempt_user"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {'ok' if self.success else 'failed'}"


class UserSession(models.Model):
    """A signed-in session as the owner sees it in "Where you're logged in".

    Holds a hash of the session key, not the key: the middleware ends any session whose
    row is ended or past its absolute lifetime ("log out everywhere" = end all rows).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hs_sessions"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField()  # absolute lifetime
    device = models.CharField(max_length=120)  # e.g. "Chrome on Windows", from User-Agent
    second_factor = models.CharField(max_length=16, blank=True)  # totp / passkey / recovery
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-last_seen_at"], name="user_session_user")]

    def __str__(self) -> str:
        return f"session of user {self.user_id}"


class Passkey(models.Model):
    """A WebAuthn credential (passkey or security key)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys"
    )
    name = models.CharField(max_length=64)
    credential_id = models.CharField(max_length=512, unique=True)  # base64url
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list)
    aaguid = models.CharField(max_length=64, blank=True)
    user_verified = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"passkey {self.name!r} of user {self.user_id}"
