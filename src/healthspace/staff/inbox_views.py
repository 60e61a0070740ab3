"""The care team's messages: the inbox (triage views, oldest wait first), a thread with
reply, assignment and close, and "Message the patient" from the staff patient page.
Views adapt: form in, one messaging selector or service out; whether the person may do
any of it is access.decide's, asked by each of them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps

from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors import guards
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.messaging import selectors, services
from healthspace.messaging.content import BODY_MAX, SUBJECT_MAX
from healthspace.messaging.forms import AssignForm, MessageForm, NewThreadForm, attachment_hint
from healthspace.messaging.guards import decided, refusal_record
from healthspace.messaging.views import download_response, with_sealed_uploads, wrong_method
from healthspace.staff import services as staff_services
from healthspace.staff.selectors import patient_banner
from healthspace.staff.views import _context, _render, staff_page


def when(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def waited(moment: datetime) -> str:
    """How long, in the largest unit: "3 days", "5 hours"."""
    return timesince(moment, depth=1)


def team_page(
    *methods: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Staff only, in a session that passed a passkey; ``methods`` the HTTP methods the
    page answers. Anyone else: "not found", with a signed-in person's refusal recorded in
    the thread's patient's trail (the inbox: in their own). Which member of staff may see
    which thread is decide()'s, asked by the selectors and services. Put ``@endpoint``
    below this decorator."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        action = getattr(view, "access_primary", None)
        if action is None:
            raise TypeError(f"{view.__name__}: declare @endpoint(...) below @team_page")

        @wraps(view)
        def wrapped(request: HttpRequest, **kwargs: uuid.UUID) -> HttpResponse:
            if not request.user.is_authenticated:
                raise Http404
            actor = actor_for_request(request)
            thread_id = kwargs.get("thread_id")
            if actor.kind != "staff":
                if thread_id is not None:
                    refusal_record(
                        actor=actor,
                        action=action,
                        thread_id=thread_id,
                        reason="not-a-member-of-staff",
                    )
                else:
                    staff_services.refusal_record(
                        actor=actor, action=action, patient_id=None, reason="not-a-member-of-staff"
                    )
                raise Http404
            if not guards.staff_allowed_for_session(request):
                return redirect(guards.second_factor_url())
            if request.method not in methods:
                return wrong_method(request, actor, action, thread_id, methods, _not_found)
            return view(request, actor, **kwargs)

        return wrapped

    return decorate


def _not_found(request: HttpRequest) -> HttpResponse:
    raise Http404


def _page(request: HttpRequest, actor: Actor, template: str, context: dict, status: int = 200):
    return _render(
        request,
        actor,
        f"inbox/{template}",
        {
            "when": when,
            "waited": waited,
            "attachment_hint": attachment_hint(for_patient=False),
            "body_max": BODY_MAX,
            "subject_max": SUBJECT_MAX,
            **context,
        },
        status=status,
    )


@team_page("GET")
@endpoint(Action.MESSAGE_VIEW)
def inbox(request: HttpRequest, actor: Actor) -> HttpResponse:
    try:
        view = selectors.InboxView(request.GET.get("view", selectors.InboxView.AWAITING))
    except ValueError:
        view = selectors.InboxView.AWAITING
    page = request.GET.get("page", "1")
    try:
        found = selectors.team_inbox(
            actor=actor,
            user_id=request.user.pk,
            view=view,
            page=int(page) if page.isdigit() else 1,
        )
    except NotFound as exc:
        raise Http404 from exc
    return _page(
        request,
        actor,
        "inbox.html",
        {
            "inbox": found,
            "views": list(selectors.InboxView),
            "labels": selectors.INBOX_LABELS,
            "me": request.user.pk,
        },
    )


def _thread_page(
    request: HttpRequest,
    actor: Actor,
    thread_id: uuid.UUID,
    *,
    form: MessageForm | None = None,
    assign: AssignForm | None = None,
    status: int = 200,
) -> HttpResponse:
    try:
        view = selectors.thread_for(actor=actor, user_id=request.user.pk, thread_id=thread_id)
    except NotFound as exc:
        raise Http404 from exc
    colleagues = [(c.user_id, c.name) for c in selectors.team_colleagues(actor=actor)]
    if assign is None:
        current = view.thread.assigned_to_id
        initial = (
            AssignForm.NOBODY
            if current is None
            else AssignForm.ME
            if current == request.user.pk
            else str(current)
        )
        assign = AssignForm(
            initial={"assignee": initial}, colleagues=colleagues, me=request.user.pk
        )

    def attachment_url(file: selectors.AttachmentInfo) -> str:
        return reverse(
            "staff-inbox:attachment", kwargs={"thread_id": thread_id, "attachment_id": file.id}
        )

    return _page(
        request,
        actor,
        "thread.html",
        {
            "view": view,
            "form": form or MessageForm(),
            "assign": assign,
            "attachment_url": attachment_url,
            "me": request.user.pk,
        },
        status=status,
    )


@team_page("GET")
@endpoint(Action.MESSAGE_VIEW)
def thread(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    return _thread_page(request, actor, thread_id)


@with_sealed_uploads
@team_page("POST")
@endpoint(Action.MESSAGE_SEND, Action.MESSAGE_VIEW)
def reply(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    try:  # decided before an upload is checked: no parsing a file for someone turned away
        decided(
            actor=actor, action=Action.MESSAGE_SEND, user_id=request.user.pk, thread_id=thread_id
        )
    except NotFound as exc:
        raise Http404 from exc
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
        except NotFound as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            flash.success(request, "Your reply was sent. The patient has been told by email.")
            return redirect("staff-inbox:thread", thread_id=thread_id)
    return _thread_page(request, actor, thread_id, form=form, status=400)


@team_page("POST")
@endpoint(Action.THREAD_MANAGE, Action.MESSAGE_VIEW)
def assign(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    colleagues = [(c.user_id, c.name) for c in selectors.team_colleagues(actor=actor)]
    form = AssignForm(request.POST, colleagues=colleagues, me=request.user.pk)
    if form.is_valid():
        assignee = form.assignee_id()
        try:
            services.thread_assign(
                actor=actor, user_id=request.user.pk, thread_id=thread_id, assignee_id=assignee
            )
        except NotFound as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error("assignee", str(exc))
        else:
            names = dict(colleagues)
            flash.success(
                request,
                "Assigned to you"
                if assignee == request.user.pk
                else "Unassigned"
                if assignee is None
                else f"Assigned to {names.get(assignee, 'your colleague')}",
            )
            return redirect("staff-inbox:thread", thread_id=thread_id)
    return _thread_page(request, actor, thread_id, assign=form, status=400)


def _status(request: HttpRequest, actor: Actor, thread_id: uuid.UUID, *, close: bool):
    change = services.thread_close if close else services.thread_reopen
    try:
        change(actor=actor, user_id=request.user.pk, thread_id=thread_id)
    except NotFound as exc:
        raise Http404 from exc
    flash.success(request, "Conversation closed" if close else "Conversation reopened")
    return redirect("staff-inbox:thread", thread_id=thread_id)


@team_page("POST")
@endpoint(Action.THREAD_MANAGE)
def close(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    return _status(request, actor, thread_id, close=True)


@team_page("POST")
@endpoint(Action.THREAD_MANAGE)
def reopen(request: HttpRequest, actor: Actor, thread_id: uuid.UUID) -> HttpResponse:
    return _status(request, actor, thread_id, close=False)


@team_page("GET")
@endpoint(Action.MESSAGE_VIEW)
def attachment(
    request: HttpRequest, actor: Actor, thread_id: uuid.UUID, attachment_id: uuid.UUID
) -> HttpResponse:
    try:
        file = selectors.attachment_file(
            actor=actor, user_id=request.user.pk, thread_id=thread_id, attachment_id=attachment_id
        )
    except NotFound as exc:
        raise Http404 from exc
    return download_response(file)


# --- "Message the patient", from the staff patient page ----------------------------------


@with_sealed_uploads
@staff_page
@endpoint(Action.THREAD_OPEN)
@require_http_methods(["GET", "POST"])
def patient_message(request: HttpRequest, actor: Actor, patient_id: uuid.UUID) -> HttpResponse:
    """A clinician caring for the patient (their practice, or a claimed relationship)
    starts a conversation from their own team. Anyone else goes back to the patient page
    (the refusal audited); a patient without a HealthSpace account is said so plainly."""
    context = _context(request, actor, patient_id)
    if not staff_services.may(
        actor=actor, action=Action.THREAD_OPEN, patient_id=patient_id, context=context
    ):
        return redirect("staff:patient", patient_id=patient_id)
    try:
        banner = patient_banner(actor=actor, patient_id=patient_id)
    except NotFound as exc:
        raise Http404 from exc
    has_account = services.patient_account(patient_id=patient_id) is not None
    form = (
        NewThreadForm(request.POST, request.FILES) if request.method == "POST" else NewThreadForm()
    )
    if request.method == "POST" and has_account and form.is_valid():
        try:
            sent = services.thread_open_by_staff(
                actor=actor,
                user_id=request.user.pk,
                patient_id=patient_id,
                context=context.access,
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                attachment=form.cleaned_data["attachment"],
            )
        except NotFound:
            return redirect("staff:patient", patient_id=patient_id)
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            flash.success(request, "Your message was sent. The patient has been told by email.")
            return redirect("staff-inbox:thread", thread_id=sent.thread_id)
    return _page(
        request,
        actor,
        "open.html",
        {
            "form": form,
            "patient_id": patient_id,
            "banner": banner,
            "has_account": has_account,
            "no_account": services.NO_ACCOUNT,
            "team": actor.organisation,
        },
        status=400 if form.errors else 200,
    )
