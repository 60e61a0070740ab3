"""Pages for registration, email confirmation, changing and resetting a password.

Each view parses a form, calls one service and renders. Pages that answer "is there an
account with this address?" always render the same thing whatever the answer.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.endpoints import endpoint
from healthspace.accounts.passwords import forms, services
from healthspace.accounts.passwords.services import ChangeOutcome, ConfirmOutcome
from healthspace.ops import lifecycle
from healthspace.ops.lifecycle import allowed_when_read_only

T = "accounts/passwords/"
SENT_TO = "hs_email_sent_to"  # shown on "check your email" so a typo can be spotted
# kept in the session, out of the address bar and history
RESET_TOKEN = "hs_reset_token"  # noqa: S105 (a session key name, not a secret)


def _throttled(request: HttpRequest, retry_after: int) -> HttpResponse:
    minutes = max(1, (retry_after + 59) // 60)
    response = render(request, T + "throttled.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


# -- registration ----------------------------------------------------------------------


def _registrations_closed(request: HttpRequest) -> HttpResponse:
    status = 403 if request.method == "POST" else 200
    return render(request, "ops/registration_closed.html", {}, status=status)


@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:record")
    if not lifecycle.status().registrations_open:
        return _registrations_closed(request)
    form = forms.RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            verdict = services.account_register(
                request, email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except services.RegistrationsClosed:  # closed since this process last looked
            return _registrations_closed(request)
        if not verdict.allowed:
            return _throttled(request, verdict.retry_after_seconds)
        request.session[SENT_TO] = form.cleaned_data["email"].strip().lower()
        return redirect("accounts:register-sent")
    return render(request, T + "register.html", {"form": form})


@endpoint(no_patient_data=True)
@require_GET
def register_sent(request: HttpRequest) -> HttpResponse:
    return render(request, T + "register_sent.html", {"email": request.session.get(SENT_TO)})


@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def confirm_email(request: HttpRequest, token: str) -> HttpResponse:
    # GET only looks: link scanners in mail systems open links, and must not confirm.
    if request.method == "POST":
        outcome = services.email_confirm(token=token)
    else:
        outcome = services.confirmation_check(token)
    status = 400 if outcome in (ConfirmOutcome.EXPIRED, ConfirmOutcome.INVALID) else 200
    return render(
        request,
        T + "confirm.html",
        {"outcome": outcome.value, "done": request.method == "POST"},
        status=status,
    )


# -- change (logged in) ----------------------------------------------------------------


@allowed_when_read_only
@endpoint(no_patient_data=True)
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = forms.ChangePasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.password_change(
            request,
            current_password=form.cleaned_data["current_password"],
            new_password=form.cleaned_data["password"],
        )
        if result.outcome is ChangeOutcome.CHANGED:
            return redirect("accounts:password-change-done")
        if result.outcome is ChangeOutcome.THROTTLED:
            return _throttled(request, result.retry_after_seconds)
        if result.outcome is ChangeOutcome.WRONG_CURRENT:
            form.add_error("current_password", "Your current password is not correct")
        else:
            form.add_error("password", "Your new password must be different from your current one")
    return render(
        request,
        T + "change.html",
        {"form": form, "required": services.password_change_required(request.user)},
    )


@endpoint(no_patient_data=True)
@login_required
@require_GET
def password_change_done(request: HttpRequest) -> HttpResponse:
    return render(request, T + "change_done.html", {})


# -- reset by email --------------------------------------------------------------------


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    form = forms.EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        verdict = services.password_reset_request(request, email=form.cleaned_data["email"])
        if not verdict.allowed:
            return _throttled(request, verdict.retry_after_seconds)
        request.session[SENT_TO] = form.cleaned_data["email"].strip().lower()
        return redirect("accounts:password-reset-sent")
    return render(request, T + "reset.html", {"form": form})


@endpoint(no_patient_data=True)
@require_GET
def password_reset_sent(request: HttpRequest) -> HttpResponse:
    return render(request, T + "reset_sent.html", {"email": request.session.get(SENT_TO)})


@endpoint(no_patient_data=True)
@require_GET
def password_reset_link(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: check it, keep it in the session, and move to a plain address so
    the token does not stay in the browser's history or reach another page."""
    if services.password_reset_user(token=token) is None:
        return render(request, T + "reset_invalid.html", {}, status=400)
    request.session[RESET_TOKEN] = token
    return redirect("accounts:password-reset-new")


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def password_reset_new(request: HttpRequest) -> HttpResponse:
    user = services.password_reset_user(token=request.session.get(RESET_TOKEN, ""))
    if user is None:
        return render(request, T + "reset_invalid.html", {}, status=400)
    form = forms.NewPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.password_reset_complete(request, user=user, password=form.cleaned_data["password"])
        request.session.pop(RESET_TOKEN, None)
        return redirect("accounts:password-reset-done")
    return render(request, T + "reset_new.html", {"form": form})


@endpoint(no_patient_data=True)
@require_GET
def password_reset_done(request: HttpRequest) -> HttpResponse:
    return render(request, T + "reset_done.html", {})


@endpoint(no_patient_data=True)
@require_GET
def password_help(request: HttpRequest) -> HttpResponse:
    return render(request, T + "help.html", {})
