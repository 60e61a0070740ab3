"""The patient's "What you have added" pages: communication preferences, access needs and
preferences for care, added, changed and removed by the patient (a verified account, on
their own record only)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.cases.views import own_record_page
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.corrections import additions, codes
from healthspace.corrections.codes import KINDS, Kind
from healthspace.corrections.forms import AdditionForm


def _kind(value: str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise Http404 from None


@endpoint(Action.VIEW_SCR)
@require_GET
@own_record_page
def home(request: HttpRequest, actor: Actor) -> HttpResponse:
    try:
        found = additions.own_additions(actor=actor)
    except NotFound:
        raise Http404 from None
    return render(
        request,
        "corrections/additions/home.html",
        {
            "groups": [(kind, KINDS[kind], found.of(kind)) for kind in Kind],
            "shared": found.consent == ConsentState.CORE_AND_ADDITIONAL,
            "consent": found.consent,
            "per_kind_max": codes.PER_KIND_MAX,
        },
    )


def _form_page(
    request: HttpRequest, kind: Kind, form: AdditionForm, addition_id: uuid.UUID | None
) -> HttpResponse:
    return render(
        request,
        "corrections/additions/form.html",
        {
            "kind": kind,
            "text": KINDS[kind],
            "options": codes.OPTIONS[kind],
            "form": form,
            "addition_id": addition_id,
            "details_max": codes.DETAILS_MAX,
        },
        status=400 if form.errors else 200,
    )


def _save(
    request: HttpRequest, actor: Actor, kind: Kind, addition_id: uuid.UUID | None
) -> HttpResponse | None:
    """The POST: the service's answer as a redirect, or None to show the form again."""
    form = AdditionForm(request.POST, kind=kind)
    if not form.is_valid():
        return _form_page(request, kind, form, addition_id)
    try:
        additions.addition_put(
            actor=actor,
            kind=kind,
            option_code=form.cleaned_data["option"],
            details=form.cleaned_data["details"],
            addition_id=addition_id,
        )
    except NotFound:
        raise Http404 from None
    except InvalidInput as exc:
        form.add_error(None, str(exc))
        return _form_page(request, kind, form, addition_id)
    messages.success(
        request,
        "Your change has been saved." if addition_id else "We have added it to your record.",
    )
    return redirect("additions:home")


@endpoint(Action.ADDITION_CHANGE)
@require_http_methods(["GET", "POST"])
@own_record_page
def add(request: HttpRequest, actor: Actor, kind: str) -> HttpResponse:
    chosen = _kind(kind)
    if request.method == "POST":
        return _save(request, actor, chosen, None)
    return _form_page(request, chosen, AdditionForm(kind=chosen), None)


@endpoint(Action.VIEW_SCR, Action.ADDITION_CHANGE)
@require_http_methods(["GET", "POST"])
@own_record_page
def change(request: HttpRequest, actor: Actor, addition_id: uuid.UUID) -> HttpResponse:
    try:
        found = additions.own_additions(actor=actor).get(addition_id)
    except NotFound:
        raise Http404 from None
    if request.method == "POST":
        return _save(request, actor, found.kind, addition_id)
    form = AdditionForm(
        initial={"option": found.option.code, "details": found.details}, kind=found.kind
    )
    return _form_page(request, found.kind, form, addition_id)


@endpoint(Action.VIEW_SCR, Action.ADDITION_CHANGE)
@require_http_methods(["GET", "POST"])
@own_record_page
def remove(request: HttpRequest, actor: Actor, addition_id: uuid.UUID) -> HttpResponse:
    """GET asks "are you sure"; the POST removes it."""
    if request.method == "POST":
        try:
            additions.addition_remove(actor=actor, addition_id=addition_id)
        except NotFound:
            raise Http404 from None
        messages.success(request, "We have removed it from your record.")
        return redirect("additions:home")
    try:
        found = additions.own_additions(actor=actor).get(addition_id)
    except NotFound:
        raise Http404 from None
    return render(
        request, "corrections/additions/remove.html", {"addition": found, "text": KINDS[found.kind]}
    )
