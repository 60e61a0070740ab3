"""Writes for sharing. Each asks access.decide (through ``access_checked``), then writes
its rows and its audit event in one transaction; grants, codes and pauses are locked
(``select_for_update``) when read to be changed, so a revocation and a use cannot both
win."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, Relationship
from healthspace.access.policy import PORTAL_SECTIONS, Action
from healthspace.accounts.models import Account
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import Grant, ShareCode, SharingPause
from healthspace.consent.selectors import consent_state_for
from healthspace.consent.sharing import codes
from healthspace.core import clock
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.notify.notices import Notice
from healthspace.notify.services import notice_send
from healthspace.records.models import CORE_SECTIONS, Patient, Section

NOT_FOUND = "There is nothing here that you can see."
# What a patient may share: every section of the SCR, their health organiser, messages.
SHAREABLE = (*Section.values, "organiser", "messages")
GRANT_MAX_DAYS = 366
PROXY_MAX_DAYS = 3 * 366
INVITES_PER_DAY = 10
CODE_LIFETIMES = (30, 60, 240)  # minutes a code can wait to be used
VIEW_MINUTES = 30  # how long the professional may look once they used it
NAME_MAX = 100
LIVE = (Grant.Status.INVITED, Grant.Status.REQUESTED, Grant.Status.ACTIVE)
PAUSED_GRANT = "paused"  # revoked_reason: never shown to the grantee
GENERIC_CODE_ERROR = (
    "This code cannot be used. Check it with the patient: a code works once, for a short time."
)


def paused(patient_id: uuid.UUID | None) -> bool:
    return (
        patient_id is not None
        and SharingPause.objects.filter(patient_id=patient_id, lifted_at__isnull=True).exists()
    )


def _own(actor: Actor, action: Action, *, context: AccessContext | None = None) -> uuid.UUID:
    decision = access_checked(
        actor=actor, action=action, patient_id=actor.patient_id, context=context
    )
    if not decision.allowed or actor.patient_id is None:
        raise NotFound(NOT_FOUND)
    return actor.patient_id


def _sections(chosen: list[str]) -> list[str]:
    picked = [s for s in SHAREABLE if s in set(chosen)]
    if not picked or len(picked) != len(set(chosen)):
        raise InvalidInput("Select which parts of your record to share")
    return picked


def _end_of(day: date, max_days: int) -> datetime:
    today = timezone.localdate()
    if day <= today:
        raise InvalidInput("The date sharing ends must be in the future")
    if day > today + timedelta(days=max_days):
        raise InvalidInput(
            f"Sharing can last at most {max_days // 366} year(s): choose an earlier date"
        )
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


# --- grants the patient makes ---------------------------------------------------------


def grant_create(
    *, actor: Actor, user_id: int, email: str, sections: list[str], until: date
) -> Grant:
    """Invite another account to see ``sections`` until the end of ``until``.

    The answer is the same whether or not an account has that email (the patient's list
    shows the invitation either way, "waiting for them to accept"): sharing must not
    become a way to find out who has a HealthSpace account. Only an existing patient
    account gets the notice, and access starts when they accept.
    """
    patient_id = _own(
        actor, Action.SHARING_GRANT, context=AccessContext(sharing_frozen=paused(actor.patient_id))
    )
    picked = _sections(sections)
    expires_at = _end_of(until, GRANT_MAX_DAYS)
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise InvalidInput("Enter the email address they use to log in to HealthSpace")
    with transaction.atomic():
        Patient.objects.select_for_update(no_key=True).filter(pk=patient_id).first()
        if paused(patient_id):  # paused while the form was open
            raise NotFound(NOT_FOUND)
        since = clock.now() - timedelta(days=1)
        if (
            Grant.objects.filter(
                patient_id=patient_id, kind=Grant.Kind.GRANT, created_at__gte=since
            ).count()
            >= INVITES_PER_DAY
        ):
            raise InvalidInput(
                f"You can send {INVITES_PER_DAY} invitations a day. Try again tomorrow."
            )
        grantee = (
            get_user_model()
            .objects.filter(username=email, account__kind=Account.Kind.PATIENT)
            .exclude(pk=user_id)
            .values_list("pk", flat=True)
            .first()
        )
        grant = Grant.objects.create(
            kind=Grant.Kind.GRANT,
            patient_id=patient_id,
            granted_by_user_id=user_id,
            grantee_user_id=grantee,
            invited_email=email,
            patient_label=_account_name(user_id),
            sections=picked,
            status=Grant.Status.INVITED,
            created_at=clock.now(),
            expires_at=expires_at,
        )
        audit_record(
            actor=actor,
            action=Action.SHARING_GRANT,
            patient_id=patient_id,
            outcome="success",
            reason="own-record",
            detail={"grant": str(grant.id), "sections": picked, "until": until.isoformat()},
        )
        if grantee is not None:
            notice_send(user_id=grantee, notice=Notice.RECORD_SHARED_WITH_YOU)
    return grant


def _account_name(user_id: int) -> str:
    user = get_user_model().objects.filter(pk=user_id).first()
    name = user.get_full_name().strip() if user is not None else ""
    return (name or (user.username if user is not None else ""))[:NAME_MAX]


def grant_revoke(*, actor: Actor, grant_id: uuid.UUID) -> None:
    """Stop a grant (or a proxy) at once: the grantee's next request finds nothing."""
    patient_id = _own(actor, Action.SHARING_REVOKE)
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update()
            .filter(pk=grant_id, patient_id=patient_id, status__in=LIVE)
            .first()
        )
        if grant is None:
            raise NotFound(NOT_FOUND)
        _revoke(grant, by=actor.audit_label(), reason="patient")
        audit_record(
            actor=actor,
            action=Action.SHARING_REVOKE,
            patient_id=patient_id,
            outcome="success",
            reason="own-record",
            detail={"grant": str(grant.id), "kind": grant.kind},
        )


