"""Verifying who a patient is: linkage details from the practice, or an ID check in person.

Linkage details work as in GP online services: the practice gives the patient an account
id, a linkage key and its ODS code; the patient types them, with their date of birth and
surname, into their HealthSpace account. Only an Argon2id hash of the key is kept, a key
works once, and wrong details never say which part was wrong.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, Relationship
from healthspace.access.policy import Action, Decision, decide
from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.login import normalise_identifier
from healthspace.accounts.models import Account, LinkageKey, PatientLink
from healthspace.accounts.sessions import throttle
from healthspace.audit.services import audit_record
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.records.importer import PATIENT_PURPOSE
from healthspace.records.models import Patient
from healthspace.vault import services as vault

logger = logging.getLogger(__name__)

# Action names (to move into access.policy.Action).
ISSUE = "linkage.issue"
VERIFY = "linkage.verify"
LOOKUP = "linkage.lookup"
LINK_IN_PERSON = "account.link-in-person"

# The operator's command: ``healthspace linkage-key`` runs as Actor.system("linkage").
CLI_PURPOSE = "linkage"

# 32 symbols: digits and capitals without 0/O and 1/I, which are misread on paper and
# over the phone. 5 bits a symbol.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
ACCOUNT_ID_LENGTH = 10  # 50 bits: an identifier, not the secret
KEY_GROUPS, KEY_GROUP_LENGTH = 3, 5  # 75 bits of secret, typed as XXXXX-XXXXX-XXXXX
VALID_FOR = timedelta(days=28)

NOT_FOUND_MESSAGE = "No patient with this NHS number is registered at your practice."
GENERIC_ERROR = (
    "The details you entered do not match the linkage details from your GP practice. "
    "Check each one against the letter and try again."
)


# --- the access rule (pure) -------------------------------------------------------------


def linkage_decision(
    actor: Actor, action: str, *, actor_ods: str | None, patient_ods: str | None
) -> Decision:
    """Who may issue linkage details, look a patient up for it, or link an account in person.

    access.decide answers; this gathers what it needs. A registration clerk acts only for
    patients registered at their own practice (the practice knows the patient and answers
    for the identity check); the operator's command may issue, nothing else.
    """
    same_practice = bool(actor_ods) and bool(patient_ods) and actor_ods == patient_ods
    context = AccessContext(
        relationship=Relationship.CARE_TEAM if same_practice else Relationship.NONE
    )
    return decide(actor, Action(action), None, None, context)


# --- codes ------------------------------------------------------------------------------


def _random_code(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalise_code(value: str) -> str:
    """What a patient types, as stored: capitals, no spaces or dashes."""
    return "".join(ch for ch in value.upper() if ch.isalnum())


def format_key(key: str) -> str:
    return "-".join(key[i : i + KEY_GROUP_LENGTH] for i in range(0, len(key), KEY_GROUP_LENGTH))


def format_expiry(when: datetime) -> str:
    """In the service's time zone, as the practice and the patient read it."""
    return timezone.localtime(when).strftime("%-d %B %Y, %H:%M")


def normalise_surname(value: str) -> str:
    # Case-insensitive and tolerant of spacing; accents and punctuation must still match,
    # as they are part of the name the practice recorded.
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


@cache
def _dummy_hash() -> str:
    # Hashed with the current hasher, so checking against it costs what a real check costs.
    return make_password(secrets.token_urlsafe(16))


def _official_surname(resource: dict[str, Any]) -> str | None:
    names = resource.get("name")
    if not isinstance(names, list) or not names:
        return None
    official = next((n for n in names if n.get("use") == "official"), names[0])
    family = official.get("family")
    return family if isinstance(family, str) else None


# --- issuing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLinkage:
    account_id: str
    linkage_key: str  # shown once, never stored
    practice_ods: str
    expires_at: datetime


