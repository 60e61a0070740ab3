"""The patient's "Who has looked at your record" pages and "I don't recognise this"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache, wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request, facts_for_request
from healthspace.accounts.factors.guards import scr_allowed_for_session, second_factor_url
from healthspace.accounts.services import staff_view_emails_set
from healthspace.cases.selectors import own_access_history, own_entry
from healthspace.cases.services import NOTE_MAX, case_open_not_recognised
from healthspace.core.errors import NotFound
from healthspace.records.models import Section

NOTE_TOO_LONG = f"What looks wrong must be {NOTE_MAX} characters or fewer"


_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def when_in_words(moment: datetime) -> str:
    """``4 December 2026 at 6:05pm``, UK time: 50 times a page, so no strftime."""
    local = timezone.localtime(moment)
    hour = local.hour % 12 or 12
    noon = "am" if local.hour < 12 else "pm"
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} at {hour}:{local.minute:02d}{noon}"


def own_record_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, past the second factor, and with a linked record; passes the actor whose
    patient_id comes from the session's own PatientLink (never from the request)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not scr_allowed_for_session(request):
            return redirect(second_factor_url())
        actor = actor_for_request(request)
        if actor.kind != "patient" or actor.patient_id is None:
            return render(request, "web/no_record.html", {}, status=404)
        return view(request, actor, *args, **kwargs)

    return wrapped


class EventForm(forms.Form):
    event_id = forms.IntegerField(min_value=1)


class NoteForm(EventForm):
    note = forms.CharField(
        max_length=NOTE_MAX,
        required=False,
        error_messages={"max_length": NOTE_TOO_LONG},
    )


@endpoint(Action.ACCESS_LOG_VIEW)
@require_GET
@own_record_page
def who_has_looked(request: HttpRequest, actor: Actor) -> HttpResponse:
    before = request.GET.get("before", "")
    page = own_access_history(
        actor=actor,
        patient_id=actor.patient_id,
        before=int(before) if before.isdigit() else None,
    )
    return render(
        request,
        "cases/who_has_looked.html",
        {
            "page": page,
            "when": when_in_words,
            "older": before.isdigit(),
            "section_words": section_words,
            "notify": facts_for_request(request).notify_staff_views,
        },
    )


def section_words(keys: list[str]) -> str:
    labels = _section_labels()
    return ", ".join(labels.get(k) or k.lower() for k in keys)


@cache  # the sections are fixed (records.models.Section); up to 50 rows a page ask
def _section_labels() -> dict[str, str]:
    return {value: str(label).lower() for value, label in Section.choices}


@endpoint(no_patient_data=True)  # the signed-in person's own email preference
@require_POST
@own_record_page
def notify(request: HttpRequest, actor: Actor) -> HttpResponse:
    wanted = request.POST.get("notify") == "on"
    staff_view_emails_set(user=request.user, wanted=wanted)
    messages.success(
        request,
        "We will email you when staff look at your record."
        if wanted
        else "We will not email you when staff look at your record.",
    )
    return redirect("cases:who-has-looked")


@endpoint(Action.CASE_OPEN)
@require_POST
@own_record_page
def not_recognised(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Step 1 (no ``confirm``): ask what looks wrong. Step 2: open the case."""
    confirming = "confirm" in request.POST
    form = (NoteForm if confirming else EventForm)(request.POST)
    if "event_id" in form.errors:
        raise Http404
    event_id = form.cleaned_data["event_id"]  # form.errors above ran the validation
    try:
        entry = own_entry(patient_id=actor.patient_id, audit_event_id=event_id)
    except NotFound:
        raise Http404 from None
    if confirming and form.is_valid():
        case_open_not_recognised(
            actor=actor,
            patient_id=actor.patient_id,
            audit_event_id=event_id,
            note=form.cleaned_data["note"],
        )
        return redirect("cases:reported")
    errors = form.errors.get("note") if confirming else None
    return render(
        request,
        "cases/not_recognised.html",
        {
            "entry": entry,
            "when": when_in_words,
            "note": request.POST.get("note", "")[: NOTE_MAX * 2],
            "error": errors[0] if errors else None,
            "note_max": NOTE_MAX,
        },
        status=200 if not errors else 400,
    )


@endpoint(no_patient_data=True)
@require_GET
@own_record_page
def reported(request: HttpRequest, actor: Actor) -> HttpResponse:
    return render(request, "cases/reported.html", {})
