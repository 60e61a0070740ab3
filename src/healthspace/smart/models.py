"""Registered OAuth clients (SMART on FHIR), beside django-oauth-toolkit's Application.

Two kinds, registered by an operator (``healthspace smart-client``):

- a **patient app** (SMART App Launch, standalone): authorization code with PKCE; it acts
  for the patient who approved it, within the scopes they approved;
- a **system client** (SMART Backend Services): client credentials with a JWT signed by a
  key in its registered JWKS; it acts for one organisation (ODS code) and reaches only
  the patients registered there.
"""

from __future__ import annotations

from django.db import models


class AppRegistration(models.Model):
    class Kind(models.TextChoices):
        PATIENT_APP = "patient-app", "Patient app"
        SYSTEM = "system", "System client"

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="smart"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # System clients: the organisation they act for (its registered patients only).
    organisation = models.ForeignKey(
        "records.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # System clients: the most they may be granted (``system/*.rs system/Observation.cu``).
    allowed_scopes = models.TextField(blank=True, default="")
    # System clients: their public keys (a JWK Set), for the signed client assertion.
    jwks = models.JSONField(default=dict, blank=True)
    # Feeds: the source system their writes are recorded under (ScrItem.source_system),
    # which is also the namespace of their logical ids (idempotent re-sends).
    source_system = models.CharField(max_length=200, blank=True, default="")
    # Who the app is, as a patient sees it on the consent screen.
    publisher = models.CharField(max_length=200, blank=True, default="")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.application_id}"


class AssertionJti(models.Model):
    """The ``jti`` of every client assertion accepted, until it expires: the same assertion
    presented again is refused (replay)."""

    registration = models.ForeignKey(AppRegistration, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registration", "jti"], name="assertion_jti_once")
        ]
        indexes = [models.Index(fields=["registration", "expires_at"], name="assertion_jti_exp")]

    def __str__(self) -> str:
        return f"assertion of {self.registration_id}"