def _revoke(grant: Grant, *, by: str, reason: str) -> None:
    grant.status = Grant.Status.REVOKED
    grant.revoked_at = clock.now()
    grant.revoked_by = by
    grant.revoked_reason = reason
    grant.save(update_fields=["status", "revoked_at", "revoked_by", "revoked_reason"])


def grantee_actor(user, *, grant: Grant) -> Actor:
    """The grantee acting on the record shared with them: their own login, with the role
    of the grant (carer, or proxy)."""
    from healthspace.access.roles import Role

    link = getattr(user, "patient_link", None)
    role = Role.PROXY if grant.kind == Grant.Kind.PROXY else Role.CARER
    return Actor(
        "patient",
        f"user:{user.pk}",
        patient_id=link.patient_id if link is not None else None,
        roles=frozenset({role}),
    )


def grant_answer(*, user, grant_id: uuid.UUID, accept: bool) -> Grant:
    """The grantee accepts (access starts) or declines an invitation."""
    grant = Grant.objects.filter(
        pk=grant_id, grantee_user_id=user.pk, status=Grant.Status.INVITED
    ).first()
    if grant is None or grant.expires_at <= clock.now():
        raise NotFound(NOT_FOUND)
    actor = grantee_actor(user, grant=grant)
    context = AccessContext(
        granted_sections=frozenset(grant.sections), sharing_frozen=paused(grant.patient_id)
    )
    decision = access_checked(
        actor=actor, action=Action.SHARING_ACCEPT, patient_id=grant.patient_id, context=context
    )
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update()
            .filter(pk=grant_id, grantee_user_id=user.pk, status=Grant.Status.INVITED)
            .first()
        )
        if grant is None:
            raise NotFound(NOT_FOUND)
        grant.status = Grant.Status.ACTIVE if accept else Grant.Status.DECLINED
        grant.accepted_at = clock.now() if accept else None
        grant.save(update_fields=["status", "accepted_at"])
        audit_record(
            actor=actor,
            action=Action.SHARING_ACCEPT,
            patient_id=grant.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"grant": str(grant.id), "answer": "accepted" if accept else "declined"},
        )
    return grant


