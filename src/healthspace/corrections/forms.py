"""Forms of the corrections and additions pages (patients) and the practice's answer
(clinicians). They check shape and limits; the services check everything again."""

from __future__ import annotations

from django import forms

from healthspace.corrections import codes
from healthspace.corrections.codes import Kind
from healthspace.corrections.services import EXPLANATION_MAX, EXPLANATION_MIN, WORDS_MAX
from healthspace.records.amend import DESCRIPTION_MAX, AmendOptions, ItemChanges
from healthspace.web.forms import NHSForm


class ReportForm(NHSForm):
    wrong = forms.CharField(
        max_length=WORDS_MAX,
        error_messages={
            "required": "Tell us what is wrong",
            "max_length": f"What is wrong must be {WORDS_MAX} characters or fewer",
        },
    )
    should_say = forms.CharField(
        max_length=WORDS_MAX,
        required=False,
        error_messages={
            "max_length": f"What it should say must be {WORDS_MAX} characters or fewer"
        },
    )


class AdditionForm(NHSForm):
    anchors = {"option": "option"}

    option = forms.ChoiceField(choices=())
    details = forms.CharField(
        max_length=codes.DETAILS_MAX,
        required=False,
        error_messages={
            "max_length": f"What you write must be {codes.DETAILS_MAX} characters or fewer"
        },
    )

    def __init__(self, *args, kind: Kind, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["option"].choices = [(o.code, o.label) for o in codes.OPTIONS[kind]]
        self.fields["option"].error_messages = {
            "required": f"Choose {codes.KINDS[kind].one}",
            "invalid_choice": f"Choose {codes.KINDS[kind].one}",
        }

    def clean(self):
        data = super().clean()
        option = codes.option_for(self.kind, data.get("option") or "")
        if (
            option is not None
            and option.details_required
            and not (data.get("details") or "").strip()
        ):
            self.add_error("details", f"You chose '{option.label}': tell us more in the box")
        return data


ANSWERS = {
    "description": "Correct the description",
    "status": "Change the status",
    "entered-in-error": "Mark it as entered in error",
    "keep": "Keep it as it is, and explain why",
}


class DecisionForm(NHSForm):
    anchors = {"answer": "answer"}

    answer = forms.ChoiceField(
        choices=list(ANSWERS.items()),
        error_messages={
            "required": "Choose your answer",
            "invalid_choice": "Choose your answer",
        },
    )
    description = forms.CharField(
        max_length=DESCRIPTION_MAX,
        required=False,
        error_messages={
            "max_length": f"The description must be {DESCRIPTION_MAX} characters or fewer"
        },
    )
    status = forms.CharField(max_length=32, required=False)
    explanation = forms.CharField(
        min_length=EXPLANATION_MIN,
        max_length=EXPLANATION_MAX,
        error_messages={
            "required": "Explain your answer to the patient",
            "min_length": f"Explain your answer in at least {EXPLANATION_MIN} characters",
            "max_length": f"The explanation must be {EXPLANATION_MAX} characters or fewer",
        },
    )

    def __init__(self, *args, options: AmendOptions, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.options = options
        allowed = ["keep"]
        if options.description:
            allowed.insert(-1, "description")
        if options.statuses:
            allowed.insert(-1, "status")
        if options.entered_in_error:
            allowed.insert(-1, "entered-in-error")
        self.allowed = allowed
        self.fields["answer"].choices = [(a, ANSWERS[a]) for a in allowed]

    def clean(self):
        data = super().clean()
        answer = data.get("answer")
        if answer == "description" and not (data.get("description") or "").strip():
            self.add_error("description", "Enter the corrected description")
        if answer == "status" and data.get("status") not in dict(self.options.statuses):
            self.add_error("status", "Choose the new status")
        return data

    @property
    def amend(self) -> bool:
        return self.cleaned_data["answer"] != "keep"

    def changes(self) -> ItemChanges | None:
        answer = self.cleaned_data["answer"]
        if answer == "description":
            return ItemChanges(description=self.cleaned_data["description"])
        if answer == "status":
            return ItemChanges(status=self.cleaned_data["status"])
        if answer == "entered-in-error":
            return ItemChanges(entered_in_error=True)
        return None
