"""The emails of registration and password reset. Plain text, no clinical content, and no
link that logs anyone in: links confirm an address or let the owner choose a password."""

from __future__ import annotations

from django.core.mail import send_mail
from django.http import HttpRequest
from django.urls import reverse

from healthspace.accounts.passwords import tokens

SIGN_OFF = "\n\nHealthSpace\nThis is an automatic email. Replies are not read."


def _link(request: HttpRequest, name: str, *args: str) -> str:
    return request.build_absolute_uri(reverse(name, args=args or None))


def _reset_link(request: HttpRequest, user) -> str:
    return _link(request, "accounts:password-reset-link", tokens.reset_link_token(user))


def _send(to: str, subject: str, body: str) -> None:
    send_mail(subject, body + SIGN_OFF, None, [to])


def send_confirm_email(request: HttpRequest, user) -> None:
    link = _link(request, "accounts:confirm-email", tokens.confirm_token(user))
    _send(
        user.email,
        "Confirm your email address for HealthSpace",
        "You asked to create a HealthSpace account with this email address.\n\n"
        f"To confirm it is yours, open this link within 24 hours:\n{link}\n\n"
        "Then log in with the password you chose.\n\n"
        "If you did not ask for an account, ignore this email. The account will not be "
        "usable without this link.",
    )


def send_already_registered(request: HttpRequest, user, *, confirmed: bool) -> None:
    link = _reset_link(request, user)
    if confirmed:
        body = (
            "Someone tried to create a HealthSpace account with this email address, but you "
            "already have an account.\n\n"
            f"If it was you, log in at {_link(request, 'web:login')}\n"
            f"If you have forgotten your password, choose a new one within an hour here:\n{link}\n\n"
            "If it was not you, you need do nothing: nobody can use your account without "
            "your password."
        )
    else:
        body = (
            "Someone tried to create a HealthSpace account with this email address. An "
            "account was started with it before, but the email address was never confirmed.\n\n"
            "If it was you, choose a password within an hour with this link. Using it also "
            f"confirms your email address:\n{link}\n\n"
            "If it was not you, you need do nothing."
        )
    _send(user.email or user.username, "Creating a HealthSpace account", body)


def send_reset_link(request: HttpRequest, user) -> None:
    _send(
        user.email or user.username,
        "Reset your HealthSpace password",
        "You asked to reset your HealthSpace password.\n\n"
        f"Choose a new password within an hour with this link (it works once):\n"
        f"{_reset_link(request, user)}\n\n"
        "You will then log in with your new password and, if you have set one up, your "
        "second way of proving it is you.\n\n"
        "If you did not ask for this, you need do nothing: your password has not changed.",
    )


def send_no_account(request: HttpRequest, email: str) -> None:
    # Sent so that a reset request costs the same whether or not the account exists, and
    # because it helps someone who forgot which address they used.
    _send(
        email,
        "Reset your HealthSpace password",
        "Someone asked to reset the password of a HealthSpace account with this email "
        "address, but there is no HealthSpace account with it.\n\n"
        "If it was you, you may have used a different email address. You can also create "
        f"an account: {_link(request, 'accounts:register')}\n\n"
        "If it was not you, you need do nothing.",
    )


def send_password_changed(request: HttpRequest, user) -> None:
    _send(
        user.email or user.username,
        "Your HealthSpace password has been changed",
        "The password of your HealthSpace account has just been changed, and every other "
        "device logged in to your account has been logged out.\n\n"
        "If this was you, you need do nothing.\n"
        "If it was not you, reset your password now: "
        f"{_link(request, 'accounts:password-reset')}",
    )
