"""Forms of the staff pages, with NHS.UK error messages."""

from __future__ import annotations

from typing import Any

from django import forms

from healthspace.accounts.linkage.forms import NhsNumberField
from healthspace.staff.models import RelationshipClaim
from healthspace.staff.services import EXPLANATION_MAX
from healthspace.web.forms import NHSForm, date_from_parts


class FindForm(NHSForm):
    anchors = {"birth_day": "birth_date-day"}

    nhs_number = NhsNumberField()
    birth_day = forms.CharField(max_length=2, required=False)
    birth_month = forms.CharField(max_length=2, required=False)
    birth_year = forms.CharField(max_length=4, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        born = date_from_parts(
            self, data, "birth", enter="the patient's date of birth", label="Date of birth"
        )
        if born is not None:
            data["birth_date"] = born
        return data


class PermissionForm(NHSForm):
    anchors = {"answer": "answer"}

    answer = forms.ChoiceField(
        choices=[
            ("given", "Yes, the patient gave permission"),
            ("refused", "No, the patient refused"),
            ("cannot-be-asked", "The patient cannot be asked (for example, unconscious)"),
        ],
        error_messages={
            "required": "Choose the patient's answer",
            "invalid_choice": "Choose the patient's answer",
        },
    )
    explanation = forms.CharField(
        max_length=EXPLANATION_MAX,
        required=False,
        error_messages={
            "max_length": f"The explanation must be {EXPLANATION_MAX} characters or fewer"
        },
    )


class RelationshipForm(NHSForm):
    anchors = {"reason": "reason"}

    reason = forms.ChoiceField(
        choices=RelationshipClaim.Reason.choices,
        error_messages={
            "required": "Choose how you are involved in this patient's care",
            "invalid_choice": "Choose how you are involved in this patient's care",
        },
    )
    explanation = forms.CharField(
        max_length=EXPLANATION_MAX,
        required=False,
        error_messages={
            "max_length": f"The explanation must be {EXPLANATION_MAX} characters or fewer"
        },
    )


class EmergencyForm(NHSForm):
    explanation = forms.CharField(
        max_length=EXPLANATION_MAX,
        error_messages={
            "required": "Explain the emergency",
            "max_length": f"The explanation must be {EXPLANATION_MAX} characters or fewer",
        },
    )
