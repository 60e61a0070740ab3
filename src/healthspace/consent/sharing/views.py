"""Sharing pages. Views adapt: parse a form, call one service or selector, render. The
patient's pages take the record from the session's account; the grantee's pages take a
grant id from the URL and the guard (``selectors.shared_context``) checks, on every
request, that it is this account's live grant."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors import guards
from healthspace.accounts.sessions import throttle
from healthspace.consent.models import Grant, ShareCode
from healthspace.consent.sharing import codes, selectors, services
from healthspace.consent.sharing.forms import (
    CodeForm,
    GrantForm,
    ProxyDecisionForm,
    ProxyRequestForm,
    UseCodeForm,
)
from healthspace.core import clock
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.core.nhs_numbers import normalise
from healthspace.records.models import Section

CODES_IN_SESSION = "sharing-new-codes"  # {code id: text}, for the QR image, until it expires
CODE_IN_SESSION = "share-code-viewing"  # the professional's session: the code they used
THROTTLE_KIND = "share-code"


def when(moment: datetime | date | None) -> str:
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return f"{moment.day} {moment:%B %Y}"
    local = timezone.localtime(moment)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def until(moment: datetime) -> str:
    """A grant ends at midnight after its last day: say the last day."""
    local = timezone.localtime(moment) - timezone.timedelta(seconds=1)
    return f"{local.day} {local:%B %Y}"


def _page(request, template, context, status=200):
    words = {
        "when": when,
        "until": until,
        "section_words": selectors.SECTION_WORDS,
        "sections_in_words": selectors.sections_in_words,
    }
    return render(request, f"sharing/{template}", {**words, **context}, status=status)


def _errors(form) -> list[dict[str, str]]:
    return [
        {"text": str(msgs[0]), "href": f"#{name}"}
        for name, msgs in form.errors.items()
        if name != "__all__"
    ]


def patient_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The patient's own sharing pages: a verified account, past its second factor."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not guards.scr_allowed_for_session(request):
            return redirect(guards.second_factor_url())
        if getattr(request.user, "patient_link", None) is None:
            if view.__name__ == "home" and actor_for_request(request).kind == "patient":
                return redirect("shared:list")  # a basic account: only what others share
            return render(request, "web/no_record.html", {}, status=404)
        return view(request, actor_for_request(request), *args, **kwargs)

    return wrapped


# --- the patient's own sharing --------------------------------------------------------


@endpoint(Action.SHARING_VIEW)
@require_GET
@patient_page
def home(request: HttpRequest, actor) -> HttpResponse:
    overview = selectors.sharing_overview(actor=actor)
    new_codes = request.session.get(CODES_IN_SESSION, {})
    return _page(request, "home.html", {"o": overview, "new_codes": new_codes})


@endpoint(Action.SHARING_GRANT)
@require_http_methods(["GET", "POST"])
@patient_page
def grant_new(request: HttpRequest, actor) -> HttpResponse:
    paused = selectors.sharing_paused_for(patient_id=actor.patient_id)
    form = GrantForm(request.POST or None)
    status, error = 200, ""
    if request.method == "POST" and not paused:
        if form.is_valid() and form.the_date() is not None:
            try:
                services.grant_create(
                    actor=actor,
                    user_id=request.user.pk,
                    email=form.cleaned_data["email"],
                    sections=form.cleaned_data["sections"],
                    until=form.the_date(),
                )
            except InvalidInput as exc:
                error, status = str(exc), 400
            else:
                messages.success(
                    request,
                    "Invitation sent. If they have a HealthSpace account, they will get an "
                    "email asking them to log in and accept. Nothing is shared until they do.",
                )
                return redirect("sharing:home")
        else:
            status = 400
            if form.is_valid():
                error = "Enter a real date, for example 31 3 2027"
    return _page(
        request,
        "grant_new.html",
        {"form": form, "errors": _errors(form), "error": error, "paused": paused},
        status=status,
    )


@endpoint(Action.SHARING_REVOKE)
@require_POST
@patient_page
def grant_stop(request: HttpRequest, actor, grant_id: uuid.UUID) -> HttpResponse:
    try:
        services.grant_revoke(actor=actor, grant_id=grant_id)
    except NotFound:
        raise Http404 from None
    messages.success(request, "Stopped. They can no longer see any of your record.")
    return redirect("sharing:home")


@endpoint(Action.SHARING_GRANT)
@require_http_methods(["GET", "POST"])
@patient_page
def code_new(request: HttpRequest, actor) -> HttpResponse:
    paused = selectors.sharing_paused_for(patient_id=actor.patient_id)
    form = CodeForm(request.POST or None)
    status, error = 200, ""
    if request.method == "POST" and not paused:
        if form.is_valid():
            try:
                made = services.share_code_create(
                    actor=actor,
                    user_id=request.user.pk,
                    profession=form.cleaned_data["profession"],
                    minutes=form.cleaned_data["minutes"],
                )
            except InvalidInput as exc:
                error, status = str(exc), 400
            else:
                kept = {
                    k: v
                    for k, v in request.session.get(CODES_IN_SESSION, {}).items()
                    if k in _live_code_ids(actor)
                }
                kept[str(made.code.id)] = made.text
                request.session[CODES_IN_SESSION] = kept
                return _page(
                    request,
                    "code_made.html",
                    {"code": made.code, "text": made.text, "entry_url": _entry_url(request)},
                )
        else:
            status = 400
    return _page(
        request,
        "code_new.html",
        {"form": form, "errors": _errors(form), "error": error, "paused": paused},
        status=status,
    )


def _live_code_ids(actor) -> set[str]:
    return {
        str(c)
        for c in ShareCode.objects.filter(
            patient_id=actor.patient_id,
            used_at__isnull=True,
            cancelled_at__isnull=True,
            expires_at__gt=clock.now(),
        ).values_list("id", flat=True)
    }


def _entry_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/share/")


@endpoint(Action.SHARING_GRANT)
@require_GET
@patient_page
def code_qr(request: HttpRequest, actor, code_id: uuid.UUID) -> HttpResponse:
    """The QR code of a code made in this session and not yet used: the entry page's
    address with the code, so a phone camera fills it in (the code is never stored)."""
    text = request.session.get(CODES_IN_SESSION, {}).get(str(code_id))
    if text is None or str(code_id) not in _live_code_ids(actor):
        raise Http404
    svg = codes.qr_svg(f"{_entry_url(request)}?code={text}")
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


@endpoint(Action.SHARING_REVOKE)
@require_POST
@patient_page
def code_cancel(request: HttpRequest, actor, code_id: uuid.UUID) -> HttpResponse:
    try:
        services.share_code_cancel(actor=actor, code_id=code_id)
    except NotFound:
        raise Http404 from None
    codes_kept = request.session.get(CODES_IN_SESSION, {})
    codes_kept.pop(str(code_id), None)
    request.session[CODES_IN_SESSION] = codes_kept
    messages.success(request, "Code cancelled. Nobody can use it now.")
    return redirect("sharing:home")


@endpoint(Action.SHARING_FREEZE)
@require_http_methods(["GET", "POST"])
@patient_page
def settings_page(request: HttpRequest, actor) -> HttpResponse:
    """Sharing settings. The pause sits among ordinary choices and reads like one: someone
    looking over the patient's shoulder sees a settings page."""
    error, status = "", 200
    if request.method == "POST":
        choice = request.POST.get("sharing", "")
        try:
            if choice == "paused":
                services.sharing_pause(actor=actor)
            elif choice == "on":
                if selectors.sharing_paused_for(patient_id=actor.patient_id):
                    services.sharing_resume(actor=actor)
            else:
                raise InvalidInput("Select whether sharing is on or paused")
        except InvalidInput as exc:
            error, status = str(exc), 400
        else:
            request.session.pop(CODES_IN_SESSION, None)
            messages.success(request, "Your sharing settings have been saved.")
            return redirect("sharing:settings")
    paused = selectors.sharing_paused_for(patient_id=actor.patient_id)
    return _page(request, "settings.html", {"paused": paused, "error": error}, status=status)


