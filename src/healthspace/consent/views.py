"""The patient's page: "Your choices about your Summary Care Record"."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from healthspace.access.context import ConsentState
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors import guards
from healthspace.consent import rules
from healthspace.consent.forms import STATE_TEXT, ChoiceForm
from healthspace.consent.models import Source
from healthspace.consent.selectors import consent_overview, consent_state_for
from healthspace.consent.services import consent_change
from healthspace.core.errors import InvalidInput

SOURCE_TEXT = {s.value: s.label for s in Source}


def _page(request: HttpRequest, *, form: ChoiceForm | None = None, error: str = "", status=200):
    # The record is the session's, never one named in the URL or form.
    patient_id = request.user.patient_link.patient_id
    state, history = consent_overview(actor=actor_for_request(request), patient_id=patient_id)
    allowed = rules.choices_from(state, Source.PATIENT_ONLINE)
    form = form or ChoiceForm(allowed=allowed)
    if form.is_bound and not error:
        error = (form.errors.get("choice") or [""])[0]
    context = {
        "state": state,
        "state_text": STATE_TEXT,
        "source_text": SOURCE_TEXT,
        "history": history,
        "allowed": allowed,
        "error": error,
        "hidden": state in (ConsentState.HIDDEN, ConsentState.DELETION_REQUESTED),
    }
    return render(request, "consent/choices.html", context, status=status)


def _guard(request: HttpRequest) -> HttpResponse | None:
    if not guards.scr_allowed_for_session(request):
        return redirect(guards.second_factor_url())
    if getattr(request.user, "patient_link", None) is None:
        return render(request, "web/no_record.html", {}, status=404)
    return None


@endpoint(Action.CONSENT_VIEW)
@login_required
@require_http_methods(["GET", "POST"])
def choices(request: HttpRequest) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    if request.method == "GET":
        return _page(request)
    patient_id = request.user.patient_link.patient_id
    allowed = rules.choices_from(consent_state_for(patient_id=patient_id), Source.PATIENT_ONLINE)
    form = ChoiceForm(request.POST, allowed=allowed)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    choice = ConsentState(form.cleaned_data["choice"])
    return render(request, "consent/confirm.html", {"choice": choice, "text": STATE_TEXT[choice]})


@endpoint(Action.CONSENT_CHANGE)
@login_required
@require_POST
def confirm(request: HttpRequest) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    try:
        consent_change(
            actor=actor_for_request(request),
            patient_id=request.user.patient_link.patient_id,
            new_state=request.POST.get("choice", ""),
            source=Source.PATIENT_ONLINE,
        )
    except InvalidInput as exc:
        return _page(request, error=str(exc), status=400)
    return redirect("consent:saved")


@endpoint(Action.CONSENT_VIEW)
@login_required
def saved(request: HttpRequest) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    state, _ = consent_overview(
        actor=actor_for_request(request), patient_id=request.user.patient_link.patient_id
    )
    return render(request, "consent/saved.html", {"state": state, "text": STATE_TEXT[state]})
