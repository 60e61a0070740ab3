"""The patient's pages: "Download your data" (with each download's progress and link) and
"Close your account" (then the receipt). The account is the session's, never the URL's."""

from __future__ import annotations

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request, actor_for_user
from healthspace.accounts.factors import guards
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.ops.lifecycle import allowed_when_read_only
from healthspace.portability import downloads
from healthspace.portability.closure import account_close
from healthspace.portability.models import DeletionReceipt

FORMAT_TEXT = {
    "fhir": (
        "Everything, for another health app or service (FHIR R4)",
        "Your Summary Care Record, your consent choices, who has looked at your record, "
        "your health organiser readings and your messages, as a FHIR Bundle (JSON).",
    ),
    "ips": (
        "A patient summary (International Patient Summary)",
        "Allergies, medicines, problems and more, in the format health services abroad read.",
    ),
    "pdf": (
        "A printout of your Summary Care Record (PDF)",
        "With your NHS number and the date, to print or keep.",
    ),
    "csv": (
        "Your health organiser readings (CSV spreadsheet)",
        "Every reading you have kept, to open in a spreadsheet program.",
    ),
}
RECEIPT_SESSION_KEY = "portability_closed_receipt"


def _guard(request: HttpRequest) -> HttpResponse | None:
    """Patients' own accounts only; a verified one with its second factor this session."""
    actor = actor_for_request(request)
    if actor.kind != "patient":
        return render(request, "portability/not_for_staff.html", {}, status=403)
    if not guards.scr_allowed_for_session(request):
        return redirect(guards.second_factor_url())
    return None


@endpoint(Action.EXPORT_RECORD, Action.ORGANISER_EXPORT)
@allowed_when_read_only
@login_required
@require_http_methods(["GET", "POST"])
def your_data(request: HttpRequest) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    formats = downloads.formats_for(request.user)
    error, status = "", 200
    if request.method == "POST":
        try:
            row = downloads.request(user=request.user, what=request.POST.get("format", ""))
        except InvalidInput as exc:
            error, status = str(exc), 400
        else:
            return redirect(reverse("portability:download", args=[row.id]))
    return render(
        request,
        "portability/your_data.html",
        {
            "formats": [(f, *FORMAT_TEXT[f]) for f in formats],
            "recent": downloads.recent(user=request.user),
            "format_text": FORMAT_TEXT,
            "error": error,
            "verified": len(formats) > 1,
            "deleted": downloads.own_deletion_receipt(request.user) is not None,
        },
        status=status,
    )


@endpoint(Action.EXPORT_RECORD)
@allowed_when_read_only
@login_required
@require_GET
def own_deletion_receipt(request: HttpRequest) -> HttpResponse:
    """The receipt of the deletion of the session's own record (none: back to the page)."""
    if (refused := _guard(request)) is not None:
        return refused
    row = downloads.own_deletion_receipt(request.user)
    if row is None:
        return redirect(reverse("portability:your-data"))
    response = HttpResponse(row.document, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="healthspace-receipt-{row.pk}.json"'
    response["Cache-Control"] = "no-store"
    return response


@endpoint(Action.EXPORT_RECORD, Action.ORGANISER_EXPORT)
@allowed_when_read_only
@login_required
@require_GET
def download(request: HttpRequest, download_id) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    try:
        row = downloads.get(user=request.user, download_id=download_id)
    except NotFound:
        return render(request, "portability/gone.html", {}, status=404)
    return render(
        request,
        "portability/download.html",
        {"row": row, "title": FORMAT_TEXT[row.format][0]},
    )


@endpoint(Action.EXPORT_RECORD, Action.ORGANISER_EXPORT)
@allowed_when_read_only
@login_required
@require_GET
def download_file(request: HttpRequest, download_id) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    try:
        body, content_type, name = downloads.file(user=request.user, download_id=download_id)
    except NotFound:
        return render(request, "portability/gone.html", {}, status=404)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@endpoint(Action.ACCOUNT_CLOSE)
@login_required
@require_http_methods(["GET", "POST"])
def close(request: HttpRequest) -> HttpResponse:
    if (refused := _guard(request)) is not None:
        return refused
    verified = getattr(request.user, "patient_link", None) is not None
    errors: dict[str, str] = {}
    if request.method == "POST":
        if request.POST.get("understood") != "yes":
            errors["understood"] = "Tick the box to say you understand what closing does"
        if not request.user.check_password(request.POST.get("password", "")):
            errors["password"] = "Enter your password"  # noqa: S105 (a message)
        if not errors:
            receipt = account_close(actor=actor_for_user(request.user), user=request.user)
            logout(request)
            request.session[RECEIPT_SESSION_KEY] = receipt["receipt_id"]
            return redirect(reverse("portability:closed"))
    return render(
        request,
        "portability/close.html",
        {"errors": errors, "verified": verified},
        status=400 if errors else 200,
    )


def _receipt(request: HttpRequest) -> DeletionReceipt:
    receipt_id = request.session.get(RECEIPT_SESSION_KEY)
    row = DeletionReceipt.objects.filter(pk=receipt_id).first() if receipt_id else None
    if row is None:
        raise Http404("No receipt")
    return row


@endpoint(no_patient_data=True)
@require_GET
def closed(request: HttpRequest) -> HttpResponse:
    """After closing: logged out, the receipt (it names no clinical content)."""
    row = _receipt(request)
    return render(request, "portability/closed.html", {"receipt": row})


@endpoint(no_patient_data=True)
@require_GET
def closed_receipt(request: HttpRequest) -> HttpResponse:
    row = _receipt(request)
    response = HttpResponse(row.document, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="healthspace-receipt-{row.pk}.json"'
    response["Cache-Control"] = "no-store"
    return response