# --- the grantee's side ---------------------------------------------------------------


def grantee_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A signed-in patient account (basic or verified) past its second factor."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not guards.scr_allowed_for_session(request):
            return redirect(guards.second_factor_url())
        if actor_for_request(request).kind != "patient":
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


@endpoint(no_patient_data=True)
@require_GET
@grantee_page
def shared_list(request: HttpRequest) -> HttpResponse:
    """Records shared with you: only this account's own grants (labels it was given)."""
    invited, active = selectors.shared_with_me(user_id=request.user.pk)
    return _page(request, "shared_list.html", {"invited": invited, "active": active})


@endpoint(Action.SHARING_ACCEPT)
@require_POST
@grantee_page
def shared_answer(request: HttpRequest, grant_id: uuid.UUID) -> HttpResponse:
    accept = request.POST.get("answer") == "accept"
    try:
        services.grant_answer(user=request.user, grant_id=grant_id, accept=accept)
    except NotFound:
        raise Http404 from None
    messages.success(request, "Accepted." if accept else "Declined. Nothing is shared with you.")
    return redirect("shared:list")


def _shared_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @grantee_page
    def wrapped(request: HttpRequest, grant_id: uuid.UUID) -> HttpResponse:
        shared = selectors.shared_context(user=request.user, grant_id=grant_id)
        try:
            return view(request, shared)
        except NotFound:
            return _page(request, "shared_gone.html", {}, status=404)

    return wrapped


