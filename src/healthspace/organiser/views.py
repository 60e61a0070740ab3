"""The health organiser's pages. Thin: parse a form, call one service or selector, render.

The owner is always the signed-in account (``request.user``), never an id from the URL
or a form; ids in URLs name rows that the selectors and services look up within that
owner's rows only, so another account's id is "not found".
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors.guards import scr_allowed_for_session, second_factor_url
from healthspace.consent.selectors import consent_state_for
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.organiser import forms as F
from healthspace.organiser import presenters as P
from healthspace.organiser import selectors as S
from healthspace.organiser import services
from healthspace.organiser import values as V
from healthspace.organiser.measures import GENERAL_TARGETS_NOTE, INFO, SCHEMES, Measure

PERIODS = {
    "1m": ("1 month", timedelta(days=31)),
    "3m": ("3 months", timedelta(days=92)),
    "1y": ("1 year", timedelta(days=366)),
    "all": ("All time", None),
}
DEFAULT_PERIOD = "1y"


def organiser_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (and, for a verified account, past its second factor). The selectors and
    services decide who may: the organiser is the account's own, basic or verified; staff
    are refused (audited) and get "not found", like any id that is not the caller's."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not scr_allowed_for_session(request):
            return redirect(second_factor_url())
        try:
            return view(request, actor_for_request(request), *args, **kwargs)
        except NotFound:
            return not_found(request)

    return wrapped


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "organiser/not_found.html", {}, status=404)


def _measure(slug: str) -> Measure:
    try:
        return Measure(slug)
    except ValueError:
        raise NotFound(S.NOT_FOUND) from None


def _tz():
    return timezone.get_current_timezone()


# --- overview and a measure's page ----------------------------------------------------


@endpoint(Action.ORGANISER_VIEW)
@require_GET
@organiser_page
def overview(request: HttpRequest, actor: Actor) -> HttpResponse:
    data = S.overview_for(actor=actor, owner_id=request.user.pk)
    cards = []
    for measure in P.MEASURE_ORDER:
        readings = data.readings.get(measure) or []
        chart = (
            P.reading_chart(measure, readings, tz=_tz(), chart_id=f"chart-{measure}", small=True)
            if readings
            else None
        )
        cards.append(
            {
                "measure": measure,
                "info": INFO[measure],
                "latest": data.latest(measure),
                "chart": chart,
            }
        )
    weights = data.readings.get(Measure.WEIGHT) or []
    bmi = P.bmi_chart(weights, tz=_tz(), chart_id="chart-bmi", small=True)
    return render(
        request,
        "organiser/overview.html",
        {
            "cards": cards,
            "bmi": bmi,
            "latest_bmi": weights[0].bmi if weights else None,
            "can_share": S.sharing_allowed(actor),
            "targets_note": GENERAL_TARGETS_NOTE,
        },
    )


@endpoint(Action.ORGANISER_VIEW)
@require_GET
@organiser_page
def measure_page(request: HttpRequest, actor: Actor, measure: str) -> HttpResponse:
    m = _measure(measure)
    period = request.GET.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    span = PERIODS[period][1]
    page = S.readings_for(
        actor=actor,
        owner_id=request.user.pk,
        measure=m,
        since=now() - span if span is not None else None,
    )
    chart = P.reading_chart(m, page.readings, tz=_tz(), chart_id=f"chart-{m}")
    bmi = (
        P.bmi_chart(page.readings, tz=_tz(), chart_id="chart-bmi") if m == Measure.WEIGHT else None
    )
    saved = request.GET.get("saved", "")
    saved_reading = next((r for r in page.readings if str(r.id) == saved), None)
    return render(
        request,
        "organiser/measure.html",
        {
            "measure": m,
            "info": INFO[m],
            "page": page,
            "chart": chart if page.readings else None,
            "bmi": bmi,
            "periods": PERIODS,
            "period": period,
            "saved": saved_reading,
            "advice": P.advice_for(saved_reading),
            "can_share": S.sharing_allowed(actor),
            "targets_note": GENERAL_TARGETS_NOTE,
        },
    )


# --- adding, changing and deleting a reading ------------------------------------------


def _reading_form_page(
    request: HttpRequest,
    form: F.ReadingForm,
    *,
    measure: Measure,
    reading: S.ReadingView | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "organiser/reading_form.html",
        {
            "form": form,
            "measure": measure,
            "info": INFO[measure],
            "schemes": SCHEMES[measure],
            "reading": reading,
        },
        status=status,
    )


@endpoint(Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def reading_add(request: HttpRequest, actor: Actor, measure: str) -> HttpResponse:
    m = _measure(measure)
    if request.method == "GET":
        # nothing is read or written yet; the service asks decide() on saving
        S.require(actor, Action.ORGANISER_CHANGE, request.user.pk)
        form = F.ReadingForm(measure=m, initial=F.date_initial(now(), "taken", "taken_time"))
        return _reading_form_page(request, form, measure=m)
    form = F.ReadingForm(request.POST, measure=m)
    if not form.is_valid():
        return _reading_form_page(request, form, measure=m, status=400)
    d = form.cleaned_data
    reading_id = services.reading_add(
        actor=actor,
        owner_id=request.user.pk,
        measure=m,
        taken_at=d["taken_at"],
        values=d["values"],
        entered=d["entered"],
        note=d["note"],
    )
    return redirect(f"{reverse('organiser:measure', args=[m])}?saved={reading_id}")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE, Action.READINGS_SHARE)
@require_http_methods(["GET", "POST"])
@organiser_page
def reading_edit(request: HttpRequest, actor: Actor, reading_id: uuid.UUID) -> HttpResponse:
    reading = S.reading_for(actor=actor, owner_id=request.user.pk, reading_id=reading_id)
    if request.method == "GET":
        initial = {
            **F.date_initial(reading.taken_at, "taken", "taken_time"),
            **V.form_initial(reading.entered),
            "note": reading.note,
        }
        form = F.ReadingForm(measure=reading.measure, initial=initial)
        return _reading_form_page(request, form, measure=reading.measure, reading=reading)
    form = F.ReadingForm(request.POST, measure=reading.measure)
    if not form.is_valid():
        return _reading_form_page(
            request, form, measure=reading.measure, reading=reading, status=400
        )
    d = form.cleaned_data
    services.reading_update(
        actor=actor,
        owner_id=request.user.pk,
        reading_id=reading.id,
        taken_at=d["taken_at"],
        values=d["values"],
        entered=d["entered"],
        note=d["note"],
    )
    return redirect(f"{reverse('organiser:measure', args=[reading.measure])}?saved={reading.id}")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE, Action.READINGS_SHARE)
@require_http_methods(["GET", "POST"])
@organiser_page
def reading_delete(request: HttpRequest, actor: Actor, reading_id: uuid.UUID) -> HttpResponse:
    reading = S.reading_for(actor=actor, owner_id=request.user.pk, reading_id=reading_id)
    if request.method == "GET":
        return render(
            request,
            "organiser/reading_delete.html",
            {"reading": reading, "info": INFO[reading.measure], "when": _when(reading.taken_at)},
        )
    services.reading_delete(actor=actor, owner_id=request.user.pk, reading_id=reading.id)
    return redirect("organiser:measure", measure=reading.measure)


def _when(moment) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


# --- sharing with the care team -------------------------------------------------------


@endpoint(Action.READINGS_SHARE, Action.ORGANISER_VIEW)
@require_http_methods(["GET", "POST"])
@organiser_page
def share(request: HttpRequest, actor: Actor, measure: str) -> HttpResponse:
    m = _measure(measure)
    error = ""
    if request.method == "POST":
        try:
            shown = [uuid.UUID(v) for v in request.POST.getlist("shown")]
            chosen = [uuid.UUID(v) for v in request.POST.getlist("share")]
        except ValueError:
            raise NotFound(S.NOT_FOUND) from None
        try:
            added, removed = services.readings_share_set(
                actor=actor,
                owner_id=request.user.pk,
                measure=m,
                shown_ids=shown,
                shared_ids=chosen,
            )
        except InvalidInput as exc:
            error = str(exc)
        else:
            return redirect(
                f"{reverse('organiser:measure', args=[m])}?shared={added}&unshared={removed}"
            )
    page = S.readings_for(actor=actor, owner_id=request.user.pk, measure=m, since=None)
    can_share = S.sharing_allowed(actor)
    return render(
        request,
        "organiser/share.html",
        {
            "measure": m,
            "info": INFO[m],
            "page": page,
            "can_share": can_share,
            # shared readings are additional information: staff see them only with the
            # patient's agreement to share it (or in an emergency)
            "additional_agreed": can_share
            and consent_state_for(patient_id=actor.patient_id) == ConsentState.CORE_AND_ADDITIONAL,
            "error": error,
        },
        status=400 if error else 200,
    )


# --- CSV ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "reading_id",
    "measure",
    "taken_at",
    "systolic_mmhg",
    "diastolic_mmhg",
    "value",
    "unit",
    "as_entered",
    "bmi",
    "shared_with_care_team",
    "note",
)
# A cell a spreadsheet would run as a formula (or that hides one after a tab or return)
# starts with one of these; it is prefixed with an apostrophe (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_row(r: S.ReadingView) -> list[str]:
    spec = INFO[r.measure]
    is_bp = r.measure == Measure.BLOOD_PRESSURE
    value = "" if is_bp else f"{next(iter(r.values.values())):g}"
    return [
        str(r.id),
        str(r.measure),
        timezone.localtime(r.taken_at).isoformat(timespec="seconds"),
        str(r.values["systolic"]) if is_bp else "",
        str(r.values["diastolic"]) if is_bp else "",
        value,
        spec.ucum,
        r.text,
        f"{r.bmi:g}" if r.bmi is not None else "",
        "yes" if r.shared else "no",
        r.note,
    ]


@endpoint(Action.ORGANISER_EXPORT)
@require_GET
@organiser_page
def export_csv(request: HttpRequest, actor: Actor) -> HttpResponse:
    chosen = request.GET.get("measure", "")
    m = _measure(chosen) if chosen else None
    readings = S.readings_for_export(actor=actor, owner_id=request.user.pk, measure=m)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in readings:
        writer.writerow([csv_safe(cell) for cell in csv_row(r)])
    # UTF-8 with a byte order mark, so that spreadsheet programs read accents right
    body = "\ufeff" + buffer.getvalue()
    response = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    name = f"healthspace-{m or 'readings'}-{timezone.localdate(now()):%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- diary ----------------------------------------------------------------------------


@endpoint(Action.ORGANISER_VIEW)
@require_GET
@organiser_page
def diary(request: HttpRequest, actor: Actor) -> HttpResponse:
    moment = now()
    data = S.diary_for(actor=actor, owner_id=request.user.pk, now=moment)
    return render(
        request,
        "organiser/diary.html",
        {"diary": data, "email": request.user.email or request.user.get_username()},
    )


def _appointment_page(request, form, *, appointment=None, status=200) -> HttpResponse:
    return render(
        request,
        "organiser/appointment_form.html",
        {
            "form": form,
            "appointment": appointment,
            "reminder_choices": F.REMINDER_CHOICES,
            "email": request.user.email or request.user.get_username(),
        },
        status=status,
    )


def _appointment_fields(d: dict) -> dict:
    return {
        "starts_at": d["starts_at"],
        "what": d["what"],
        "where": d["where"],
        "notes": d["notes"],
        "reminder": d["reminder"],
        "reminder_at": d["reminder_at"],
    }


@endpoint(Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def appointment_add(request: HttpRequest, actor: Actor) -> HttpResponse:
    if request.method == "GET":
        S.require(actor, Action.ORGANISER_CHANGE, request.user.pk)
        return _appointment_page(request, F.AppointmentForm(initial={"reminder": "1d"}))
    form = F.AppointmentForm(request.POST)
    if not form.is_valid():
        return _appointment_page(request, form, status=400)
    services.appointment_add(
        actor=actor, owner_id=request.user.pk, **_appointment_fields(form.cleaned_data)
    )
    return redirect("organiser:diary")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def appointment_edit(request: HttpRequest, actor: Actor, appointment_id: uuid.UUID) -> HttpResponse:
    a = S.appointment_for(actor=actor, owner_id=request.user.pk, appointment_id=appointment_id)
    sent = a.reminder_at if a.reminder_sent_at else None
    if request.method == "GET":
        initial = {
            "what": a.what,
            "where": a.where,
            "notes": a.notes,
            "reminder": a.reminder,
            **F.date_initial(a.starts_at, "starts", "starts_time"),
        }
        if a.reminder == "at" and a.reminder_at:
            initial.update(F.date_initial(a.reminder_at, "remind", "remind_time"))
        form = F.AppointmentForm(initial=initial, sent_reminder_at=sent)
        return _appointment_page(request, form, appointment=a)
    form = F.AppointmentForm(request.POST, sent_reminder_at=sent)
    if not form.is_valid():
        return _appointment_page(request, form, appointment=a, status=400)
    services.appointment_update(
        actor=actor,
        owner_id=request.user.pk,
        appointment_id=a.id,
        **_appointment_fields(form.cleaned_data),
    )
    return redirect("organiser:diary")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def appointment_delete(
    request: HttpRequest, actor: Actor, appointment_id: uuid.UUID
) -> HttpResponse:
    a = S.appointment_for(actor=actor, owner_id=request.user.pk, appointment_id=appointment_id)
    if request.method == "GET":
        return render(
            request,
            "organiser/appointment_delete.html",
            {"appointment": a, "when": _when(a.starts_at)},
        )
    services.appointment_delete(actor=actor, owner_id=request.user.pk, appointment_id=a.id)
    return redirect("organiser:diary")


# --- notes ----------------------------------------------------------------------------


@endpoint(Action.ORGANISER_VIEW)
@require_GET
@organiser_page
def notes(request: HttpRequest, actor: Actor) -> HttpResponse:
    return render(
        request,
        "organiser/notes.html",
        {"notes": S.notes_for(actor=actor, owner_id=request.user.pk)},
    )


def _note_page(request, form, *, note=None, status=200) -> HttpResponse:
    return render(request, "organiser/note_form.html", {"form": form, "note": note}, status=status)


@endpoint(Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def note_add(request: HttpRequest, actor: Actor) -> HttpResponse:
    if request.method == "GET":
        S.require(actor, Action.ORGANISER_CHANGE, request.user.pk)
        return _note_page(request, F.NoteForm())
    form = F.NoteForm(request.POST)
    if not form.is_valid():
        return _note_page(request, form, status=400)
    services.note_add(actor=actor, owner_id=request.user.pk, **form.cleaned_data)
    return redirect("organiser:notes")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def note_edit(request: HttpRequest, actor: Actor, note_id: uuid.UUID) -> HttpResponse:
    note = S.note_for(actor=actor, owner_id=request.user.pk, note_id=note_id)
    if request.method == "GET":
        return _note_page(
            request, F.NoteForm(initial={"title": note.title, "text": note.text}), note=note
        )
    form = F.NoteForm(request.POST)
    if not form.is_valid():
        return _note_page(request, form, note=note, status=400)
    services.note_update(
        actor=actor, owner_id=request.user.pk, note_id=note.id, **form.cleaned_data
    )
    return redirect("organiser:notes")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def note_delete(request: HttpRequest, actor: Actor, note_id: uuid.UUID) -> HttpResponse:
    note = S.note_for(actor=actor, owner_id=request.user.pk, note_id=note_id)
    if request.method == "GET":
        return render(request, "organiser/note_delete.html", {"note": note})
    services.note_delete(actor=actor, owner_id=request.user.pk, note_id=note.id)
    return redirect("organiser:notes")


# --- my medicines ---------------------------------------------------------------------


@endpoint(Action.ORGANISER_VIEW)
@require_GET
@organiser_page
def medicines(request: HttpRequest, actor: Actor) -> HttpResponse:
    items = S.medicines_for(actor=actor, owner_id=request.user.pk)
    return render(
        request,
        "organiser/medicines.html",
        {
            "current": [m for m in items if m.current],
            "stopped": [m for m in items if not m.current],
            "verified": actor.patient_id is not None,
        },
    )


def _medicine_page(request, form, *, medicine=None, status=200) -> HttpResponse:
    return render(
        request, "organiser/medicine_form.html", {"form": form, "medicine": medicine}, status=status
    )


def _medicine_fields(d: dict) -> dict:
    return {k: d[k] for k in ("name", "how", "what_for", "since", "stopped")}


@endpoint(Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def medicine_add(request: HttpRequest, actor: Actor) -> HttpResponse:
    if request.method == "GET":
        S.require(actor, Action.ORGANISER_CHANGE, request.user.pk)
        return _medicine_page(request, F.MedicineForm())
    form = F.MedicineForm(request.POST)
    if not form.is_valid():
        return _medicine_page(request, form, status=400)
    services.medicine_add(
        actor=actor, owner_id=request.user.pk, **_medicine_fields(form.cleaned_data)
    )
    return redirect("organiser:medicines")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def medicine_edit(request: HttpRequest, actor: Actor, medicine_id: uuid.UUID) -> HttpResponse:
    med = S.medicine_for(actor=actor, owner_id=request.user.pk, medicine_id=medicine_id)
    if request.method == "GET":
        initial = {
            "name": med.name,
            "how": med.how,
            "what_for": med.what_for,
            **F.month_year_initial(med.since, "since"),
            **F.month_year_initial(med.stopped, "stopped"),
        }
        return _medicine_page(request, F.MedicineForm(initial=initial), medicine=med)
    form = F.MedicineForm(request.POST)
    if not form.is_valid():
        return _medicine_page(request, form, medicine=med, status=400)
    services.medicine_update(
        actor=actor,
        owner_id=request.user.pk,
        medicine_id=med.id,
        **_medicine_fields(form.cleaned_data),
    )
    return redirect("organiser:medicines")


@endpoint(Action.ORGANISER_VIEW, Action.ORGANISER_CHANGE)
@require_http_methods(["GET", "POST"])
@organiser_page
def medicine_delete(request: HttpRequest, actor: Actor, medicine_id: uuid.UUID) -> HttpResponse:
    med = S.medicine_for(actor=actor, owner_id=request.user.pk, medicine_id=medicine_id)
    if request.method == "GET":
        return render(request, "organiser/medicine_delete.html", {"medicine": med})
    services.medicine_delete(actor=actor, owner_id=request.user.pk, medicine_id=med.id)
    return redirect("organiser:medicines")