# --- proxies: requested by the proxy, decided by the practice -------------------------


def proxy_request(
    *,
    actor: Actor,
    user_id: int,
    nhs_number: str,
    birth_date: date,
    basis: str,
    patient_label: str,
) -> None:
    """Ask the patient's practice to let this account act for them. The same answer
    whether or not the details match (no way to test NHS numbers); a match queues the
    request for the patient's registered practice, which checks identity and the
    relationship before approving."""
    try:
        basis = Grant.ProxyBasis(basis)
    except ValueError:
        raise InvalidInput("Select why you need to act for them") from None
    label = (patient_label or "").strip()
    if not label or len(label) > NAME_MAX:
        raise InvalidInput(f"Enter their name ({NAME_MAX} characters or fewer)")
    found = (
        Patient.objects.filter(nhs_number=nhs_number, birth_date=birth_date)
        .select_related("registered_practice")
        .first()
    )
    if found is None or found.registered_practice is None:
        return
    decision = access_checked(actor=actor, action=Action.PROXY_REQUEST, patient_id=found.id)
    if not decision.allowed:
        return
    with transaction.atomic():
        if Grant.objects.filter(
            patient_id=found.id,
            grantee_user_id=user_id,
            kind=Grant.Kind.PROXY,
            status__in=LIVE,
        ).exists():
            return
        grant = Grant.objects.create(
            kind=Grant.Kind.PROXY,
            patient_id=found.id,
            grantee_user_id=user_id,
            sections=list(CORE_SECTIONS),
            status=Grant.Status.REQUESTED,
            created_at=clock.now(),
            expires_at=clock.now() + timedelta(days=PROXY_MAX_DAYS),
            proxy_basis=basis,
            practice_ods=found.registered_practice.ods_code,
            patient_label=label,  # the name they gave, for the practice's queue
        )
        audit_record(
            actor=actor,
            action=Action.PROXY_REQUEST,
            patient_id=found.id,
            outcome="success",
            reason=decision.reason,
            detail={"grant": str(grant.id), "basis": str(basis)},
        )


def _practice_context(actor: Actor, grant: Grant) -> AccessContext:
    same = actor.organisation is not None and actor.organisation == grant.practice_ods
    return AccessContext(relationship=Relationship.CARE_TEAM if same else Relationship.NONE)


def proxy_decide(
    *,
    actor: Actor,
    grant_id: uuid.UUID,
    approve: bool,
    sections: list[str] | None = None,
    until: date | None = None,
) -> Grant:
    """The practice approves (with the sections and an end date) or refuses a request."""
    grant = Grant.objects.filter(pk=grant_id, kind=Grant.Kind.PROXY).first()
    if grant is None:
        raise NotFound(NOT_FOUND)
    decision = access_checked(
        actor=actor,
        action=Action.PROXY_DECIDE,
        patient_id=grant.patient_id,
        context=_practice_context(actor, grant),
    )
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    if approve:
        picked = [s for s in _sections(sections or []) if s not in PORTAL_SECTIONS]
        if not picked:
            raise InvalidInput("Select which parts of the record the proxy may see")
        expires_at = _end_of(until, PROXY_MAX_DAYS) if until else None
        if expires_at is None:
            raise InvalidInput("Enter the date the proxy access ends")
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update()
            .filter(pk=grant_id, status=Grant.Status.REQUESTED)
            .first()
        )
        if grant is None:
            raise InvalidInput("This request has already been decided.")
        grant.status = Grant.Status.ACTIVE if approve else Grant.Status.REFUSED
        grant.decided_at = clock.now()
        grant.decided_by = actor.audit_label()
        fields = ["status", "decided_at", "decided_by"]
        if approve:
            grant.sections, grant.expires_at, grant.accepted_at = picked, expires_at, clock.now()
            fields += ["sections", "expires_at", "accepted_at"]
        grant.save(update_fields=fields)
        audit_record(
            actor=actor,
            action=Action.PROXY_DECIDE,
            patient_id=grant.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={
                "grant": str(grant.id),
                "decision": "approved" if approve else "refused",
                **({"sections": picked} if approve else {}),
            },
        )
    if grant.grantee_user_id and approve:
        with transaction.atomic():
            notice_send(user_id=grant.grantee_user_id, notice=Notice.RECORD_SHARED_WITH_YOU)
    return grant


