"""Forms: parse and check what was typed. Passwords are never stripped (spaces count) and
paste is allowed (no autocomplete=off anywhere): password managers are encouraged."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation

from healthspace.accounts.passwords.validators import MAX_LENGTH
from healthspace.web.forms import NHSForm

EMAIL_MAX = 150  # Django's username length; the username is the address


def _email_field() -> forms.EmailField:
    return forms.EmailField(
        max_length=EMAIL_MAX,
        error_messages={
            "required": "Enter your email address",
            "invalid": "Enter an email address in the correct format, like name@example.com",
            "max_length": f"Email address must be {EMAIL_MAX} characters or fewer",
        },
    )


def _password_field(required_message: str) -> forms.CharField:
    # No max_length here: the length rule gives the plain message; the web server bounds
    # the request body anyway.
    return forms.CharField(strip=False, error_messages={"required": required_message})


def _check_rules(password: str, user) -> None:
    # validate_password collects every rule that fails; the first (in the configured order:
    # length, numbers, similarity, ...) is the one worth fixing first.
    try:
        password_validation.validate_password(password, user)
    except forms.ValidationError as error:
        raise forms.ValidationError(error.messages[0]) from None


class RegisterForm(NHSForm):
    email = _email_field()
    password = _password_field("Enter a password")

    def clean(self):
        data = super().clean()
        email, password = data.get("email"), data.get("password")
        if email and password:
            address = email.strip().lower()
            # Unsaved: the rules compare the password with the address (similarity). Whether
            # the address has an account plays no part here, so the errors cannot tell.
            candidate = get_user_model()(username=address, email=address)
            try:
                _check_rules(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return data


class EmailForm(NHSForm):
    email = _email_field()


class NewPasswordForm(NHSForm):
    password = _password_field("Enter a new password")

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        _check_rules(password, self.user)
        return password


class ChangePasswordForm(NewPasswordForm):
    current_password = _password_field("Enter your current password")
    field_order = ["current_password", "password"]

    def clean_current_password(self) -> str:
        value = self.cleaned_data["current_password"]
        if len(value) > MAX_LENGTH:
            # Longer than any password we accept: wrong, without spending a hash on it.
            raise forms.ValidationError("Your current password is not correct")
        return value
