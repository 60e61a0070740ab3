"""The practice's correction requests: a queue (oldest first) and one request, where a
clinician of the practice reads what the patient said about an item and answers: amend
the item (a new version, with the reason) or keep it and explain why. Views adapt: a form
in, one service or selector out; access.decide answers inside each of them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.corrections import selectors, services
from healthspace.corrections.forms import ANSWERS, DecisionForm
from healthspace.corrections.selectors import QUEUE_FILTERS, STAFF_STATUS_WORDS
from healthspace.staff.privacy_views import when
from healthspace.staff.views import _render, staff_page


def _page(request: HttpRequest, actor: Actor, template: str, context: dict, status=200):
    return _render(request, actor, f"corrections/{template}", {"when": when, **context}, status)


def request_door(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Outside ``staff_page``: someone who is not staff, turned away from a request's
    page, is recorded in that request's patient's trail (as staff of another practice
    are, by access.decide), not only in their own."""
    inner = staff_page(view)
    action = view.access_primary  # type: ignore[attr-defined]

    @wraps(inner)
    def wrapped(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
        if request.user.is_authenticated:
            actor = actor_for_request(request)
            if actor.kind != "staff":
                services.correction_refusal_record(
                    actor=actor, action=action, request_id=request_id
                )
                raise Http404
        return inner(request, request_id=request_id)

    return wrapped


@staff_page
@endpoint(Action.CORRECTION_VIEW)
@require_GET
def queue(request: HttpRequest, actor: Actor) -> HttpResponse:
    try:
        found = selectors.practice_queue(actor=actor, status=request.GET.get("status", "open"))
    except NotFound as exc:
        raise Http404 from exc
    filters = [("open", "Waiting for an answer")] + [
        (s, STAFF_STATUS_WORDS[s]) for s in QUEUE_FILTERS[1:]
    ]
    return _page(request, actor, "queue.html", {"queue": found, "filters": filters})


@request_door
@endpoint(Action.CORRECTION_VIEW, Action.CORRECTION_DECIDE, Action.RECORD_AMEND)
@require_http_methods(["GET", "POST"])
def request_page(request: HttpRequest, actor: Actor, request_id: uuid.UUID) -> HttpResponse:
    try:
        review = services.correction_review(actor=actor, request_id=request_id)
    except NotFound as exc:
        raise Http404 from exc
    form = DecisionForm(request.POST if request.method == "POST" else None, options=review.options)
    if form.is_valid():
        try:
            services.correction_decide(
                actor=actor,
                request_id=request_id,
                amend=form.amend,
                explanation=form.cleaned_data["explanation"],
                changes=form.changes(),
            )
        except NotFound as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                "Your answer has been recorded. The patient has been told there is an answer.",
            )
            return redirect("staff-corrections:request", request_id=request_id)
    return _page(
        request,
        actor,
        "request.html",
        {"review": review, "form": form, "answers": ANSWERS},
        status=400 if form.errors else 200,
    )
