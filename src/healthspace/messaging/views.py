"""The patient's messages: their conversations with their care team. Views adapt: form
in, one selector or service, page out. The patient is the session's own linked record;
a thread id in the URL is only ever looked up through ``access.decide``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors.guards import scr_allowed_for_session, second_factor_url
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.messaging import selectors, services
from healthspace.messaging.content import BODY_MAX, SUBJECT_MAX
from healthspace.messaging.forms import (
    MessageForm,
    NewThreadForm,
    SealedMemoryUploadHandler,
    attachment_hint,
)
from healthspace.messaging.guards import decided, refusal_record

SENT = "Your message was sent"


def reply_days() -> int:
    return settings.HEALTHSPACE_MESSAGE_REPLY_DAYS


def patient_page(
    *methods: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Signed in, past the second factor, with a linked record; ``methods`` the HTTP
    methods the page answers. A page about one thread is "not found" for anyone else (a
    basic account, staff, nobody signed in), and a signed-in person turned away is
    recorded in that thread's patient's trail, whatever the method. Put ``@endpoint``
    below this decorator."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        action = getattr(view, "access_primary", None)
        if action is None:
            raise TypeError(f"{view.__name__}: declare @endpoint(...) below @patient_page")

        @wraps(view)
        def wrapped(request: HttpRequest, **kwargs: uuid.UUID) -> HttpResponse:
            thread_id = kwargs.get("thread_id")
            if not request.user.is_authenticated:
                if thread_id is not None:
                    return not_found(request)
                return redirect_to_login(request.get_full_path())
            if not scr_allowed_for_session(request):
                return redirect(second_factor_url())
            actor = actor_for_request(request)
            if actor.kind != "patient" or actor.patient_id is None:
                reason = "not-a-patient" if actor.kind == "staff" else "not-a-verified-account"
                if thread_id is not None:
                    refusal_record(actor=actor, action=action, thread_id=thread_id, reason=reason)
                    return not_found(request)
                if actor.kind == "staff":
                    return not_found(request)
                return render(request, "web/no_record.html", {}, status=404)
            if request.method not in methods:
                return wrong_method(request, actor, action, thread_id, methods, not_found)
            return view(request, actor, **kwargs)

        return wrapped

    return decorate


def wrong_method(request, actor, action, thread_id, methods, refused) -> HttpResponse:
    """A method the page does not answer: 405 to someone who may see the thread, the same
    "not found" as any other page to anyone else (and their attempt recorded)."""
    if thread_id is not None:
        try:
            decided(actor=actor, action=action, user_id=request.user.pk, thread_id=thread_id)
        except NotFound:
            return refused(request)
    return HttpResponseNotAllowed(methods)


def with_sealed_uploads(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Uploads stay in memory until sealed (never a temporary file in the clear). The
    handlers must be set before anything reads the body, so the CSRF check runs here,
    after them, instead of in the middleware."""
    protected = csrf_protect(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        request.upload_handlers = [SealedMemoryUploadHandler(request)]
        return protected(request, *args, **kwargs)

    return csrf_exempt(wrapped)


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "messaging/not_found.html", {}, status=404)


def when(moment: datetime) -> str:
    """ "3 May 2026 at 2:05pm", in the service's time zone."""
    local = timezone.localtime(moment)
    hour = local.hour % 12 or 12
    return f"{local.day} {local:%B %Y} at {hour}:{local:%M}{'am' if local.hour < 12 else 'pm'}"


def _help() -> dict[str, object]:
    return {
        "when": when,
        "reply_days": reply_days(),
        "attachment_hint": attachment_hint(),
        "body_max": BODY_MAX,
        "subject_max": SUBJECT_MAX,
    }


@patient_page("GET")
@endpoint(Action.MESSAGE_VIEW)
def inbox(request: HttpRequest, actor: Actor) -> HttpResponse:
    page = request.GET.get("page", "1")
    listing = selectors.threads_for_patient(
        actor=actor, user_id=request.user.pk, page=int(page) if page.isdigit() else 1
    )
    return render(request, "messaging/list.html", {"listing": listing, **_help()})


