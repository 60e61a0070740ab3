from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation


class CompromiseForm(forms.Form):
    current_password = forms.CharField(strip=False, max_length=1024)
    new_password = forms.CharField(strip=False, max_length=1024)
    passkeys = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    note = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, user, passkeys, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["passkeys"].choices = [(p.pk, p.name) for p in passkeys]

    def clean_current_password(self) -> str:
        value = self.cleaned_data["current_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError("Enter your current password correctly.")
        return value

    def clean_new_password(self) -> str:
        value = self.cleaned_data["new_password"]
        password_validation.validate_password(value, self.user)
        return value
