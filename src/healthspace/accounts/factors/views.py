"""Second-factor pages: the login's second step, setting factors up, managing them.

Every page works without JavaScript except creating or using a passkey, which the browser
does through JavaScript (WebAuthn); those pages say so and offer an authenticator app.
Nothing here takes an id from the URL path: a factor is picked by a form field and looked
up among the logged-in user's own factors only.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.factors import guards, selectors, services
from healthspace.accounts.factors.forms import (
    CodeForm,
    NameForm,
    PasskeyNameForm,
    PasswordForm,
    PickForm,
    RecoveryCodeForm,
    TotpConfirmForm,
)
from healthspace.ops.lifecycle import allowed_when_read_only

NEW_CODES_KEY = "hs_new_recovery_codes"
STAFF_PASSKEY_ONLY = (
    "Staff accounts must log in with a passkey. Authenticator apps and recovery codes "
    "cannot be used for staff accounts."
)
PASSKEY_FAILED = "Your passkey could not be checked. Try again, or choose another way to log in."
PASSKEY_NEEDS_JS = (
    "Using a passkey needs JavaScript, which is turned off or not supported in this "
    "browser. Turn it on, or choose another way to log in."
)
NEEDS_JS = (
    "Creating a passkey needs JavaScript, which is turned off or not supported in this "
    "browser. Set up an authenticator app instead, or use another browser."
)


def _safe_next(request: HttpRequest, candidate: str | None = None) -> str:
    if candidate is None:
        candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _after_login(next_url: str) -> str:
    return next_url or resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(name: str, next_url: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v not in (None, "")}
    if next_url:
        params["next"] = next_url
    return reverse(name) + (f"?{urlencode(params)}" if params else "")


def _wait_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _management_guard(request: HttpRequest, *, fresh: bool, back: str = "") -> str | None:
    """Where to send someone before they may change their factors, or None.

    A session that has not passed one of the user's factors changes nothing (it may be an
    older session, opened before a factor was added); adding or removing a factor also
    needs the password within the last 10 minutes (ASVS 7.5.1)."""
    back = back or request.get_full_path()
    if guards.has_usable_factor(request.user) and not guards.session_factor(request):
        return _with_next("accounts:two-factor-verify", back)
    if fresh and not services.password_recently_confirmed(request):
        return _with_next("accounts:two-factor-reauth", back)
    return None


def _show_codes_then(request: HttpRequest, codes: list[str], next_url: str) -> str:
    request.session[NEW_CODES_KEY] = codes
    return _with_next("accounts:recovery-codes", next_url)


# --- The login's second step (pending user) or a step-up (logged-in user) -------------------


def _second_step(request: HttpRequest, next_url: str) -> tuple[Any, str, HttpResponse | None]:
    """Who is taking the second step, and how; or where to send them instead: to the login
    when the password step expired (5 minutes) or never happened, onwards when this
    session already passed a factor."""
    user, mode = selectors.second_step_user(request)
    if user is None:
        return None, mode, redirect(_with_next("web:login", next_url))
    if mode == "step-up" and guards.session_factor(request):
        return user, mode, redirect(_after_login(next_url))
    return user, mode, None


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    user, mode, done = _second_step(request, next_url)
    if done is not None:
        return done
    factors = selectors.factors_for(user)
    if not factors.has_factor or (factors.staff and not factors.passkeys):
        if mode == "login":
            services.login_without_factor(request=request, user=user)
        if factors.staff:
            return redirect(_with_next("accounts:passkey-add", next_url))
        return redirect(_with_next("accounts:two-factor-setup", next_url))

    form = CodeForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST":
        if "passkey" in request.POST:
            # The passkey button without JavaScript (the script would have taken it over).
            error, status = PASSKEY_NEEDS_JS, 400
        elif factors.staff:
            error, status = STAFF_PASSKEY_ONLY, 403
        elif not factors.apps:
            error, status = "There is no authenticator app on this account. Use your passkey", 400
        elif form.is_valid():
            outcome = services.totp_verify(
                request=request, user=user, token=form.cleaned_data["code"]
            )
            if outcome.ok:
                services.second_factor_complete(request=request, user=user, kind="totp")
                return redirect(_after_login(next_url))
            if outcome.reason == "throttled":
                error, status = _wait_message(outcome.retry_after), 429
            else:
                error = "The code is not correct. Enter the code your app shows now"
        else:
            error = form.errors["code"][0]
    return render(
        request,
        "accounts/factors/verify.html",
        {
            "factors": factors,
            "form": form,
            "error": error,
            "next": next_url,
            "mode": mode,
            "show_app": bool(factors.apps) and not factors.staff,
            # Which field the error belongs to: the code, or the passkey button.
            "error_on": "passkey" if error in (PASSKEY_NEEDS_JS, STAFF_PASSKEY_ONLY) else "code",
        },
        status=status,
    )


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def verify_recovery(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    user, _mode, done = _second_step(request, next_url)
    if done is not None:
        return done
    factors = selectors.factors_for(user)
    form = RecoveryCodeForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST":
        if factors.staff:
            error, status = STAFF_PASSKEY_ONLY, 403
        elif form.is_valid():
            outcome = services.recovery_code_use(
                request=request, user=user, code=form.cleaned_data["code"]
            )
            if outcome.ok:
                services.second_factor_complete(request=request, user=user, kind="recovery")
                messages.info(
                    request,
                    "You used a recovery code. If you have lost your phone or security key, "
                    "remove it and set up a new way to log in.",
                )
                return redirect(_with_next("accounts:two-factor", next_url))
            if outcome.reason == "throttled":
                error, status = _wait_message(outcome.retry_after), 429
            else:
                error = "Enter a recovery code you have not used before"
        else:
            error = form.errors["code"][0]
    return render(
        request,
        "accounts/factors/verify_recovery.html",
        {"factors": factors, "form": form, "error": error, "next": next_url},
        status=status,
    )


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_POST
def passkey_login_options(request: HttpRequest) -> JsonResponse:
    user, _ = selectors.second_step_user(request)
    if user is None:
        return JsonResponse(
            {"error": "Your login has timed out. Log in again.", "redirect": reverse("web:login")},
            status=401,
        )
    options = services.passkey_authentication_begin(request=request, user=user)
    if options is None:
        return JsonResponse({"error": "There is no passkey on this account."}, status=400)
    return JsonResponse({"publicKey": options})


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_POST
def passkey_login(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    next_url = _safe_next(request, str(body.get("next") or ""))
    user, _ = selectors.second_step_user(request)
    if user is None:
        return JsonResponse(
            {"error": "Your login has timed out. Log in again.", "redirect": reverse("web:login")},
            status=401,
        )
    credential = body.get("credential")
    if not isinstance(credential, dict):
        return JsonResponse({"error": PASSKEY_FAILED}, status=400)
    outcome = services.passkey_authentication_finish(
        request=request, user=user, credential=credential
    )
    if outcome.reason == "throttled":
        return JsonResponse({"error": _wait_message(outcome.retry_after)}, status=429)
    if not outcome.ok:
        return JsonResponse({"error": PASSKEY_FAILED}, status=400)
    services.second_factor_complete(request=request, user=user, kind="passkey")
    return JsonResponse({"redirect": _after_login(next_url)})


# --- Setting factors up -------------------------------------------------------------------


@endpoint(no_patient_data=True)
@login_required
@require_GET
def setup(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    factors = selectors.factors_for(request.user)
    if factors.staff:
        return redirect(_with_next("accounts:passkey-add", next_url))
    return render(
        request,
        "accounts/factors/setup.html",
        {"factors": factors, "next": next_url},
    )


@endpoint(Action.ACCOUNT_SECOND_FACTOR_CHANGED)
@login_required
@require_http_methods(["GET", "POST"])
def totp_setup(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if guards.is_staff_account(request.user):
        return render(request, "accounts/factors/staff_passkey_only.html", {}, status=403)
    where = _management_guard(request, fresh=True, back=_with_next("accounts:totp-setup", next_url))
    if where:
        return redirect(where)
    form = TotpConfirmForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST":
        if form.is_valid():
            outcome = services.totp_device_confirm(
                request=request,
                user=request.user,
                device_id=form.cleaned_data["device"],
                token=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
            )
            if outcome.ok:
                services.factor_added_in_session(request=request, kind="totp")
                if outcome.recovery_codes:
                    return redirect(_show_codes_then(request, outcome.recovery_codes, next_url))
                messages.success(request, "Your authenticator app is set up")
                return redirect(next_url or reverse("accounts:two-factor"))
            if outcome.reason == "throttled":
                error, status = _wait_message(outcome.retry_after), 429
            elif outcome.reason == "setup-expired":
                error = "The set-up timed out. Scan the new QR code and enter a new code"
            else:
                error = "The code is not correct. Enter the code your app shows now"
        else:
            error = next(iter(form.errors.values()))[0]
    device = services.totp_device_start(user=request.user)
    return render(
        request,
        "accounts/factors/totp_setup.html",
        {
            "device_id": device.pk,
            "qr_svg": services.totp_qr_svg(device),
            "secret": services.totp_secret_grouped(device),
            "form": form,
            "error": error,
            "next": next_url,
        },
        status=status,
    )


@endpoint(no_patient_data=True)
@login_required
@require_http_methods(["GET", "POST"])
def passkey_add(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    where = _management_guard(
        request, fresh=True, back=_with_next("accounts:passkey-add", next_url)
    )
    if where:
        return redirect(where)
    error, status = None, 200
    if request.method == "POST":
        # Only reached without JavaScript: the script posts JSON to the endpoints below.
        error, status = NEEDS_JS, 400
    return render(
        request,
        "accounts/factors/passkey_add.html",
        {
            "factors": selectors.factors_for(request.user),
            "error": error,
            "next": next_url,
            "form": PasskeyNameForm(request.POST or None),
        },
        status=status,
    )


def _json_guard(request: HttpRequest) -> JsonResponse | None:
    if not request.user.is_authenticated:
        return JsonResponse(
            {"error": "You are not logged in.", "redirect": reverse("web:login")}, status=401
        )
    where = _management_guard(request, fresh=True, back=reverse("accounts:passkey-add"))
    if where:
        return JsonResponse(
            {"error": "Confirm it is you before adding a passkey.", "redirect": where},
            status=403,
        )
    return None


@endpoint(no_patient_data=True)
@require_POST
def passkey_add_options(request: HttpRequest) -> JsonResponse:
    refused = _json_guard(request)
    if refused:
        return refused
    return JsonResponse(
        {"publicKey": services.passkey_registration_begin(request=request, user=request.user)}
    )


@endpoint(Action.ACCOUNT_SECOND_FACTOR_CHANGED)
@require_POST
def passkey_add_verify(request: HttpRequest) -> JsonResponse:
    refused = _json_guard(request)
    if refused:
        return refused
    body = _json_body(request)
    next_url = _safe_next(request, str(body.get("next") or ""))
    credential = body.get("credential")
    form = PasskeyNameForm({"name": body.get("name") or ""})
    if not isinstance(credential, dict) or not form.is_valid():
        return JsonResponse({"error": "The passkey could not be added. Try again."}, status=400)
    outcome = services.passkey_registration_finish(
        request=request, user=request.user, credential=credential, name=form.cleaned_data["name"]
    )
    if not outcome.ok:
        message = (
            "This passkey is already set up for HealthSpace."
            if outcome.reason == "already-registered"
            else "The passkey could not be added. Try again."
        )
        return JsonResponse({"error": message}, status=400)
    services.factor_added_in_session(request=request, kind="passkey")
    if outcome.recovery_codes:
        return JsonResponse(
            {"redirect": _show_codes_then(request, outcome.recovery_codes, next_url)}
        )
    messages.success(request, "Your passkey is set up")
    return JsonResponse({"redirect": next_url or reverse("accounts:two-factor")})


# --- Managing factors ---------------------------------------------------------------------


@endpoint(no_patient_data=True)
@login_required
@require_GET
def manage(request: HttpRequest) -> HttpResponse:
    where = _management_guard(request, fresh=False)
    if where:
        return redirect(where)
    return render(
        request,
        "accounts/factors/manage.html",
        {"factors": selectors.factors_for(request.user)},
    )


@endpoint(no_patient_data=True)
@login_required
@require_http_methods(["GET", "POST"])
def passkey_rename(request: HttpRequest) -> HttpResponse:
    where = _management_guard(request, fresh=False)
    if where:
        return redirect(where)
    form = NameForm(request.POST or None, initial={"id": request.GET.get("id")})
    pick = PickForm(request.POST or request.GET)
    passkey = (
        selectors.passkey_of(request.user, pick.cleaned_data["id"]) if pick.is_valid() else None
    )
    if passkey is None:
        return render(request, "accounts/factors/not_found.html", {}, status=404)
    if request.method == "POST" and form.is_valid():
        services.passkey_rename(
            user=request.user, passkey_id=passkey.id, name=form.cleaned_data["name"]
        )
        messages.success(request, "Passkey renamed")
        return redirect("accounts:two-factor")
    error = next(iter(form.errors.values()))[0] if request.method == "POST" else None
    return render(
        request,
        "accounts/factors/passkey_rename.html",
        {"passkey": passkey, "error": error},
        status=400 if error else 200,
    )


def _remove(request: HttpRequest, *, what: str) -> HttpResponse:
    pick = PickForm(request.POST or request.GET)
    item_id = pick.cleaned_data["id"] if pick.is_valid() else None
    route = "accounts:passkey-remove" if what == "passkey" else "accounts:totp-remove"
    where = _management_guard(request, fresh=True, back=_with_next(route, "", id=item_id))
    if where:
        return redirect(where)
    if what == "passkey":
        item = selectors.passkey_of(request.user, item_id) if item_id else None
    else:
        item = selectors.app_of(request.user, item_id) if item_id else None
    if item is None:
        return render(request, "accounts/factors/not_found.html", {}, status=404)
    factors = selectors.factors_for(request.user)
    error = None
    if request.method == "POST":
        if what == "passkey":
            outcome = services.passkey_remove(user=request.user, passkey_id=item.id)
            ok, error = (
                outcome.ok,
                (
                    "You cannot remove your only passkey. Add another passkey first."
                    if outcome.reason == "last-staff-passkey"
                    else None
                ),
            )
        else:
            ok = services.totp_device_remove(user=request.user, device_id=item.id)
        if ok:
            messages.success(request, f"{item.name} removed")
            return redirect("accounts:two-factor")
    return render(
        request,
        "accounts/factors/remove.html",
        {
            "item": item,
            "what": what,
            "route": route,
            "factors": factors,
            "last": factors.count == 1,
            "verified": guards.is_verified_patient(request.user),
            "error": error,
        },
        status=400 if error else 200,
    )


@endpoint(Action.ACCOUNT_SECOND_FACTOR_CHANGED)
@login_required
@require_http_methods(["GET", "POST"])
def passkey_remove(request: HttpRequest) -> HttpResponse:
    return _remove(request, what="passkey")


@endpoint(Action.ACCOUNT_SECOND_FACTOR_CHANGED)
@login_required
@require_http_methods(["GET", "POST"])
def totp_remove(request: HttpRequest) -> HttpResponse:
    return _remove(request, what="app")


@endpoint(no_patient_data=True)
@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    new_codes = request.session.pop(NEW_CODES_KEY, None)
    factors = selectors.factors_for(request.user)
    if new_codes is None:
        where = _management_guard(
            request,
            fresh=request.method == "POST",
            back=reverse("accounts:recovery-codes"),
        )
        if where:
            return redirect(where)
    if request.method == "POST" and not factors.staff:
        if not factors.has_factor:
            return redirect("accounts:two-factor-setup")
        codes = services.recovery_codes_regenerate(user=request.user)
        return redirect(_show_codes_then(request, codes, next_url))
    return render(
        request,
        "accounts/factors/recovery_codes.html",
        {
            "codes": new_codes,
            "factors": factors,
            "next": next_url,
            "continue_url": _after_login(next_url),
        },
    )


@endpoint(no_patient_data=True)
@login_required
@require_http_methods(["GET", "POST"])
def reauth(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    form = PasswordForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST":
        if form.is_valid():
            outcome = services.password_reconfirm(
                request=request, user=request.user, password=form.cleaned_data["password"]
            )
            if outcome.ok:
                return redirect(next_url or reverse("accounts:two-factor"))
            if outcome.reason == "throttled":
                error, status = _wait_message(outcome.retry_after), 429
            else:
                error = "Enter your password correctly"
        else:
            error = form.errors["password"][0]
    return render(
        request,
        "accounts/factors/reauth.html",
        {"error": error, "next": next_url},
        status=status,
    )
