"""Names of roles and activities, in one place; endpoints declare which they need."""

from enum import StrEnum


class Role(StrEnum):
    CLINICIAN = "clinician"
    REGISTRATION_CLERK = "registration-clerk"
    PRIVACY_OFFICER = "privacy-officer"
    OPERATOR = "operator"
    CARER = "carer"  # a patient account holding another patient's grant (consent.sharing)
    PROXY = "proxy"  # acting for a patient, approved by the patient's practice (consent.sharing)


STAFF_ROLES = frozenset(
    {Role.CLINICIAN, Role.REGISTRATION_CLERK, Role.PRIVACY_OFFICER, Role.OPERATOR}
)


class Activity(StrEnum):
    """Activities a staff member may hold on top of a role (Django groups too)."""

    ADDITIONAL_INFORMATION = "additional-information"  # view the SCR's additional information


# Group names an operator may give staff (createstaff --role): roles and activities.
STAFF_GROUPS = frozenset(STAFF_ROLES | set(Activity))
