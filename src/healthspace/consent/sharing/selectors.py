"""Reads for sharing: the patient's own sharing page, the grantee's "Records shared with
you" and the read-only views of a shared record, the practice's proxy queue, and a share
code's summary. Each view of a record asks access.decide with the facts gathered here
(the live grant, the pause) and is audited in that patient's trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, Relationship
from healthspace.access.policy import Action
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import Grant, ShareCode, SharingPause
from healthspace.consent.selectors import consent_state_for
from healthspace.consent.sharing import services
from healthspace.core import clock
from healthspace.core.errors import NotFound, Refused
from healthspace.records.models import Section
from healthspace.records.selectors import ScrView, scr_for

SECTION_WORDS: dict[str, str] = {
    **{s.value: s.label for s in Section},
    "organiser": "Health organiser (readings you record)",
    "messages": "Messages with your care team",
}


def sections_in_words(keys: list[str]) -> str:
    """ "Medications, allergies" for a banner or a list (the patient's words)."""
    text = ", ".join(SECTION_WORDS.get(k, k).split(" (")[0].lower() for k in keys)
    return text[:1].upper() + text[1:]


@dataclass
class SharingOverview:
    grants: list[Grant]
    proxies: list[Grant]
    codes: list[ShareCode]
    paused: SharingPause | None
    grantee_names: dict[int, str] = field(default_factory=dict)


def sharing_overview(*, actor: Actor) -> SharingOverview:
    """The patient's own sharing: who may see what until when, proxies, share codes."""
    decision = access_checked(actor=actor, action=Action.SHARING_VIEW, patient_id=actor.patient_id)
    if not decision.allowed or actor.patient_id is None:
        raise NotFound(services.NOT_FOUND)
    from django.contrib.auth import get_user_model

    moment = clock.now()
    with transaction.atomic():
        rows = list(
            Grant.objects.filter(patient_id=actor.patient_id, status__in=services.LIVE)
            .filter(expires_at__gt=moment)
            .order_by("-created_at")
        )
        codes = list(
            ShareCode.objects.filter(
                patient_id=actor.patient_id, cancelled_at__isnull=True
            ).order_by("-created_at")[:20]
        )
        pause = SharingPause.objects.filter(
            patient_id=actor.patient_id, lifted_at__isnull=True
        ).first()
        ids = {g.grantee_user_id for g in rows if g.grantee_user_id}
        users = get_user_model().objects.filter(pk__in=ids).only("first_name", "last_name")
        names = {u.pk: u.get_full_name().strip() for u in users}
        audit_record(
            actor=actor,
            action=Action.SHARING_VIEW,
            patient_id=actor.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"grants": len(rows), "codes": len(codes)},
        )
    live_codes = [
        c
        for c in codes
        if (c.used_at is None and c.expires_at > moment) or services.code_live(c, at=moment)
    ]
    return SharingOverview(
        grants=[g for g in rows if g.kind == Grant.Kind.GRANT],
        proxies=[g for g in rows if g.kind == Grant.Kind.PROXY],
        codes=live_codes,
        paused=pause,
        grantee_names=names,
    )


def sharing_paused_for(*, patient_id: uuid.UUID | None) -> bool:
    return services.paused(patient_id)


# --- the grantee's side ---------------------------------------------------------------


def shared_with_me(*, user_id: int) -> tuple[list[Grant], list[Grant]]:
    """(invitations waiting for an answer, grants that open now) for this account. A
    paused patient's grants were stopped by the pause; their proxies are left out while
    it lasts, so a grantee sees no difference between a pause and a revocation."""
    moment = clock.now()
    rows = list(
        Grant.objects.filter(
            grantee_user_id=user_id,
            status__in=(Grant.Status.INVITED, Grant.Status.ACTIVE),
            expires_at__gt=moment,
        ).order_by("-created_at")
    )
    paused_ids = set(
        SharingPause.objects.filter(
            patient_id__in={g.patient_id for g in rows}, lifted_at__isnull=True
        ).values_list("patient_id", flat=True)
    )
    rows = [g for g in rows if g.patient_id not in paused_ids]
    return (
        [g for g in rows if g.status == Grant.Status.INVITED],
        [g for g in rows if g.status == Grant.Status.ACTIVE],
    )