def _banner(shared, name: str | None = None) -> dict:
    grant = shared.grant
    return {
        "grant": grant,
        "patient_name": name or grant.patient_label or "Someone",
        "shared_words": selectors.sections_in_words(grant.sections),
        "has_scr": any(s in Section.values for s in grant.sections),
    }


@endpoint(Action.VIEW_SCR)
@require_GET
@_shared_view
def shared_record(request: HttpRequest, shared) -> HttpResponse:
    scr = selectors.shared_record(shared=shared)
    shown = [s for s in scr.sections if s.withheld is None]
    return _page(
        request, "shared_record.html", {**_banner(shared, scr.name), "scr": scr, "shown": shown}
    )


@endpoint(Action.ORGANISER_VIEW)
@require_GET
@_shared_view
def shared_organiser(request: HttpRequest, shared) -> HttpResponse:
    readings = selectors.shared_organiser(shared=shared)
    return _page(request, "shared_organiser.html", {**_banner(shared), "readings": readings})


@endpoint(Action.MESSAGE_VIEW)
@require_GET
@_shared_view
def shared_messages(request: HttpRequest, shared) -> HttpResponse:
    threads = selectors.shared_messages(shared=shared)
    return _page(request, "shared_messages.html", {**_banner(shared), "threads": threads})


@endpoint(Action.PROXY_REQUEST)
@require_http_methods(["GET", "POST"])
@grantee_page
def proxy_request(request: HttpRequest) -> HttpResponse:
    form = ProxyRequestForm(request.POST or None)
    status = 200
    if request.method == "POST":
        born = form.the_date() if form.is_valid() else None
        if born is not None:
            try:
                services.proxy_request(
                    actor=actor_for_request(request),
                    user_id=request.user.pk,
                    nhs_number=normalise(form.cleaned_data["nhs_number"]),
                    birth_date=born,
                    basis=form.cleaned_data["basis"],
                    patient_label=form.cleaned_data["name"],
                )
            except InvalidInput as exc:
                form.add_error("name", str(exc))
            else:
                return _page(request, "proxy_sent.html", {})
        status = 400
    return _page(request, "proxy_request.html", {"form": form, "errors": _errors(form)}, status)


# --- a professional with a share code -------------------------------------------------