def _new_page(request: HttpRequest, actor: Actor, form: NewThreadForm, status: int = 200):
    practice = selectors.practice_for_new_thread(actor=actor)
    return render(
        request,
        "messaging/new.html",
        {"form": form, "practice": practice, **_help()},
        status=status,
    )


@with_sealed_uploads
@patient_page("GET", "POST")
@endpoint(Action.THREAD_OPEN)
def new(request: HttpRequest, actor: Actor) -> HttpResponse:
    if request.method == "GET":
        return _new_page(request, actor, NewThreadForm())
    form = NewThreadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            sent = services.thread_open_by_patient(
                actor=actor,
                user_id=request.user.pk,
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                attachment=form.cleaned_data["attachment"],
            )
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            flash.success(request, SENT)
            return redirect("messaging:thread", thread_id=sent.thread_id)
    return _new_page(request, actor, form, status=400)


def _thread_page(
    request: HttpRequest, actor: Actor, thread_id: uuid.UUID, form: MessageForm, status: int = 200
) -> HttpResponse:
    try:
        view = selectors.thread_for(actor=actor, user_id=request.user.pk, thread_id=thread_id)
    except NotFound:
        return not_found(request)

    def attachment_url(file: selectors.AttachmentInfo) -> str:
        return reverse(
            "messaging:attachment", kwargs={"thread_id": thread_id, "attachment_id": file.id}
        )

    return render(
        request,
        "messaging/thread.html",
        {"view": view, "form": form, "attachment_url": attachment_url, **_help()},
        status=status,
    )


@patient_page("GET")
@endpoint(Action.MESSAGE_VIEW)
def thread(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    return _thread_page(request, actor, thread_id, MessageForm())


@with_sealed_uploads
@patient_page("POST")
@endpoint(Action.MESSAGE_SEND, Action.MESSAGE_VIEW)
def reply(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    try:  # decided before an upload is checked: no parsing a file for someone turned away
        decided(
            actor=actor, action=Action.MESSAGE_SEND, user_id=request.user.pk, thread_id=thread_id
        )
    except NotFound:
        return not_found(request)
    form = MessageForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.message_send(
                actor=actor,
                user_id=request.user.pk,
                thread_id=thread_id,
                body=form.cleaned_data["body"],
                attachment=form.cleaned_data["attachment"],
            )
        except NotFound:
            return not_found(request)
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            flash.success(request, SENT)
            return redirect("messaging:thread", thread_id=thread_id)
    return _thread_page(request, actor, thread_id, form, status=400)


def _status(request: HttpRequest, actor: Actor, thread_id: uuid.UUID, *, close: bool):
    change = services.thread_close if close else services.thread_reopen
    try:
        change(actor=actor, user_id=request.user.pk, thread_id=thread_id)
    except NotFound:
        return not_found(request)
    flash.success(
        request, "You closed this conversation" if close else "You reopened this conversation"
    )
    return redirect("messaging:thread", thread_id=thread_id)


@patient_page("POST")
@endpoint(Action.THREAD_MANAGE)
def close(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    return _status(request, actor, thread_id, close=True)


@patient_page("POST")
@endpoint(Action.THREAD_MANAGE)
def reopen(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    return _status(request, actor, thread_id, close=False)


def download_response(file: selectors.AttachmentFile) -> HttpResponse:
    """An attachment as a download, never rendered by the browser: the detected type,
    no sniffing, a sandbox that runs nothing even if it were, and no cache."""
    response = HttpResponse(file.data, content_type=file.content_type)
    response["Content-Disposition"] = content_disposition_header(True, file.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; frame-ancestors 'none'"
    response["Cache-Control"] = "no-store, private"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Content-Length"] = str(len(file.data))
    return response


@patient_page("GET")
@endpoint(Action.MESSAGE_VIEW)
def attachment(
    request: HttpRequest, actor: Actor, thread_id: uuid.UUID, attachment_id: uuid.UUID
) -> HttpResponse:
    try:
        file = selectors.attachment_file(
            actor=actor,
            user_id=request.user.pk,
            thread_id=thread_id,
            attachment_id=attachment_id,
        )
    except NotFound:
        return not_found(request)
    return download_response(file)
