"""Closing an account, and shredding a record whose deletion was granted.

``account_close``: the account's own data goes. In one transaction: ``account_closing``
is sent (sharing revokes what the account granted), the organiser's rows, the
Communicator's threads (messages, attachments), downloads, connected apps' tokens and the
link to the record are deleted, the login is disabled (password unusable, username and
email replaced, every session ended), the account's ``portal`` data key is destroyed
(crypto-shredding: every copy in every backup is unreadable from then on), the closure is
audited and a signed receipt issued. The Summary Care Record itself stays with the NHS
under its own consent rules (readings the patient shared into it are part of it).

``record_shred``: called when a privacy officer grants a patient's deletion request; the
record's ``scr`` key is destroyed (its items, versions, the patient's additions and
correction requests become unreadable), with a receipt of its own.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from django.db import transaction
from django.utils.crypto import get_random_string

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action
from healthspace.accounts.models import Account, PatientLink
from healthspace.accounts.sessions.services import sessions_end_all
from healthspace.audit.chain import timestamp
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.clock import now
from healthspace.core.errors import Refused
from healthspace.portability import receipts
from healthspace.portability.models import DeletionReceipt, Download
from healthspace.portability.signals import account_closing
from healthspace.vault import services as vault
from healthspace.vault.models import DataKey

ACCOUNT_KEPT = (
    "Your Summary Care Record stays with the NHS under its own consent rules; this account's "
    "own data (health organiser, messages, sharing, downloads) was deleted and its key destroyed."
)
RECORD_KEPT = (
    "The Summary Care Record's content was deleted (its key destroyed) as the patient asked; "
    "the audit trail of who looked at it, and the decision, are kept."
)


def _destroy(subject_id: uuid.UUID, kind: str) -> list[dict[str, str]]:
    row = DataKey.objects.filter(patient_id=subject_id).first()
    if row is None:
        return []  # never made (nothing was ever sealed under it)
    vault.datakey_destroy(patient_id=subject_id)
    row.refresh_from_db()
    return [
        {
            "kind": kind,
            "key_id": str(subject_id),
            "destroyed_at": timestamp(row.destroyed_at),
        }
    ]


def _delete(counts: Counter, name: str, queryset) -> None:
    _, per_model = queryset.delete()
    counts[name] += per_model.get(queryset.model._meta.label, 0)


def _revoke_apps(user) -> int:
    from oauth2_provider.models import (
        get_access_token_model,
        get_grant_model,
        get_id_token_model,
        get_refresh_token_model,
    )

    get_refresh_token_model().objects.filter(user=user).delete()
    get_id_token_model().objects.filter(user=user).delete()
    get_grant_model().objects.filter(user=user).delete()
    deleted, _ = get_access_token_model().objects.filter(user=user).delete()
    return deleted


def account_close(*, actor: Actor, user) -> dict[str, Any]:
    """Close the caller's own account (the view has checked their password and their
    "I understand"). Returns the signed receipt."""
    from healthspace.messaging.models import Attachment, Message, Thread
    from healthspace.organiser.models import Appointment, Medicine, Note, Reading

    owner = f"user:{user.pk}"
    decision = access_checked(
        actor=actor,
        action=Action.ACCOUNT_CLOSE,
        patient_id=actor.patient_id,
        context=AccessContext(portal_owner=owner),
    )
    if not decision.allowed or actor.id != owner:
        raise Refused("There is no account here that you can close.", reason=decision.reason)
    with transaction.atomic():
        account = Account.objects.select_for_update().get(user_id=user.pk)
        counts: Counter[str] = Counter()
        for _receiver, answer in account_closing.send(
            sender=Account, user_id=user.pk, patient_id=actor.patient_id
        ):
            if isinstance(answer, dict):
                counts.update({str(k): int(v) for k, v in answer.items()})
        _delete(counts, "organiser_readings", Reading.objects.filter(owner_id=user.pk))
        _delete(counts, "organiser_appointments", Appointment.objects.filter(owner_id=user.pk))
        _delete(counts, "organiser_notes", Note.objects.filter(owner_id=user.pk))
        _delete(counts, "organiser_medicines", Medicine.objects.filter(owner_id=user.pk))
        threads = Thread.objects.filter(owner_id=user.pk)
        counts["message_attachments"] += Attachment.objects.filter(thread__in=threads).count()
        counts["messages"] += Message.objects.filter(thread__in=threads).count()
        _delete(counts, "message_threads", threads)
        _delete(counts, "downloads", Download.objects.filter(owner_id=user.pk))
        counts["app_tokens"] += _revoke_apps(user)
        _delete(counts, "record_links", PatientLink.objects.filter(user_id=user.pk))
        counts["sessions_ended"] += sessions_end_all(user, reason="account-closed")
        at = now()
        user.is_active = False
        user.set_unusable_password()
        user.username = f"closed-{user.pk}-{get_random_string(12)}"
        user.email = ""
        user.first_name = user.last_name = ""
        user.save()
        audit_record(
            actor=actor,
            action=Action.ACCOUNT_CLOSE,
            patient_id=actor.patient_id,
            outcome="success",
            reason=decision.reason,
            detail={"counts": dict(sorted(counts.items()))},
        )
        # last: a shredding cannot be rolled back, so nothing that could fail comes after
        destroyed = _destroy(account.portal_subject, DataKey.Kind.PORTAL)
        receipt = receipts.issue(
            kind="account-closure",
            issued_at=at,
            account=owner,
            deleted=dict(counts),
            keys_destroyed=destroyed,
            kept=ACCOUNT_KEPT,
        )
        DeletionReceipt.objects.create(
            id=receipt["receipt_id"],
            kind=receipt["kind"],
            issued_at=at,
            document=receipts.dumps(receipt),
        )
    return receipt


def record_shred(*, patient_id: uuid.UUID) -> dict[str, Any]:
    """Destroy a deleted record's ``scr`` key (inside the decision's transaction, as its
    last step) and issue the receipt. Downloads of the record's account go too: they hold
    copies of it sealed under the account's own key."""
    from healthspace.records.models import ScrItem

    counts: Counter[str] = Counter()
    counts["scr_items"] = ScrItem.objects.filter(patient_id=patient_id).count()
    user_id = (
        PatientLink.objects.filter(patient_id=patient_id).values_list("user_id", flat=True).first()
    )
    if user_id is not None:
        _delete(counts, "downloads", Download.objects.filter(owner_id=user_id))
    at = now()
    destroyed = _destroy(patient_id, DataKey.Kind.SCR)
    receipt = receipts.issue(
        kind="record-deletion",
        issued_at=at,
        account=f"user:{user_id}" if user_id is not None else None,
        deleted=dict(counts),
        keys_destroyed=destroyed,
        kept=RECORD_KEPT,
    )
    DeletionReceipt.objects.create(
        id=receipt["receipt_id"],
        kind=receipt["kind"],
        issued_at=at,
        patient_id=patient_id,
        document=receipts.dumps(receipt),
    )
    return receipt
