from __future__ import annotations

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.models import Passkey, PatientLink
from healthspace.accounts.sessions import services, throttle
from healthspace.accounts.sessions.compromise import account_secure_after_compromise
from healthspace.accounts.sessions.forms import CompromiseForm
from healthspace.ops.lifecycle import allowed_when_read_only


@endpoint(no_patient_data=True)
@login_required
@require_GET
def account_home(request: HttpRequest) -> HttpResponse:
    verified = PatientLink.objects.filter(user=request.user).exists()
    return render(request, "accounts/sessions/home.html", {"verified": verified})


@allowed_when_read_only
@endpoint(Action.ACCOUNT_COMPROMISE_REPORTED)
@login_required
def compromised(request: HttpRequest) -> HttpResponse:
    passkeys = list(Passkey.objects.filter(user=request.user).order_by("created_at"))
    form = CompromiseForm(request.POST or None, user=request.user, passkeys=passkeys)
    if request.method == "POST" and form.is_valid():
        secured = account_secure_after_compromise(
            request,
            new_password=form.cleaned_data["new_password"],
            passkey_ids=form.cleaned_data["passkeys"],
            note=form.cleaned_data["note"],
        )
        return render(
            request,
            "accounts/sessions/compromised_done.html",
            {"ended": secured.sessions_ended, "apps": secured.apps_disconnected},
        )
    return render(
        request, "accounts/sessions/compromised.html", {"form": form, "passkeys": passkeys}
    )


@endpoint(no_patient_data=True)
@login_required
@require_GET
def session_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "accounts/sessions/list.html", {"sessions": services.sessions_for(request)}
    )


@allowed_when_read_only
@endpoint(no_patient_data=True)
@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    services.session_end_one(request, session_id=session_id, reason="ended-by-owner")
    return redirect("accounts:sessions")


@allowed_when_read_only
@endpoint(no_patient_data=True)
@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    services.sessions_end_others(request, reason="ended-by-owner")
    return redirect("accounts:sessions")


@allowed_when_read_only
@endpoint(no_patient_data=True)
@login_required
@require_POST
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    services.sessions_end_all(request.user, reason="logout-everywhere")
    logout(request)
    return redirect("web:login")


@endpoint(no_patient_data=True)
@login_required
@require_GET
def keepalive(request: HttpRequest) -> HttpResponse:
    """The "Stay logged in" button: saves the session now, so its idle expiry restarts from this
    moment (other requests move it at most once a minute, SessionGuardMiddleware)."""
    request.session.modified = True
    return HttpResponse(status=204)


@endpoint(no_patient_data=True)
@require_GET
def unlock(request: HttpRequest, token: str) -> HttpResponse:
    ok = throttle.unlock_with_token(token)
    return render(request, "accounts/sessions/unlock.html", {"ok": ok}, status=200 if ok else 400)
