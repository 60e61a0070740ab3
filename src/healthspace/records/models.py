"""The Summary Care Record: patients and their SCR items.

Clinical content (codes, text, authors, the whole FHIR resource) is sealed under the
patient's own data key (``vault``). In the clear stay only what finding a patient and
applying consent need: NHS number, date of birth, registered practice, each item's
section and recorded date. Every patient-owned row carries ``patient_id`` so the schema
can be distributed or partitioned by patient.
"""

from __future__ import annotations

import uuid

from django.db import models


class Section(models.TextChoices):
    # Core SCR
    MEDICATIONS = "medications", "Medications"
    ALLERGIES = "allergies", "Allergies"
    ADVERSE_REACTIONS = "adverse_reactions", "Adverse reactions"
    # Additional information (only with the patient's agreement)
    PROBLEMS = "problems", "Problems and diagnoses"
    RESULTS = "results", "Test results and observations"
    IMMUNISATIONS = "immunisations", "Immunisations"
    PROCEDURES = "procedures", "Procedures"
    ENCOUNTERS = "encounters", "Care summaries and encounters"
    CARE_PLANS = "care_plans", "Care plans and anticipated treatment"
    PROFESSIONALS = "professionals", "Professionals involved in care"
    # Added by the patient (additional information, marked as theirs)
    COMMUNICATION = "communication", "Communication preferences"
    ACCESS_NEEDS = "access_needs", "Access needs and reasonable adjustments"
    CARE_PREFERENCES = "care_preferences", "Preferences for care"


CORE_SECTIONS: tuple[str, ...] = (
    Section.MEDICATIONS,
    Section.ALLERGIES,
    Section.ADVERSE_REACTIONS,
)
ADDITIONAL_SECTIONS: tuple[str, ...] = tuple(s for s in Section.values if s not in CORE_SECTIONS)


class Organisation(models.Model):
    """A care organisation (GP practice, trust). Not patient data."""

    ods_code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    name = models.CharField(max_length=300)
    identifier_system = models.CharField(max_length=300)
    identifier_value = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["identifier_system", "identifier_value"], name="org_identifier_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ods_code or self.identifier_value})"


class Patient(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    nhs_number = models.CharField(max_length=10, unique=True)
    birth_date = models.DateField(null=True, blank=True)
    registered_practice = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The FHIR Patient resource (names, addresses, contacts, identifiers), sealed.
    resource = models.BinaryField()
    content_hash = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    source_system = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:  # never the name: str() ends up in logs and admin
        return f"Patient {self.id}"


class PatientIdentifier(models.Model):
    """Blind index of a patient's identifiers (business identifiers and source ids).

    ``lookup`` is an HMAC of ``system|value``, so ``healthspace export system|value`` and
    re-imports find the patient without the identifier being stored in the clear.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="identifiers")
    lookup = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return f"identifier of {self.patient_id}"


class Origin(models.TextChoices):
    SOURCE = "source", "From the patient's GP practice system"
    PATIENT = "patient", "Added by the patient"


class ScrItem(models.Model):
    """One item of a patient's SCR: the current version of one source FHIR resource, or
    something the patient added (a shared reading, a preference, an access need)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="items")
    section = models.CharField(max_length=32, choices=Section.choices)
    resource_type = models.CharField(max_length=64)
    # HMAC of source system | resource type | logical id: the import's idempotency key.
    identity = models.CharField(max_length=64)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.SOURCE)
    version = models.PositiveIntegerField(default=1)
    content_hash = models.CharField(max_length=64)
    # The hash of the content as the source last sent it. It differs from content_hash
    # after a clinician amends the item in HealthSpace (a correction): a feed that sends
    # the same, uncorrected content again must not undo the correction; new content from
    # the source supersedes it (a new version, as any change).
    source_hash = models.CharField(max_length=64, blank=True, default="")
    recorded_at = models.DateTimeField(null=True, blank=True)
    source_system = models.CharField(max_length=200)
    # Sealed JSON: {"resource": <FHIR>, "author": str|None, "organisation": str|None}
    payload = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "identity"], name="scr_item_identity_unique")
        ]
        indexes = [
            models.Index(fields=["patient", "section", "-recorded_at"], name="scr_item_read")
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} item {self.pk} of {self.patient_id}"


class ScrItemVersion(models.Model):
    """A superseded version of an item, kept so changes can be traced."""

    item = models.ForeignKey(ScrItem, on_delete=models.CASCADE, related_name="versions")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(null=True, blank=True)
    source_system = models.CharField(max_length=200)
    payload = models.BinaryField()
    superseded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "version"], name="scr_item_version_unique")
        ]
        indexes = [models.Index(fields=["patient", "item"], name="scr_item_version_patient")]

    def __str__(self) -> str:
        return f"v{self.version} of item {self.item_id}"
