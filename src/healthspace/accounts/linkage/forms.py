from __future__ import annotations

from typing import Any

from django import forms

from healthspace.accounts.linkage.services import LinkageDetails
from healthspace.core import nhs_numbers
from healthspace.web.forms import date_from_parts
from healthspace.web.forms import error_list as web_error_list

# Where each field's error links to in the error summary (the first input of the field).
ANCHORS = {"birth_day": "birth_date-day"}


def error_list(form: forms.Form, *, id_prefix: str = "id_") -> list[dict[str, str]]:
    """The NHS.UK error summary's list, linking each error to its field."""
    return web_error_list(form, anchors=ANCHORS, id_prefix=id_prefix)


def field_error(form: forms.Form, name: str) -> str | None:
    messages = form.errors.get(name)
    return str(messages[0]) if messages else None


class NhsNumberField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("error_messages", {"required": "Enter the patient's NHS number"})
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not nhs_numbers.is_valid(value):
            raise forms.ValidationError("Enter a valid NHS number: 10 digits, like 999 123 4567")
        return nhs_numbers.normalise(value)


class VerifyForm(forms.Form):
    account_id = forms.CharField(
        max_length=40, error_messages={"required": "Enter your account ID"}
    )
    linkage_key = forms.CharField(
        max_length=40, error_messages={"required": "Enter your linkage key"}
    )
    practice_ods = forms.CharField(
        max_length=20, error_messages={"required": "Enter your practice ODS code"}
    )
    birth_day = forms.CharField(max_length=2, required=False)
    birth_month = forms.CharField(max_length=2, required=False)
    birth_year = forms.CharField(max_length=4, required=False)
    surname = forms.CharField(
        max_length=100, error_messages={"required": "Enter your surname (last name)"}
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        born = date_from_parts(
            self, data, "birth", enter="your date of birth", label="Date of birth"
        )
        if born is not None:
            data["birth_date"] = born
        return data

    def details(self) -> LinkageDetails:
        d = self.cleaned_data
        return LinkageDetails(
            account_id=d["account_id"],
            linkage_key=d["linkage_key"],
            practice_ods=d["practice_ods"],
            birth_date=d["birth_date"],
            surname=d["surname"],
        )

    def birth_date_error(self) -> str | None:
        return field_error(self, "birth_day")


class NhsNumberForm(forms.Form):
    nhs_number = NhsNumberField()


class InPersonForm(forms.Form):
    nhs_number = NhsNumberField()
    email = forms.EmailField(
        max_length=254,
        error_messages={
            "required": "Enter the email address of the patient's HealthSpace account",
            "invalid": "Enter an email address in the correct format, like name@example.com",
        },
    )
    id_checked = forms.BooleanField(
        error_messages={"required": "Confirm that you have checked the person's identity documents"}
    )


class SetupForm(forms.Form):
    passcode = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Enter a passcode"}
    )
    passcode_again = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Enter the passcode again"}
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            data.get("passcode")
            and data.get("passcode_again")
            and data["passcode"] != data["passcode_again"]
        ):
            self.add_error("passcode_again", "The passcodes do not match")
        return data
