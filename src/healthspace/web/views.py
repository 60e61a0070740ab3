from django import forms
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors.guards import scr_allowed_for_session, second_factor_url
from healthspace.accounts.login import GENERIC_ERROR, UNCONFIRMED_ERROR, password_step
from healthspace.accounts.passwords.services import password_change_required
from healthspace.core.errors import NotFound
from healthspace.ops.lifecycle import allowed_when_read_only
from healthspace.records.selectors import scr_for


@endpoint(no_patient_data=True)
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {})


class LoginForm(forms.Form):
    username = forms.CharField(max_length=254)
    password = forms.CharField(max_length=1024, strip=False)


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if request.user.is_authenticated:
        return redirect(next_url or "web:record")
    form = LoginForm(request.POST or None)
    status, error, retry_after = 200, None, 0
    if request.method == "POST" and form.is_valid():
        outcome, _, retry_after = password_step(
            request, email=form.cleaned_data["username"], password=form.cleaned_data["password"]
        )
        if outcome == "done":
            if password_change_required(request.user):
                return redirect("accounts:password-change")
            return redirect(next_url or "web:record")
        if outcome == "second-factor":
            # encoded: a next page with its own query (& ? =) must arrive whole
            query = f"?{urlencode({'next': next_url})}" if next_url else ""
            return redirect(second_factor_url() + query)
        if outcome == "throttled":
            minutes = max(1, (retry_after + 59) // 60)
            error, status = (
                f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                429,
            )
        elif outcome == "unconfirmed":
            error = UNCONFIRMED_ERROR
        else:
            error = GENERIC_ERROR
    elif request.method == "POST":
        error = GENERIC_ERROR
    response = render(
        request, "web/login.html", {"form": form, "error": error, "next": next_url}, status=status
    )
    if status == 429:
        response["Retry-After"] = str(retry_after)
    return response


@allowed_when_read_only
@endpoint(no_patient_data=True)
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web:home")


@endpoint(Action.VIEW_SCR)
@login_required
def record(request: HttpRequest) -> HttpResponse:
    if not scr_allowed_for_session(request):
        return redirect(second_factor_url())
    actor = actor_for_request(request)
    if actor.kind == "staff":
        return redirect("staff:find")  # staff have no record of their own here
    try:
        scr = scr_for(actor=actor, patient_id=actor.patient_id)
    except NotFound:
        return render(request, "web/no_record.html", {}, status=404)
    return render(request, "web/record.html", {"scr": scr})
