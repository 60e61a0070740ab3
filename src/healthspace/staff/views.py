"""Clinician and registration clerk pages: find a patient, ask permission to view, look at
the Summary Care Record their role allows. Views adapt: forms in, one service out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial, wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from healthspace.access.actors import Actor
from healthspace.access.context import ConsentState, Permission, Relationship
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.access.roles import Activity, Role
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors import guards
from healthspace.accounts.sessions.services import key_hash
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.ops.lifecycle import allowed_when_read_only
from healthspace.staff import selectors, services
from healthspace.staff.forms import EmergencyForm, FindForm, PermissionForm, RelationshipForm

FOUND_IN_SESSION = "hs_staff_found"
FOUND_MAX = 30  # patients kept findable in one session (a clinic's worth)


def staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only, in a session that passed a passkey. Anyone else: "not found" (these
    pages do not exist for patients). Put ``@endpoint`` below this decorator: a signed-in
    person turned away from a patient's page is recorded in that patient's trail."""
    action = getattr(view, "access_primary", None)
    if action is None:
        raise TypeError(f"{view.__name__}: declare @endpoint(...) below @staff_page")

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            raise Http404
        actor = actor_for_request(request)
        patient_id = kwargs.get("patient_id")
        if actor.kind != "staff":
            record_id = patient_id or kwargs.get("record_id")
            # even a patient's own record: staff pages are not a way in for anyone else
            services.refusal_record(
                actor=actor, action=action, patient_id=record_id, reason="not-a-member-of-staff"
            )
            raise Http404
        if not guards.staff_allowed_for_session(request):
            return redirect(guards.second_factor_url())
        if patient_id is not None and str(patient_id) not in request.session.get(
            FOUND_IN_SESSION, []
        ):
            # Patient pages open only for a patient found by NHS number and date of birth
            # in this session: a link or a guessed id leads nowhere.
            services.refusal_record(
                actor=actor, action=action, patient_id=patient_id, reason="not-found-this-session"
            )
            raise Http404
        return view(request, actor, *args, **kwargs)

    return wrapped


def _render(request: HttpRequest, actor: Actor, template: str, context: dict, status=200):
    context = {"staff_roles": sorted(actor.roles), **context}
    return render(request, f"staff/{template}", context, status=status)


def _session_hash(request: HttpRequest) -> str:
    return key_hash(request.session.session_key or "")


def _remember(request: HttpRequest, patient_id: uuid.UUID) -> None:
    found = [p for p in request.session.get(FOUND_IN_SESSION, []) if p != str(patient_id)]
    request.session[FOUND_IN_SESSION] = [str(patient_id), *found][:FOUND_MAX]


def _context(request: HttpRequest, actor: Actor, patient_id: uuid.UUID):
    return selectors.access_context_for(
        actor=actor,
        user_id=request.user.pk,
        session_key_hash=_session_hash(request),
        patient_id=patient_id,
    )


@allowed_when_read_only
@staff_page
@endpoint(Action.FIND_PATIENT)
@require_http_methods(["GET", "POST"])
def find(request: HttpRequest, actor: Actor) -> HttpResponse:
    # A POST: an NHS number in a query string would end up in access logs.
    form = FindForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient_id = services.patient_find(
                actor=actor,
                nhs_number=form.cleaned_data["nhs_number"],
                birth_date=form.cleaned_data["birth_date"],
            )
        except NotFound as exc:
            form.add_error(None, str(exc))
        else:
            _remember(request, patient_id)
            return redirect("staff:patient", patient_id=patient_id)
    status = 400 if form.errors else 200
    return _render(request, actor, "find.html", {"form": form}, status)


@staff_page
@endpoint(Action.FIND_PATIENT, Action.PERMISSION_RECORD)
@require_GET
def patient(request: HttpRequest, actor: Actor, patient_id: uuid.UUID) -> HttpResponse:
    return _patient_page(request, actor, patient_id, PermissionForm())


def _patient_page(
    request: HttpRequest, actor: Actor, patient_id: uuid.UUID, form: PermissionForm, status=200
) -> HttpResponse:
    """The banner, what the member of staff may do next, and the permission question."""
    try:
        banner = selectors.patient_banner(actor=actor, patient_id=patient_id)
    except NotFound as exc:
        raise Http404 from exc
    context = _context(request, actor, patient_id)
    return _render(
        request,
        actor,
        "patient.html",
        {"banner": banner, "state": context, "form": form, **_page_facts(actor, context)},
        status,
    )