def linkage_key_issue(
    *, actor: Actor, patient_id: uuid.UUID, actor_ods: str | None = None
) -> IssuedLinkage:
    """New linkage details for a patient; earlier unused ones stop working.

    ``actor_ods`` is the ODS code of a staff actor's organisation (None for the CLI).
    Raises NotFound (absent or not yours: the same) or InvalidInput (no registered practice).
    """
    key = _random_code(KEY_GROUPS * KEY_GROUP_LENGTH)
    key_hash = make_password(key)  # before taking the lock: Argon2 is slow on purpose
    account_id = ""
    t = now()
    with transaction.atomic():
        # Locked so two clerks issuing at once leave exactly one key working.
        patient = (
            Patient.objects.select_for_update(of=("self",), no_key=True)
            .select_related("registered_practice")
            .filter(pk=patient_id)
            .first()
        )
        if patient is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        practice = patient.registered_practice
        practice_ods = practice.ods_code if practice is not None else None
        decision = linkage_decision(actor, ISSUE, actor_ods=actor_ods, patient_ods=practice_ods)
        if not decision.allowed:
            audit_record(
                actor=actor,
                action=ISSUE,
                patient_id=patient.id,
                outcome="denied",
                reason=decision.reason,
            )
        elif practice_ods:
            revoked = LinkageKey.objects.filter(
                patient=patient, used_at__isnull=True, expires_at__gt=t
            ).update(expires_at=t)
            account_id = _random_code(ACCOUNT_ID_LENGTH)
            while LinkageKey.objects.filter(account_id=account_id).exists():
                account_id = _random_code(ACCOUNT_ID_LENGTH)
            LinkageKey.objects.create(
                patient=patient,
                account_id=account_id,
                key_hash=key_hash,
                practice_ods=practice_ods,
                issued_by=actor.audit_label()[:100],
                issued_at=t,
                expires_at=t + VALID_FOR,
            )
            audit_record(
                actor=actor,
                action=ISSUE,
                patient_id=patient.id,
                outcome="success",
                reason=decision.reason,
                detail={"account_id": account_id, "revoked": revoked},
            )
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    if not practice_ods:
        raise InvalidInput(
            "This patient has no registered GP practice (with an ODS code), so linkage "
            "details cannot be issued: the practice is what the patient's details are "
            "checked against. Register the patient with their practice first."
        )
    return IssuedLinkage(account_id, format_key(key), practice_ods, t + VALID_FOR)


def linkage_key_issue_for_nhs_number(
    *, actor: Actor, nhs_number: str, actor_ods: str | None = None
) -> IssuedLinkage:
    patient_id = Patient.objects.filter(nhs_number=nhs_number).values_list("id", flat=True).first()
    if patient_id is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return linkage_key_issue(actor=actor, patient_id=patient_id, actor_ods=actor_ods)


# --- verifying online -------------------------------------------------------------------


@dataclass(frozen=True)
class LinkageDetails:
    account_id: str
    linkage_key: str
    practice_ods: str
    birth_date: date
    surname: str


@dataclass(frozen=True)
class Redemption:
    ok: bool
    reason: str  # internal: for the throttle and the audit, never shown
    patient_id: uuid.UUID | None = None


RECORD_ALREADY_LINKED = "record-already-linked"


def linkage_key_redeem(*, user: Any, details: LinkageDetails) -> Redemption:
    """Link ``user`` to the patient the details belong to, if every detail matches."""
    account_id = normalise_code(details.account_id)
    row = LinkageKey.objects.filter(account_id=account_id).first() if account_id else None
    # Always exactly one Argon2 check, so an unknown account id costs as long as a wrong key
    # (the time taken must not say which part was wrong).
    key_ok = check_password(
        normalise_code(details.linkage_key), row.key_hash if row else _dummy_hash()
    )
    if row is None:
        return Redemption(False, "unknown-account-id")
    t = now()
    patient = Patient.objects.filter(pk=row.patient_id).first()
    resource = (
        vault.cipher_for(patient_id=patient.id).open_json(patient.resource, purpose=PATIENT_PURPOSE)
        if patient is not None
        else {}
    )
    surname = _official_surname(resource) or ""
    # Every check is evaluated; the first failing one is only for the audit trail.
    checks = (
        ("wrong-key", key_ok),
        ("used", row.used_at is None),
        ("expired", t < row.expires_at),
        (
            "wrong-practice",
            hmac.compare_digest(normalise_code(details.practice_ods), row.practice_ods.upper()),
        ),
        ("wrong-birth-date", patient is not None and patient.birth_date == details.birth_date),
        (
            "wrong-surname",
            bool(surname)
            and hmac.compare_digest(
                normalise_surname(details.surname).encode(), normalise_surname(surname).encode()
            ),
        ),
    )
    failed = next((reason for reason, ok in checks if not ok), None)
    actor = actor_for_user(user)
    with transaction.atomic():
        if failed is None and (
            PatientLink.objects.filter(patient_id=row.patient_id).exists()
            or PatientLink.objects.filter(user=user).exists()
        ):
            failed = RECORD_ALREADY_LINKED
        if failed is None:
            # Conditional update: of two people racing with the same key, one wins.
            claimed = LinkageKey.objects.filter(
                pk=row.pk, used_at__isnull=True, expires_at__gt=t
            ).update(used_at=t, used_by=user)
            if not claimed:
                failed = "used"
        if failed is None:
            PatientLink.objects.create(
                user=user,
                patient_id=row.patient_id,
                verified_at=t,
                verified_by=f"linkage key {row.account_id} from {row.practice_ods}"[:100],
                method=PatientLink.Method.LINKAGE_KEY,
            )
        # A failed attempt on a real account id is recorded against that patient: it shows
        # in the trail of who tried to reach their record.
        audit_record(
            actor=actor,
            action=VERIFY,
            patient_id=row.patient_id,
            outcome="success" if failed is None else "failed",
            reason=failed or "linkage-details-matched",
            detail={"account_id": row.account_id},
        )
    if failed is not None:
        return Redemption(False, failed, row.patient_id)
    _notify(
        user,
        subject="Your HealthSpace account is now linked to your GP record",
        body=(
            "Your HealthSpace account was linked to your NHS record today, using the linkage "
            "details from your GP practice.\n\n"
            "If this was not you, contact your GP practice straight away and change your "
            "HealthSpace password.\n"
        ),
    )
    return Redemption(True, "linked", row.patient_id)


