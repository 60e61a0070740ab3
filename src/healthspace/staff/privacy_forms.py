"""Forms of the privacy officer's console, with NHS.UK error messages."""

from __future__ import annotations

from typing import Any

from django import forms

from healthspace.access.context import ConsentState
from healthspace.accounts.linkage.forms import NhsNumberField
from healthspace.cases.models import CaseDecision, PrivacyCase
from healthspace.cases.services import DECISION_NOTE_MAX, REFERENCE_MAX
from healthspace.web.forms import NHSForm, date_from_parts

NOTE_ERRORS = {
    "required": "Enter a note explaining the decision",
    "max_length": f"The note must be {DECISION_NOTE_MAX} characters or fewer",
}


class QueueFilterForm(forms.Form):
    """The queue's filters, from the query string. Anything unknown shows everything open."""

    status = forms.ChoiceField(choices=PrivacyCase.Status.choices, required=False)
    kind = forms.ChoiceField(choices=PrivacyCase.Kind.choices, required=False)

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {"status": PrivacyCase.Status.OPEN, "kind": ""}
        return {
            "status": self.cleaned_data["status"] or PrivacyCase.Status.OPEN,
            "kind": self.cleaned_data["kind"],
        }


class CaseDecisionForm(NHSForm):
    anchors = {"outcome": "outcome"}

    outcome = forms.ChoiceField(
        choices=CaseDecision.Outcome.choices,
        error_messages={
            "required": "Choose the outcome of your review",
            "invalid_choice": "Choose the outcome of your review",
        },
    )
    note = forms.CharField(max_length=DECISION_NOTE_MAX, error_messages=NOTE_ERRORS)


UNHIDE_CHOICES = [
    (ConsentState.CORE_AND_ADDITIONAL.value, "Share core and additional information"),
    (ConsentState.CORE_ONLY.value, "Share core information only"),
    (ConsentState.IMPLIED.value, "The standard choice (core information only)"),
]


class UnhideRequestForm(NHSForm):
    """The patient's letter: who it is from (NHS number and date of birth, both must
    match), when it arrived, its reference, and what the patient asks for."""

    anchors = {
        "birth_day": "birth_date-day",
        "received_day": "received_on-day",
        "requested_state": "requested_state",
    }

    nhs_number = NhsNumberField()
    birth_day = forms.CharField(max_length=2, required=False)
    birth_month = forms.CharField(max_length=2, required=False)
    birth_year = forms.CharField(max_length=4, required=False)
    received_day = forms.CharField(max_length=2, required=False)
    received_month = forms.CharField(max_length=2, required=False)
    received_year = forms.CharField(max_length=4, required=False)
    reference = forms.CharField(
        max_length=REFERENCE_MAX,
        error_messages={
            "required": "Enter the reference of the letter",
            "max_length": f"The reference must be {REFERENCE_MAX} characters or fewer",
        },
    )
    requested_state = forms.ChoiceField(
        choices=UNHIDE_CHOICES,
        error_messages={
            "required": "Choose what the patient asked for",
            "invalid_choice": "Choose what the patient asked for",
        },
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        birth_date = date_from_parts(self, data, "birth", enter="the patient's date of birth")
        if birth_date is not None:
            data["birth_date"] = birth_date
        received_on = date_from_parts(
            self, data, "received", enter="the date the letter was received"
        )
        if received_on is not None:
            data["received_on"] = received_on
        return data


class RequestDecisionForm(NHSForm):
    """Grant or refuse an unhide or deletion request, with a note (always: the patient
    is written to with the decision, and the next officer reads why)."""

    anchors = {"decision": "decision"}

    decision = forms.ChoiceField(
        choices=[("grant", "Grant"), ("refuse", "Refuse")],
        error_messages={
            "required": "Choose whether to grant or refuse the request",
            "invalid_choice": "Choose whether to grant or refuse the request",
        },
    )
    note = forms.CharField(max_length=DECISION_NOTE_MAX, error_messages=NOTE_ERRORS)

    def grant(self) -> bool:
        return self.cleaned_data["decision"] == "grant"