@endpoint(Action.SHARE_CODE_USE)
@require_http_methods(["GET", "POST"])
def share_entry(request: HttpRequest) -> HttpResponse:
    """Anyone may type a code; attempts are throttled per address (the guessing a 50-bit
    code must withstand), and every failure reads the same."""
    form = UseCodeForm(request.POST or None, initial={"code": request.GET.get("code", "")[:20]})
    status, error = 200, ""
    if request.method == "POST":
        ident = throttle.client_address(request)
        verdict = throttle.check(request, kind=THROTTLE_KIND, identifier=ident)
        if not verdict.allowed:
            throttle.record_throttled(request, kind=THROTTLE_KIND, identifier=ident)
            minutes = max(1, (verdict.retry_after_seconds + 59) // 60)
            response = _page(
                request,
                "share_entry.html",
                {
                    "form": form,
                    "errors": [],
                    "error": f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                },
                status=429,
            )
            response["Retry-After"] = str(verdict.retry_after_seconds)
            return response
        if form.is_valid():
            try:
                code = services.share_code_use(
                    typed=form.cleaned_data["code"],
                    viewer_name=form.cleaned_data["name"],
                    viewer_organisation=form.cleaned_data["organisation"],
                )
            except InvalidInput as exc:
                throttle.record(request, kind=THROTTLE_KIND, identifier=ident, success=False)
                error, status = str(exc), 400
            else:
                throttle.record(request, kind=THROTTLE_KIND, identifier=ident, success=True)
                request.session.cycle_key()
                request.session[CODE_IN_SESSION] = str(code.id)
                return redirect("share:summary")
        else:
            status = 400
    response = _page(
        request, "share_entry.html", {"form": form, "errors": _errors(form), "error": error}, status
    )
    return response


@endpoint(Action.VIEW_SCR)
@require_GET
def share_summary(request: HttpRequest) -> HttpResponse:
    raw = request.session.get(CODE_IN_SESSION)
    try:
        code_id = uuid.UUID(raw) if raw else None
        code, scr = selectors.share_code_summary(code_id=code_id)
    except (ValueError, NotFound):
        request.session.pop(CODE_IN_SESSION, None)
        return _page(request, "share_gone.html", {}, status=404)
    shown = [s for s in scr.sections if s.withheld is None]
    ends = code.used_at + timezone.timedelta(minutes=code.view_minutes)
    response = _page(
        request, "share_summary.html", {"code": code, "scr": scr, "shown": shown, "ends": ends}
    )
    response["Cache-Control"] = "no-store"
    return response


# --- the practice's proxy queue -------------------------------------------------------


def _staff_page(view):
    from healthspace.staff.views import staff_page

    return staff_page(view)


@_staff_page
@endpoint(Action.PROXY_DECIDE)
@require_GET
def proxy_queue(request: HttpRequest, actor) -> HttpResponse:
    try:
        rows = selectors.proxy_queue(actor=actor)
    except NotFound:
        raise Http404 from None
    return _page(request, "proxy_queue.html", {"rows": rows, "staff_roles": sorted(actor.roles)})


@_staff_page
@endpoint(Action.PROXY_DECIDE)
@require_http_methods(["GET", "POST"])
def proxy_decide(request: HttpRequest, actor, grant_id: uuid.UUID) -> HttpResponse:
    form = ProxyDecisionForm(request.POST or None, initial={"sections": list(Section.values[:3])})
    error, status = "", 200
    try:
        view = selectors.proxy_request_for(actor=actor, grant_id=grant_id)
    except NotFound:
        raise Http404 from None
    if request.method == "POST":
        if form.is_valid():
            approve = form.cleaned_data["decision"] == "approve"
            try:
                if request.POST.get("end") == "yes":
                    services.proxy_end(actor=actor, grant_id=grant_id)
                else:
                    services.proxy_decide(
                        actor=actor,
                        grant_id=grant_id,
                        approve=approve,
                        sections=form.cleaned_data["sections"],
                        until=form.the_date(),
                    )
            except InvalidInput as exc:
                error, status = str(exc), 400
            except NotFound:
                raise Http404 from None
            else:
                messages.success(request, "Decision recorded.")
                return redirect("proxies:queue")
        else:
            status = 400
    return _page(
        request,
        "proxy_decide.html",
        {
            "v": view,
            "form": form,
            "errors": _errors(form),
            "error": error,
            "staff_roles": sorted(actor.roles),
            "sections": list(Section),
            "Grant": Grant,
        },
        status=status,
    )
