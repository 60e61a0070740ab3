from __future__ import annotations

from django import forms

from healthspace.consent.models import Grant, ShareCode
from healthspace.consent.sharing.selectors import SECTION_WORDS
from healthspace.consent.sharing.services import CODE_LIFETIMES, SHAREABLE
from healthspace.records.models import Section

DATE_ERRORS = {"invalid": "Enter a real date, for example 31 3 2027"}


class DateParts(forms.Form):
    """An NHS.UK date input: day, month and year boxes."""

    day = forms.IntegerField(min_value=1, max_value=31, error_messages=DATE_ERRORS)
    month = forms.IntegerField(min_value=1, max_value=12, error_messages=DATE_ERRORS)
    year = forms.IntegerField(min_value=2000, max_value=2200, error_messages=DATE_ERRORS)

    def the_date(self):
        from datetime import date

        try:
            return date(
                self.cleaned_data["year"], self.cleaned_data["month"], self.cleaned_data["day"]
            )
        except (KeyError, ValueError):
            return None


class GrantForm(DateParts):
    email = forms.EmailField(
        max_length=254,
        error_messages={
            "required": "Enter the email address they use to log in to HealthSpace",
            "invalid": "Enter an email address in the correct format, like name@example.com",
        },
    )
    sections = forms.MultipleChoiceField(
        choices=[(s, SECTION_WORDS[s]) for s in SHAREABLE],
        error_messages={"required": "Select which parts of your record to share"},
    )


class CodeForm(forms.Form):
    profession = forms.ChoiceField(
        choices=ShareCode.Profession.choices,
        error_messages={"required": "Select who the code is for"},
    )
    minutes = forms.TypedChoiceField(
        coerce=int,
        choices=[
            (m, f"{m} minutes" if m < 60 else f"{m // 60} hour{'s' if m > 60 else ''}")
            for m in CODE_LIFETIMES
        ],
        error_messages={"required": "Select how long the code can wait to be used"},
    )


class UseCodeForm(forms.Form):
    code = forms.CharField(max_length=20, error_messages={"required": "Enter the share code"})
    name = forms.CharField(max_length=100, error_messages={"required": "Enter your name"})
    organisation = forms.CharField(
        max_length=100, error_messages={"required": "Enter your organisation"}
    )


class ProxyRequestForm(DateParts):
    nhs_number = forms.CharField(
        max_length=12, error_messages={"required": "Enter their NHS number"}
    )
    name = forms.CharField(max_length=100, error_messages={"required": "Enter their name"})
    basis = forms.ChoiceField(
        choices=Grant.ProxyBasis.choices,
        error_messages={"required": "Select why you need to act for them"},
    )


class ProxyDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("refuse", "Refuse")],
        error_messages={"required": "Select approve or refuse"},
    )
    sections = forms.MultipleChoiceField(
        choices=[(s.value, s.label) for s in Section], required=False
    )
    day = forms.IntegerField(min_value=1, max_value=31, required=False)
    month = forms.IntegerField(min_value=1, max_value=12, required=False)
    year = forms.IntegerField(min_value=2000, max_value=2200, required=False)

    def the_date(self):
        from datetime import date

        try:
            return date(
                self.cleaned_data["year"], self.cleaned_data["month"], self.cleaned_data["day"]
            )
        except (KeyError, TypeError, ValueError):
            return None