@dataclass(frozen=True)
class Shared:
    """What the grantee's guard found: the actor, the grant (None: nothing live) and the
    facts for decide()."""

    actor: Actor
    grant: Grant | None
    patient_id: uuid.UUID | None
    context: AccessContext


def shared_context(*, user, grant_id: uuid.UUID) -> Shared:
    """The guard for the grantee's pages, run on every request: the grant must be this
    account's, active and unexpired, and sharing not paused; otherwise no sections at all
    (a revoked grant stops on the very next request)."""
    grant = Grant.objects.filter(pk=grant_id, grantee_user_id=user.pk).first()
    if grant is None:
        from healthspace.accounts.actors import actor_for_user

        return Shared(actor_for_user(user), None, None, AccessContext())
    actor = services.grantee_actor(user, grant=grant)
    live = grant.status == Grant.Status.ACTIVE and grant.expires_at > clock.now()
    return Shared(
        actor,
        grant if live else None,
        grant.patient_id,
        AccessContext(
            consent=consent_state_for(patient_id=grant.patient_id),
            granted_sections=frozenset(grant.sections) if live else frozenset(),
            sharing_frozen=services.paused(grant.patient_id),
        ),
    )


def _require(shared: Shared, action: Action):
    decision = access_checked(
        actor=shared.actor, action=action, patient_id=shared.patient_id, context=shared.context
    )
    if not decision.allowed or shared.grant is None:
        raise Refused(services.NOT_FOUND, reason=decision.reason)
    return decision


def shared_record(*, shared: Shared) -> ScrView:
    """The granted sections of the SCR (scr_for asks decide per section and reads only
    those): the rest are never read, and the page leaves them out."""
    _require(shared, Action.VIEW_SCR)
    return scr_for(actor=shared.actor, patient_id=shared.patient_id, context=shared.context)


def shared_organiser(*, shared: Shared) -> list:
    """The patient's readings, newest first (at most 100), read-only."""
    from healthspace.organiser.models import Reading
    from healthspace.organiser.selectors import open_reading

    decision = _require(shared, Action.ORGANISER_VIEW)
    owner_id = shared.grant.granted_by_user_id
    if owner_id is None:
        raise NotFound(services.NOT_FOUND)
    with transaction.atomic():
        rows = list(Reading.objects.filter(owner_id=owner_id).order_by("-taken_at")[:100])
        audit_record(
            actor=shared.actor,
            action=Action.ORGANISER_VIEW,
            patient_id=shared.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"sections": ["organiser"], "readings": len(rows)},
        )
    if not rows:
        return []
    cipher = portal_cipher_for(user_id=owner_id)
    return [open_reading(cipher, r) for r in rows]


@dataclass(frozen=True)
class SharedMessage:
    from_patient: bool
    sent_at: datetime
    body: str


@dataclass(frozen=True)
class SharedThread:
    subject: str
    team: str
    messages: list[SharedMessage]