def proxy_end(*, actor: Actor, grant_id: uuid.UUID) -> None:
    """The practice ends an approved proxy (or withdraws a request) at once."""
    grant = Grant.objects.filter(pk=grant_id, kind=Grant.Kind.PROXY).first()
    if grant is None:
        raise NotFound(NOT_FOUND)
    decision = access_checked(
        actor=actor,
        action=Action.PROXY_DECIDE,
        patient_id=grant.patient_id,
        context=_practice_context(actor, grant),
    )
    if not decision.allowed:
        raise NotFound(NOT_FOUND)
    with transaction.atomic():
        grant = Grant.objects.select_for_update().filter(pk=grant_id, status__in=LIVE).first()
        if grant is None:
            raise InvalidInput("This proxy access has already ended.")
        _revoke(grant, by=actor.audit_label(), reason="practice")
        audit_record(
            actor=actor,
            action=Action.PROXY_DECIDE,
            patient_id=grant.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"grant": str(grant.id), "decision": "ended"},
        )


# --- share codes ----------------------------------------------------------------------


@dataclass(frozen=True)
class NewCode:
    code: ShareCode
    text: str  # shown once; never stored


def share_code_create(*, actor: Actor, user_id: int, profession: str, minutes: int) -> NewCode:
    try:
        profession = ShareCode.Profession(profession)
    except ValueError:
        raise InvalidInput("Select who the code is for") from None
    if minutes not in CODE_LIFETIMES:
        raise InvalidInput("Select how long the code can wait to be used")
    patient_id = _own(
        actor, Action.SHARING_GRANT, context=AccessContext(sharing_frozen=paused(actor.patient_id))
    )
    with transaction.atomic():
        Patient.objects.select_for_update(no_key=True).filter(pk=patient_id).first()
        if paused(patient_id):
            raise NotFound(NOT_FOUND)
        text = codes.new_code()
        created = clock.now()
        code = ShareCode.objects.create(
            patient_id=patient_id,
            created_by_user_id=user_id,
            code_hash=codes.code_hash(text),
            profession=profession,
            created_at=created,
            expires_at=created + timedelta(minutes=minutes),
            view_minutes=VIEW_MINUTES,
        )
        audit_record(
            actor=actor,
            action=Action.SHARING_GRANT,
            patient_id=patient_id,
            outcome="success",
            reason="own-record",
            detail={"share_code": str(code.id), "profession": str(profession), "minutes": minutes},
        )
    return NewCode(code, text)


def share_code_cancel(*, actor: Actor, code_id: uuid.UUID) -> None:
    patient_id = _own(actor, Action.SHARING_REVOKE)
    with transaction.atomic():
        code = (
            ShareCode.objects.select_for_update()
            .filter(pk=code_id, patient_id=patient_id, cancelled_at__isnull=True)
            .first()
        )
        if code is None:
            raise NotFound(NOT_FOUND)
        code.cancelled_at, code.cancelled_reason = clock.now(), "patient"
        code.save(update_fields=["cancelled_at", "cancelled_reason"])
        audit_record(
            actor=actor,
            action=Action.SHARING_REVOKE,
            patient_id=patient_id,
            outcome="success",
            reason="own-record",
            detail={"share_code": str(code.id)},
        )


