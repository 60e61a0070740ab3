"""The patient's correction pages: "This looks wrong" on an item, their requests and the
practice's answers. Views adapt: a form in, one service or selector out. The record is
always the signed-in patient's own (from the session); ids in the paths are checked
against it, and another patient's id is "not found" as a missing one is."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.cases.views import own_record_page, when_in_words
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.corrections import selectors, services
from healthspace.corrections.forms import ReportForm
from healthspace.corrections.services import WORDS_MAX, AlreadyAsked


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(
        request, f"corrections/{template}", {"when": when_in_words, **context}, status=status
    )


@endpoint(Action.VIEW_SCR, Action.CORRECTION_REQUEST)
@require_http_methods(["GET", "POST"])
@own_record_page
def report(request: HttpRequest, actor: Actor, item_id: int) -> HttpResponse:
    """Step 1 shows the item and asks what is wrong; the POST sends it to the practice."""
    try:
        target = selectors.report_target(actor=actor, item_id=item_id)
    except NotFound:
        raise Http404 from None
    if target.item.patient_recorded:
        return redirect("additions:home")  # what they added, they change themselves
    if target.open_request is not None:
        return redirect("corrections:detail", request_id=target.open_request)
    form = ReportForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            request_id = services.correction_request(
                actor=actor,
                item_id=item_id,
                wrong=form.cleaned_data["wrong"],
                should_say=form.cleaned_data["should_say"],
            )
        except AlreadyAsked as exc:
            return redirect("corrections:detail", request_id=exc.request_id)
        except NotFound:
            raise Http404 from None
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"We have sent your request to {target.practice or 'your GP practice'}."
            )
            return redirect("corrections:detail", request_id=request_id)
    return _page(
        request,
        "report.html",
        {"target": target, "form": form, "words_max": WORDS_MAX},
        status=400 if form.errors else 200,
    )


@endpoint(Action.CORRECTION_VIEW)
@require_GET
@own_record_page
def requests(request: HttpRequest, actor: Actor) -> HttpResponse:
    try:
        found = selectors.own_corrections(actor=actor)
    except NotFound:
        raise Http404 from None
    return _page(request, "requests.html", {"requests": found})


@endpoint(Action.CORRECTION_VIEW)
@require_GET
@own_record_page
def detail(request: HttpRequest, actor: Actor, request_id: uuid.UUID) -> HttpResponse:
    try:
        found = selectors.own_correction(actor=actor, request_id=request_id)
    except NotFound:
        raise Http404 from None
    return _page(request, "detail.html", {"req": found})


@endpoint(Action.CORRECTION_VIEW, Action.CORRECTION_REQUEST)
@require_http_methods(["GET", "POST"])
@own_record_page
def withdraw(request: HttpRequest, actor: Actor, request_id: uuid.UUID) -> HttpResponse:
    """GET asks "are you sure"; the POST withdraws."""
    error = None
    if request.method == "POST":
        try:
            services.correction_withdraw(actor=actor, request_id=request_id)
        except NotFound:
            raise Http404 from None
        except InvalidInput as exc:
            error = str(exc)
        else:
            return redirect("corrections:detail", request_id=request_id)
    try:
        found = selectors.own_correction(actor=actor, request_id=request_id)
    except NotFound:
        raise Http404 from None
    if not found.open and error is None:
        return redirect("corrections:detail", request_id=request_id)
    return _page(
        request, "withdraw.html", {"req": found, "error": error}, status=400 if error else 200
    )