def shared_messages(*, shared: Shared) -> list[SharedThread]:
    """The patient's conversations with their care team (the latest 10), read-only."""
    from healthspace.messaging.models import Message, Thread
    from healthspace.messaging.selectors import body_purpose, subject_purpose

    decision = _require(shared, Action.MESSAGE_VIEW)
    owner_id = shared.grant.granted_by_user_id
    if owner_id is None:
        raise NotFound(services.NOT_FOUND)
    with transaction.atomic():
        threads = list(
            Thread.objects.filter(patient_id=shared.patient_id, owner_id=owner_id)
            .select_related("team")
            .order_by("-last_message_at")[:10]
        )
        messages = list(
            Message.objects.filter(thread_id__in=[t.id for t in threads]).order_by("sent_at")
        )
        audit_record(
            actor=shared.actor,
            action=Action.MESSAGE_VIEW,
            patient_id=shared.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"sections": ["messages"], "threads": len(threads)},
        )
    if not threads:
        return []
    cipher = portal_cipher_for(user_id=owner_id)
    by_thread: dict[uuid.UUID, list[SharedMessage]] = {}
    for m in messages:
        body = cipher.open_json(m.body, purpose=body_purpose(m.id))["body"]
        by_thread.setdefault(m.thread_id, []).append(
            SharedMessage(m.sender == "patient", m.sent_at, body)
        )
    return [
        SharedThread(
            cipher.open_json(t.subject, purpose=subject_purpose(t.id))["subject"],
            t.team.name,
            by_thread.get(t.id, []),
        )
        for t in threads
    ]


# --- the practice's proxy queue -------------------------------------------------------


def proxy_queue(*, actor: Actor) -> list[Grant]:
    """Requests waiting for this member of staff's practice, and its approved proxies.
    No identifiers: the clerk finds the patient by NHS number and date of birth to check."""
    decision = access_checked(
        actor=actor,
        action=Action.PROXY_DECIDE,
        patient_id=None,
        # the queue is the member of staff's own practice's, by construction (below)
        context=AccessContext(relationship=Relationship.CARE_TEAM),
    )
    if not decision.allowed:
        raise Refused(services.NOT_FOUND, reason=decision.reason)
    if not actor.organisation:
        return []
    return list(
        Grant.objects.filter(
            kind=Grant.Kind.PROXY,
            practice_ods=actor.organisation,
            status__in=(Grant.Status.REQUESTED, Grant.Status.ACTIVE),
        ).order_by("status", "created_at")[:200]
    )


@dataclass(frozen=True)
class ProxyRequestView:
    grant: Grant
    requester: str
    requester_email: str
    scr: ScrView | None  # the patient's name and NHS number, for checking identity


def proxy_request_for(*, actor: Actor, grant_id: uuid.UUID) -> ProxyRequestView:
    """One proxy request for the practice to decide: asked of decide (their own
    practice's patients only) and audited in the patient's trail."""
    from django.contrib.auth import get_user_model

    grant = Grant.objects.filter(pk=grant_id, kind=Grant.Kind.PROXY).first()
    if grant is None:
        raise NotFound(services.NOT_FOUND)
    decision = access_checked(
        actor=actor,
        action=Action.PROXY_DECIDE,
        patient_id=grant.patient_id,
        context=services._practice_context(actor, grant),
    )
    if not decision.allowed:
        raise Refused(services.NOT_FOUND, reason=decision.reason)
    user = get_user_model().objects.filter(pk=grant.grantee_user_id).first()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Action.PROXY_DECIDE,
            patient_id=grant.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"grant": str(grant.id), "step": "view"},
        )
    return ProxyRequestView(
        grant=grant,
        requester=(user.get_full_name().strip() if user else "") or "Name not given",
        requester_email=user.username if user else "",
        scr=None,
    )


# --- share codes ----------------------------------------------------------------------


def share_code_summary(*, code_id: uuid.UUID | None) -> tuple[ShareCode, ScrView]:
    """The summary for the professional who used this code, while its minutes last:
    decided (the share-code actor, the code live, the patient's consent and pause) and
    audited by scr_for, the same read every clinician's view goes through."""
    code = ShareCode.objects.filter(pk=code_id).first() if code_id else None
    if code is None:
        raise NotFound(services.NOT_FOUND)
    actor = Actor.share_code(code.id)
    context = services.code_context(code, live=services.code_live(code, at=clock.now()))
    return code, scr_for(actor=actor, patient_id=code.patient_id, context=context)
