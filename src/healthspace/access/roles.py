"""Names of roles and activities, in one place; endpoints declare which they need."""

from enum import StrEnum


class Role(StrEnum):
    CLINICIAN = "clinician"
    REGISTRATION_CLERK = "registration-clerk"
    PRIVACY_OFFICER = "privacy-officer"
    OPERATOR = "operator"


STAFF_ROLES = frozenset(Role)
