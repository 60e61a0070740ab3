"""Who may do what with one thread: the facts ``access.decide`` needs, gathered in one place
for the selectors and services.

A thread's routing (its patient, the account whose key seals it, its team) is read first,
without any content; ``decide`` is asked with it; a refusal is audited in the thread's
patient's trail and looks exactly like a thread that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action, Decision
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.errors import NotFound
from healthspace.messaging.models import Side, Thread

NOT_FOUND = "There is no conversation here."


@dataclass(frozen=True)
class Route:
    thread_id: uuid.UUID
    patient_id: uuid.UUID
    owner_id: int
    team_ods: str | None


def route_for(thread_id: uuid.UUID) -> Route | None:
    row = (
        Thread.objects.filter(pk=thread_id)
        .values("patient_id", "owner_id", "team__ods_code")
        .first()
    )
    if row is None:
        return None
    return Route(thread_id, row["patient_id"], row["owner_id"], row["team__ods_code"])


def side_of(actor: Actor) -> Side:
    return Side.TEAM if actor.kind == "staff" else Side.PATIENT


def team_context(actor: Actor, team_ods: str | None) -> AccessContext:
    """Staff: they work at the thread's team organisation (their account's, at login)."""
    return AccessContext(team_member=bool(actor.organisation) and actor.organisation == team_ods)


def decided(
    *, actor: Actor, action: Action, user_id: int, thread_id: uuid.UUID
) -> tuple[Route, Decision]:
    """The thread's route and the allowing decision, or NotFound (the refusal audited in
    the patient's trail; an id that names no thread in the asker's own)."""
    route = route_for(thread_id)
    if route is None:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=action,
                patient_id=None,
                outcome="not-found",
                reason="no-such-thread",
                detail={"thread": str(thread_id)},
            )
        raise NotFound(NOT_FOUND)
    context = team_context(actor, route.team_ods) if actor.kind == "staff" else None
    decision = access_checked(
        actor=actor, action=action, patient_id=route.patient_id, context=context
    )
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    if actor.kind == "patient" and route.owner_id != user_id:
        # the patient's record, but a conversation of an account closed before this one:
        # sealed under a destroyed key, nothing to show
        raise NotFound(NOT_FOUND)
    return route, decision


def refusal_record(*, actor: Actor, action: Action, thread_id: uuid.UUID, reason: str) -> None:
    """A signed-in person turned away at the door of a thread's page (a basic account,
    staff on the patient's pages, a patient on the staff pages): in the thread's
    patient's trail, or, for an id that names no thread, in their own."""
    route = route_for(thread_id)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            patient_id=route.patient_id if route else None,
            outcome="denied",
            reason=reason,
            detail={"thread": str(thread_id)},
        )