def code_live(code: ShareCode, *, at: datetime) -> bool:
    """May the professional who used this code still look?"""
    return (
        code.used_at is not None
        and code.cancelled_at is None
        and at < code.used_at + timedelta(minutes=code.view_minutes)
    )


def share_code_use(*, typed: str, viewer_name: str, viewer_organisation: str) -> ShareCode:
    """A professional types a code with their name and organisation: single use, before
    it expires, unless the patient cancelled it or paused sharing. Every failure is the
    same message (nothing says whether a code exists). The throttle is the caller's."""
    name, organisation = (viewer_name or "").strip(), (viewer_organisation or "").strip()
    if not name or not organisation or len(name) > NAME_MAX or len(organisation) > NAME_MAX:
        raise InvalidInput(
            f"Enter your name and your organisation ({NAME_MAX} characters or fewer each)"
        )
    digest = codes.code_hash(typed)
    if digest is None:
        raise InvalidInput(GENERIC_CODE_ERROR)
    refused: tuple[ShareCode, str] | None = None
    with transaction.atomic():
        code = ShareCode.objects.select_for_update().filter(code_hash=digest).first()
        if code is None:
            raise InvalidInput(GENERIC_CODE_ERROR)
        actor = Actor.share_code(code.id)
        moment = clock.now()
        decision = decide_code(actor, code, Action.SHARE_CODE_USE, live=True)
        if code.used_at is not None or code.cancelled_at is not None or moment >= code.expires_at:
            refused = (code, "share-code-not-usable")
        elif not decision.allowed:
            refused = (code, decision.reason)
        else:
            code.used_at, code.viewer_name, code.viewer_organisation = moment, name, organisation
            code.save(update_fields=["used_at", "viewer_name", "viewer_organisation"])
            audit_record(
                actor=actor,
                action=Action.SHARE_CODE_USE,
                patient_id=code.patient_id,
                outcome="success",
                reason=decision.reason,
                detail={"share_code": str(code.id), "profession": code.profession},
            )
    if refused is not None:
        # in a transaction of its own, after the lock is let go: the patient's trail
        # shows every try of a code of theirs that failed
        with transaction.atomic():
            audit_record(
                actor=Actor.share_code(refused[0].id),
                action=Action.SHARE_CODE_USE,
                patient_id=refused[0].patient_id,
                outcome="denied",
                reason=refused[1],
            )
        raise InvalidInput(GENERIC_CODE_ERROR)
    return code


def code_context(code: ShareCode, *, live: bool) -> AccessContext:
    return AccessContext(
        consent=consent_state_for(patient_id=code.patient_id),
        share_code_live=live,
        sharing_frozen=paused(code.patient_id),
    )


def decide_code(actor: Actor, code: ShareCode, action: Action, *, live: bool):
    from healthspace.access.policy import decide

    return decide(actor, action, code.patient_id, None, code_context(code, live=live))


# --- the pause ("I'm being pressured to share my record") -----------------------------


def sharing_pause(*, actor: Actor) -> SharingPause:
    """Pause all sharing at once: every grant the patient made is stopped, every code
    cancelled, proxies do not open while paused, nothing new can be shared, and the
    privacy officer gets an alert (a case). Grantees see only that nothing is shared
    with them any more, exactly as if the patient had stopped each grant."""
    from healthspace.cases.services import alert_raise

    patient_id = _own(actor, Action.SHARING_FREEZE)
    with transaction.atomic():
        Patient.objects.select_for_update(no_key=True).filter(pk=patient_id).first()
        existing = SharingPause.objects.filter(
            patient_id=patient_id, lifted_at__isnull=True
        ).first()
        if existing is not None:
            return existing
        stopped = _stop_all(
            Grant.objects.filter(patient_id=patient_id, kind=Grant.Kind.GRANT, status__in=LIVE),
            ShareCode.objects.filter(patient_id=patient_id, cancelled_at__isnull=True),
            by=actor.audit_label(),
            reason=PAUSED_GRANT,
        )
        event = audit_record(
            actor=actor,
            action=Action.SHARING_FREEZE,
            patient_id=patient_id,
            outcome="success",
            reason="own-record",
            detail={"sharing": "paused", "grants": stopped[0], "codes": stopped[1]},
        )
        case = alert_raise(patient_id=patient_id, kind="sharing-paused", audit_event_id=event.pk)
        return SharingPause.objects.create(
            patient_id=patient_id,
            paused_at=clock.now(),
            paused_by=actor.audit_label(),
            case_id=case.pk,
        )