def _page_facts(actor: Actor, context) -> dict[str, object]:
    access = context.access
    return {
        "is_clinician": Role.CLINICIAN in actor.roles,
        "has_additional_activity": Activity.ADDITIONAL_INFORMATION in actor.roles,
        "hidden": access.consent
        in (ConsentState.HIDDEN, ConsentState.DELETION_REQUESTED, ConsentState.DELETED),
        "deleted": access.consent == ConsentState.DELETED,
        "dissent": access.consent == ConsentState.DISSENT,
        "care_team": access.relationship == Relationship.CARE_TEAM,
        "self_claimed": access.relationship == Relationship.SELF_CLAIMED,
        "no_relationship": access.relationship == Relationship.NONE,
        "permission": str(access.permission),
        "may_view": access.permission
        in (Permission.GIVEN, Permission.CANNOT_BE_ASKED, Permission.EMERGENCY),
    }


@allowed_when_read_only
@staff_page
@endpoint(Action.PERMISSION_RECORD)
@require_POST
def permission(request: HttpRequest, actor: Actor, patient_id: uuid.UUID) -> HttpResponse:
    form = PermissionForm(request.POST)
    context = _context(request, actor, patient_id)
    if form.is_valid():
        try:
            answer = services.permission_record(
                actor=actor,
                user_id=request.user.pk,
                session_key_hash=_session_hash(request),
                patient_id=patient_id,
                context=context,
                answer=form.cleaned_data["answer"],
                explanation=form.cleaned_data["explanation"],
            )
        except InvalidInput as exc:
            form.add_error("explanation", str(exc))
        except Refused:
            return redirect("staff:patient", patient_id=patient_id)
        else:
            if answer.answer == Permission.REFUSED:
                return redirect("staff:patient", patient_id=patient_id)
            return redirect("staff:scr", patient_id=patient_id)
    return _patient_page(request, actor, patient_id, form, status=400)


def _before_viewing(
    request: HttpRequest,
    actor: Actor,
    patient_id: uuid.UUID,
    *,
    action: Action,
    form,
    record: Callable[..., object],
    then: str,
    template: str,
    extra: dict | None = None,
) -> HttpResponse:
    """A step a clinician records before viewing (relationship, emergency access): the
    form is offered only when decide() would allow the step (a refusal is audited), and
    a recorded step goes on to ``then``."""
    back = redirect("staff:patient", patient_id=patient_id)
    if request.method == "GET" and not services.may(
        actor=actor,
        action=action,
        patient_id=patient_id,
        context=_context(request, actor, patient_id),
    ):
        return back
    if request.method == "POST" and form.is_valid():
        try:
            record(context=_context(request, actor, patient_id), **form.cleaned_data)
        except InvalidInput as exc:
            form.add_error("explanation", str(exc))
        except Refused:
            return back
        else:
            return redirect(then, patient_id=patient_id)
    return _render(
        request,
        actor,
        template,
        {"form": form, "patient_id": patient_id, **(extra or {})},
        400 if form.errors else 200,
    )


@allowed_when_read_only
@staff_page
@endpoint(Action.RELATIONSHIP_CLAIM)
@require_http_methods(["GET", "POST"])
def relationship(request: HttpRequest, actor: Actor, patient_id: uuid.UUID) -> HttpResponse:
    return _before_viewing(
        request,
        actor,
        patient_id,
        action=Action.RELATIONSHIP_CLAIM,
        form=RelationshipForm(request.POST or None),
        record=partial(
            services.relationship_claim, actor=actor, user_id=request.user.pk, patient_id=patient_id
        ),
        then="staff:patient",
        template="relationship.html",
        extra={"hours": settings.HEALTHSPACE_SELF_CLAIM_HOURS},
    )


@allowed_when_read_only
@staff_page
@endpoint(Action.EMERGENCY_ACCESS)
@require_http_methods(["GET", "POST"])
def emergency(request: HttpRequest, actor: Actor, patient_id: uuid.UUID) -> HttpResponse:
    return _before_viewing(
        request,
        actor,
        patient_id,
        action=Action.EMERGENCY_ACCESS,
        form=EmergencyForm(request.POST or None),
        record=partial(
            services.emergency_access_record,
            actor=actor,
            user_id=request.user.pk,
            session_key_hash=_session_hash(request),
            patient_id=patient_id,
        ),
        then="staff:scr",
        template="emergency.html",
    )


@staff_page
@endpoint(Action.VIEW_SCR)
@require_GET
def scr(request: HttpRequest, actor: Actor, patient_id: uuid.UUID) -> HttpResponse:
    context = _context(request, actor, patient_id)
    try:
        view = services.staff_scr_view(actor=actor, patient_id=patient_id, context=context)
    except Refused:
        # Not asked yet, refused, hidden, no relationship: the patient page says which
        # and what can be done (the refusal itself is already audited).
        return redirect("staff:patient", patient_id=patient_id)
    except NotFound as exc:
        raise Http404 from exc
    return _render(
        request,
        actor,
        "scr.html",
        {"scr": view, "state": context, **_page_facts(actor, context)},
    )
