"""The privacy officer's console: alerts and cases, unhide requests, deletion requests.
Views adapt: a form in, one service or selector out. Whether the person may do any of it
is access.decide's, asked by each service and selector; anyone else gets "not found"."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.cases import selectors, services
from healthspace.cases.models import PrivacyCase
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.staff.privacy_forms import (
    UNHIDE_CHOICES,
    CaseDecisionForm,
    QueueFilterForm,
    RequestDecisionForm,
    UnhideRequestForm,
)
from healthspace.staff.views import _render, staff_page


def when(moment: datetime | date | None) -> str:
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return f"{moment.day} {moment:%B %Y}"
    local = timezone.localtime(moment)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def _page(request: HttpRequest, actor: Actor, template: str, context: dict, status=200):
    return _render(request, actor, f"privacy/{template}", {"when": when, **context}, status=status)


def _bound(form_class, request: HttpRequest):
    # an empty POST is still a submission: it must show its errors, not a fresh form
    return form_class(request.POST if request.method == "POST" else None)


@staff_page
@endpoint(Action.CASE_VIEW)
@require_GET
def queue(request: HttpRequest, actor: Actor) -> HttpResponse:
    filters = QueueFilterForm(request.GET).filters()
    try:
        found = selectors.privacy_queue(actor=actor, **filters)
    except NotFound as exc:
        raise Http404 from exc
    return _page(request, actor, "queue.html", {"queue": found, "kinds": PrivacyCase.Kind})


@staff_page
@endpoint(Action.CASE_VIEW, Action.CASE_DECIDE)
@require_http_methods(["GET", "POST"])
def case(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    form = _bound(CaseDecisionForm, request)
    if form.is_valid():
        try:
            services.case_decide(
                actor=actor,
                case_id=case_id,
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data["note"],
            )
        except NotFound as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("staff:privacy-case", case_id=case_id)
    try:
        detail = selectors.privacy_case(actor=actor, case_id=case_id)
    except NotFound as exc:
        raise Http404 from exc
    return _page(
        request,
        actor,
        "case.html",
        {"case": detail, "form": form},
        status=400 if form.errors else 200,
    )


@staff_page
@endpoint(Action.CASE_VIEW)
@require_GET
def requests(request: HttpRequest, actor: Actor) -> HttpResponse:
    status = "decided" if request.GET.get("status") == "decided" else "open"
    try:
        rows = selectors.unhide_requests(actor=actor, status=status)
    except NotFound as exc:
        raise Http404 from exc
    return _page(request, actor, "requests.html", {"rows": rows, "status": status})


@staff_page
@endpoint(Action.CONSENT_REQUEST_RECORD)
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    form = _bound(UnhideRequestForm, request)
    if form.is_valid():
        try:
            recorded = services.unhide_request_record(
                actor=actor,
                nhs_number=form.cleaned_data["nhs_number"],
                birth_date=form.cleaned_data["birth_date"],
                received_on=form.cleaned_data["received_on"],
                reference=form.cleaned_data["reference"],
                requested_state=form.cleaned_data["requested_state"],
            )
        except Refused as exc:
            raise Http404 from exc
        except (NotFound, InvalidInput) as exc:  # no such patient, or not hidden
            form.add_error(None, str(exc))
        else:
            return redirect("staff:privacy-request", request_id=recorded.pk)
    elif request.method == "GET":
        try:
            selectors.unhide_request_form(actor=actor)
        except NotFound as exc:
            raise Http404 from exc
    return _page(
        request,
        actor,
        "request_new.html",
        {"form": form, "choices": UNHIDE_CHOICES},
        status=400 if form.errors else 200,
    )


@staff_page
@endpoint(Action.CASE_VIEW, Action.CONSENT_REQUEST_RECORD, Action.CONSENT_CHANGE)
@require_http_methods(["GET", "POST"])
def request_detail(request: HttpRequest, actor: Actor, request_id: int) -> HttpResponse:
    form = _bound(RequestDecisionForm, request)
    if form.is_valid():
        try:
            services.unhide_request_decide(
                actor=actor,
                request_id=request_id,
                grant=form.grant(),
                note=form.cleaned_data["note"],
            )
        except NotFound as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("staff:privacy-request", request_id=request_id)
    try:
        detail = selectors.unhide_request(actor=actor, request_id=request_id)
    except NotFound as exc:
        raise Http404 from exc
    return _page(
        request,
        actor,
        "request.html",
        {"detail": detail, "form": form},
        status=400 if form.errors else 200,
    )


@staff_page
@endpoint(Action.CASE_VIEW)
@require_GET
def deletions(request: HttpRequest, actor: Actor) -> HttpResponse:
    try:
        found = selectors.deletion_requests(actor=actor)
    except NotFound as exc:
        raise Http404 from exc
    return _page(request, actor, "deletions.html", {"deletions": found})


@staff_page
@endpoint(Action.CASE_VIEW, Action.CONSENT_REQUEST_RECORD, Action.CONSENT_CHANGE)
@require_http_methods(["GET", "POST"])
def deletion(request: HttpRequest, actor: Actor, record_id: uuid.UUID) -> HttpResponse:
    # ``record_id``, not ``patient_id``: a privacy officer decides for any record, not only
    # for a patient found in this session (staff_page's rule for clinicians' pages)
    form = _bound(RequestDecisionForm, request)
    if form.is_valid():
        try:
            services.deletion_request_decide(
                actor=actor,
                patient_id=record_id,
                grant=form.grant(),
                note=form.cleaned_data["note"],
            )
        except NotFound as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("staff:privacy-deletion", record_id=record_id)
    try:
        detail = selectors.deletion_request(actor=actor, patient_id=record_id)
    except NotFound as exc:
        raise Http404 from exc
    return _page(
        request,
        actor,
        "deletion.html",
        {"detail": detail, "form": form, "receipt": latest_receipt(record_id) is not None},
        status=400 if form.errors else 200,
    )


def latest_receipt(record_id: uuid.UUID):
    from healthspace.portability.models import DeletionReceipt

    return DeletionReceipt.objects.filter(patient_id=record_id).order_by("-issued_at").first()


@staff_page
@endpoint(Action.CASE_VIEW)
@require_GET
def deletion_receipt(request: HttpRequest, actor: Actor, record_id: uuid.UUID) -> HttpResponse:
    """The signed receipt of a granted deletion (it names no clinical content), to give
    the patient; none yet: back to the request's page."""
    try:
        selectors.deletion_request(actor=actor, patient_id=record_id)  # decides and audits
    except NotFound as exc:
        raise Http404 from exc
    receipt = latest_receipt(record_id)
    if receipt is None:
        return redirect("staff:privacy-deletion", record_id=record_id)
    response = HttpResponse(receipt.document, content_type="application/json")
    response["Content-Disposition"] = (
        f'attachment; filename="healthspace-receipt-{receipt.pk}.json"'
    )
    response["Cache-Control"] = "no-store"
    return response
