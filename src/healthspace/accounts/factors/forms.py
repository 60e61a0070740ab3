"""Forms of the second-factor pages. Error messages follow the NHS.UK pattern: say what
to do, not what went wrong."""

from __future__ import annotations

import re

from django import forms

from healthspace.accounts.factors.services import normalise_code

CODE_MESSAGE = "Enter the 6-digit code from your authenticator app"


class CodeForm(forms.Form):
    code = forms.CharField(max_length=20, error_messages={"required": CODE_MESSAGE})

    def clean_code(self) -> str:
        code = normalise_code(self.cleaned_data["code"])
        # A malformed code cannot match: refused here, without counting as a guess.
        if not re.fullmatch(r"\d{6}", code):
            raise forms.ValidationError("The code must be 6 numbers")
        return code


class TotpConfirmForm(CodeForm):
    device = forms.IntegerField()
    name = forms.CharField(max_length=64, required=False)


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        max_length=40, error_messages={"required": "Enter one of your recovery codes"}
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if not re.fullmatch(r"[A-Za-z0-9]{10}", re.sub(r"[\s-]", "", code)):
            raise forms.ValidationError(
                "A recovery code has 10 letters and numbers, like abcde-fgh23"
            )
        return code


class NameForm(forms.Form):
    id = forms.IntegerField()
    name = forms.CharField(
        max_length=64, error_messages={"required": "Enter a name for this passkey"}
    )


class PickForm(forms.Form):
    id = forms.IntegerField()


class PasskeyNameForm(forms.Form):
    name = forms.CharField(max_length=64, required=False)


class PasswordForm(forms.Form):
    password = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Enter your password"}
    )