LIFT_WAITS = (
    "Your GP practice's privacy officer will contact you first. You can turn sharing back "
    "on once they have."
)


def sharing_resume(*, actor: Actor) -> None:
    """Lift the pause, once the privacy officer has closed the alert's case (they speak
    to the patient first, somewhere safe): a pause made under pressure cannot be undone
    by the same pressure a minute later. Nothing stopped by the pause comes back."""
    from healthspace.cases.models import PrivacyCase

    patient_id = _own(actor, Action.SHARING_FREEZE)
    with transaction.atomic():
        pause = (
            SharingPause.objects.select_for_update()
            .filter(patient_id=patient_id, lifted_at__isnull=True)
            .first()
        )
        if pause is None:
            raise InvalidInput("Sharing is not paused.")
        if PrivacyCase.objects.filter(pk=pause.case_id, status=PrivacyCase.Status.OPEN).exists():
            raise InvalidInput(LIFT_WAITS)
        pause.lifted_at = clock.now()
        pause.save(update_fields=["lifted_at"])
        audit_record(
            actor=actor,
            action=Action.SHARING_FREEZE,
            patient_id=patient_id,
            outcome="success",
            reason="own-record",
            detail={"sharing": "on"},
        )


def _stop_all(grants, share_codes, *, by: str, reason: str) -> tuple[int, int]:
    moment = clock.now()
    n_grants = grants.update(
        status=Grant.Status.REVOKED, revoked_at=moment, revoked_by=by, revoked_reason=reason
    )
    n_codes = share_codes.update(cancelled_at=moment, cancelled_reason=reason)
    return n_grants, n_codes


def revoke_all_for_account(*, user_id: int) -> tuple[int, int]:
    """Account closure: stop every grant given by or to this account (proxies included)
    and cancel every share code it made, each recorded in the patient's trail. Returns
    (grants stopped, codes cancelled)."""
    actor = Actor("patient", f"user:{user_id}")
    with transaction.atomic():
        grants = list(
            Grant.objects.select_for_update()
            .filter(status__in=LIVE)
            .filter(Q(granted_by_user_id=user_id) | Q(grantee_user_id=user_id))
        )
        share_codes = list(
            ShareCode.objects.select_for_update().filter(
                created_by_user_id=user_id, cancelled_at__isnull=True
            )
        )
        for grant in grants:
            _revoke(grant, by=actor.audit_label(), reason="account-closed")
        ShareCode.objects.filter(pk__in=[c.pk for c in share_codes]).update(
            cancelled_at=clock.now(), cancelled_reason="account-closed"
        )
        for patient_id in {g.patient_id for g in grants} | {c.patient_id for c in share_codes}:
            audit_record(
                actor=actor,
                action=Action.SHARING_REVOKE,
                patient_id=patient_id,
                outcome="success",
                reason="account-closed",
                detail={
                    "grants": sum(g.patient_id == patient_id for g in grants),
                    "codes": sum(c.patient_id == patient_id for c in share_codes),
                },
            )
    return len(grants), len(share_codes)


def on_account_closing(*, user_id: int, **_: object) -> dict[str, int]:
    """The ``portability.signals.account_closing`` receiver: counts for the receipt."""
    grants, share_codes = revoke_all_for_account(user_id=user_id)
    counts = {"sharing_grants_stopped": grants, "share_codes_cancelled": share_codes}
    return {k: v for k, v in counts.items() if v}
