"""Verification pages: a patient types their linkage details; a registration clerk issues
them or links an account in person; a new staff member sets up their login."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.factors import guards
from healthspace.accounts.linkage import selectors, services, staff
from healthspace.accounts.linkage.forms import (
    InPersonForm,
    NhsNumberForm,
    SetupForm,
    VerifyForm,
    error_list,
)
from healthspace.accounts.login import login_complete
from healthspace.core.errors import InvalidInput, NotFound

SETUP_IN_SESSION = "hs_staff_setup_token"
ALREADY_LINKED_ERROR = (
    "Your record is already linked to another HealthSpace account. Contact your GP practice."
)


def registration_clerk_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anyone but a registration clerk gets 'not found': these pages do not exist for them."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not selectors.is_registration_clerk(request.user):
            raise Http404
        # staff act only in a session that passed a passkey (phishing-resistant)
        if not guards.staff_allowed_for_session(request):
            return redirect(guards.second_factor_url())
        return view(request, *args, **kwargs)

    return wrapped


def _clerk(request: HttpRequest) -> dict[str, object]:
    return {
        "actor": actor_for_user(request.user),
        "actor_ods": selectors.staff_organisation_ods(user=request.user),
    }


# --- staff ------------------------------------------------------------------------------


@endpoint(Action.LINKAGE_LOOKUP)
@registration_clerk_only
@require_http_methods(["GET", "POST"])
def staff_linkage(request: HttpRequest) -> HttpResponse:
    # A POST, not a GET: an NHS number in the query string would end up in access logs.
    form = NhsNumberForm(request.POST or None)
    demographics = None
    if request.method == "POST" and form.is_valid():
        try:
            demographics = selectors.patient_demographics_for_clerk(
                **_clerk(request), nhs_number=form.cleaned_data["nhs_number"]
            )
        except NotFound as exc:
            form.add_error("nhs_number", str(exc))
    in_person = (
        InPersonForm(initial={"nhs_number": demographics.nhs_number}) if demographics else None
    )
    return render(
        request,
        "accounts/linkage/staff_linkage.html",
        {
            "form": form,
            "errors": error_list(form),
            "patient": demographics,
            "in_person": in_person,
        },
    )


@endpoint(Action.LINKAGE_ISSUE)
@registration_clerk_only
@require_POST
def staff_linkage_issue(request: HttpRequest) -> HttpResponse:
    form = NhsNumberForm(request.POST)
    if not form.is_valid():
        raise Http404
    try:
        issued = services.linkage_key_issue_for_nhs_number(
            **_clerk(request), nhs_number=form.cleaned_data["nhs_number"]
        )
    except (NotFound, InvalidInput) as exc:
        raise Http404 from exc
    # Shown in this response only: the key is not stored, so it can never be shown again.
    return render(
        request,
        "accounts/linkage/issued.html",
        {"issued": issued, "expires": services.format_expiry(issued.expires_at)},
    )


@endpoint(Action.ACCOUNT_LINK_IN_PERSON)
@registration_clerk_only
@require_POST
def staff_linkage_in_person(request: HttpRequest) -> HttpResponse:
    form = InPersonForm(request.POST)
    if form.is_valid():
        try:
            services.patient_link_in_person(
                **_clerk(request),
                email=form.cleaned_data["email"],
                nhs_number=form.cleaned_data["nhs_number"],
            )
        except NotFound as exc:
            form.add_error("nhs_number", str(exc))
        except InvalidInput as exc:
            form.add_error("email", str(exc))
        else:
            return render(request, "accounts/linkage/in_person_done.html", {})
    return render(
        request,
        "accounts/linkage/in_person.html",
        {"form": form, "errors": error_list(form, id_prefix="in_person_")},
    )


# --- patients ---------------------------------------------------------------------------


@endpoint(Action.LINKAGE_VERIFY)
@require_http_methods(["GET", "POST"])
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    status = selectors.verification_status(user=request.user)
    if status == "linked":
        return redirect("web:record")
    if status == "not-a-patient-account":
        raise Http404
    if status == "unconfirmed":
        return render(request, "accounts/linkage/verify_unconfirmed.html", {})
    # A second factor first: otherwise whoever knew only the password could, at the first
    # login after linking, register their own factor in front of the record.
    if not (guards.has_confirmed_factor(request.user) and guards.session_factor(request)):
        return render(request, "accounts/linkage/verify_needs_factor.html", {})
    form = VerifyForm(request.POST or None)
    error, http_status = None, 200
    if request.method == "POST" and form.is_valid():
        result = services.linkage_verify_step(request, details=form.details())
        if result.outcome == "done":
            # The record page asks for a second factor first where one is needed.
            return redirect("web:record")
        if result.outcome == "throttled":
            minutes = max(1, (result.retry_after_seconds + 59) // 60)
            error = f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
            http_status = 429
        elif result.outcome == "already-linked":
            error = ALREADY_LINKED_ERROR
        else:
            error = services.GENERIC_ERROR
    errors = error_list(form) or ([{"text": error, "href": "#id_account_id"}] if error else [])
    return render(
        request,
        "accounts/linkage/verify.html",
        {"form": form, "errors": errors},
        status=http_status,
    )


# --- staff set-up -----------------------------------------------------------------------


@endpoint(no_patient_data=True)
@require_GET
def staff_setup_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link printed by ``createstaff``."""
    if staff.staff_setup_user(token) is None:
        return render(request, "accounts/linkage/setup_invalid.html", {}, status=404)
    # Out of the address bar (history, screenshots, Referer) and into the session, as
    # Django's password reset does.
    request.session[SETUP_IN_SESSION] = token
    return redirect("accounts:staff-setup")


@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def staff_setup(request: HttpRequest) -> HttpResponse:
    token = request.session.get(SETUP_IN_SESSION) or ""
    user = staff.staff_setup_user(token) if token else None
    if user is None:
        return render(request, "accounts/linkage/setup_invalid.html", {}, status=404)
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = staff.staff_passcode_set(token=token, passcode=form.cleaned_data["passcode"])
        except ValidationError as exc:
            # As on the other password pages: the first rule that fails says what to do.
            form.add_error("passcode", exc.messages[0])
        except InvalidInput:
            return render(request, "accounts/linkage/setup_invalid.html", {}, status=404)
        else:
            request.session.pop(SETUP_IN_SESSION, None)
            login_complete(request, user, second_factor="")
            # Staff must register a passkey before they can do anything else.
            return redirect("accounts:passkey-add")
    return render(
        request,
        "accounts/linkage/setup.html",
        {"form": form, "errors": error_list(form), "email": user.get_username()},
    )