@dataclass(frozen=True)
class VerifyOutcome:
    outcome: str  # "done", "failed", "already-linked" or "throttled"
    retry_after_seconds: int = 0


def linkage_verify_step(request: HttpRequest, *, details: LinkageDetails) -> VerifyOutcome:
    """The patient's attempt, throttled per account and per address."""
    user = request.user
    identifier = normalise_identifier(user.get_username())
    verdict = throttle.check(request, kind="linkage", identifier=identifier)
    if not verdict.allowed:
        return VerifyOutcome("throttled", verdict.retry_after_seconds)
    redemption = linkage_key_redeem(user=user, details=details)
    throttle.record(
        request,
        kind="linkage",
        identifier=identifier,
        user=user,
        # Correct details for a record linked elsewhere are not a guess.
        success=redemption.ok or redemption.reason == RECORD_ALREADY_LINKED,
        reason="" if redemption.ok else redemption.reason,
    )
    if redemption.ok:
        # No new session key here: login already rotated it, and the session's record
        # (sessions.UserSession) is keyed by it.
        return VerifyOutcome("done")
    if redemption.reason == RECORD_ALREADY_LINKED:
        return VerifyOutcome("already-linked")
    return VerifyOutcome("failed")


# --- linking in person ------------------------------------------------------------------


def patient_link_in_person(
    *, actor: Actor, actor_ods: str | None, email: str, nhs_number: str
) -> uuid.UUID:
    """A registration clerk has checked the person's ID: link their account to the record.

    Raises NotFound (no such patient at the clerk's practice) or InvalidInput (the account
    cannot be linked). Returns the patient id.
    """
    username = normalise_identifier(email)
    t = now()
    with transaction.atomic():
        patient = (
            Patient.objects.select_related("registered_practice")
            .filter(nhs_number=nhs_number)
            .first()
        )
        if patient is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        practice = patient.registered_practice
        decision = linkage_decision(
            actor,
            LINK_IN_PERSON,
            actor_ods=actor_ods,
            patient_ods=practice.ods_code if practice else None,
        )
        problem = None
        if not decision.allowed:
            outcome, reason = "denied", decision.reason
        else:
            user = (
                get_user_model()
                .objects.select_for_update()
                .filter(username=username, is_active=True)
                .first()
            )
            account = Account.objects.filter(user=user).first() if user else None
            if account is None or account.kind != Account.Kind.PATIENT:
                problem = "no-patient-account"
            elif account.email_confirmed_at is None:
                # Unconfirmed, the address may not be theirs: linking could hand the record
                # to whoever registered it.
                problem = "email-not-confirmed"
            elif PatientLink.objects.filter(user=user).exists():
                problem = "account-already-linked"
            elif PatientLink.objects.filter(patient=patient).exists():
                problem = RECORD_ALREADY_LINKED
            outcome, reason = ("failed", problem) if problem else ("success", decision.reason)
            if problem is None:
                PatientLink.objects.create(
                    user=user,
                    patient=patient,
                    verified_at=t,
                    verified_by=actor.audit_label()[:100],
                    method=PatientLink.Method.IN_PERSON,
                )
        audit_record(
            actor=actor,
            action=LINK_IN_PERSON,
            patient_id=patient.id,
            outcome=outcome,
            reason=reason,
            detail={"user_id": user.pk} if outcome == "success" else {},
        )
    if not decision.allowed:
        raise NotFound(NOT_FOUND_MESSAGE)
    if problem == RECORD_ALREADY_LINKED:
        raise InvalidInput(
            "This patient's record is already linked to a HealthSpace account. Only one "
            "account can see a record."
        )
    if problem is not None:
        raise InvalidInput(
            "This account cannot be linked. Check the email address with the patient: it must "
            "be the address of their HealthSpace account, which they have confirmed and which "
            "is not linked to a record yet."
        )
    _notify(
        user,
        subject="Your HealthSpace account is now linked to your GP record",
        body=(
            "Your HealthSpace account was linked to your NHS record today, after your identity "
            "was checked at your GP practice.\n\n"
            "If this was not you, contact your GP practice straight away.\n"
        ),
    )
    return patient.id


def _notify(user: Any, *, subject: str, body: str) -> None:
    """Tell the account owner; the link stands even if the email cannot be sent now."""
    address = user.email or user.get_username()
    try:
        send_mail(subject, body, None, [address])
    except Exception:  # the mail server being down must not undo a verified identity
        logger.exception("linkage notice email could not be sent (user %s)", user.pk)
