"""'I think someone has seen my record': one step that secures the account and tells the
privacy officer. Changes the password, ends every other session, disconnects every app
(revokes all the account's OAuth access and refresh tokens: whoever has the account may
have connected one), removes the passkeys the patient does not recognise, and opens a
privacy-officer case (with the patient's note), all in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import Account, Passkey, PatientLink
from healthspace.accounts.sessions.services import password_changed
from healthspace.audit.services import audit_record
from healthspace.cases.models import PrivacyCase
from healthspace.cases.services import NOTE_MAX, alert_raise

ACTION = "account.compromise-reported"


@dataclass(frozen=True)
class Secured:
    sessions_ended: int
    apps_disconnected: int


def account_secure_after_compromise(
    request: HttpRequest, *, new_password: str, passkey_ids: Iterable[int], note: str
) -> Secured:
    """Returns how many other sessions were ended and apps disconnected."""
    from healthspace.smart.services import tokens_revoke_for_user

    user = request.user
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        Account.objects.filter(user=user).update(password_change_required=False)
        removed = Passkey.objects.filter(user=user, pk__in=list(passkey_ids)).delete()[0]
        ended = password_changed(request, user, reason="compromise-reported")
        apps = tokens_revoke_for_user(user)
        patient_id = (
            PatientLink.objects.filter(user=user).values_list("patient_id", flat=True).first()
        )
        note = (note or "").strip()[:NOTE_MAX]
        event = audit_record(
            actor=actor_for_user(user),
            action=ACTION,
            patient_id=patient_id,
            outcome="case-opened",
            reason="reported-by-patient",
            # the patient's own words go to the privacy officer's case: the audit chain
            # is append-only and must never hold free text, only its size
            detail={
                "sessions_ended": ended,
                "apps_disconnected": apps,
                "passkeys_removed": removed,
                "note_chars": len(note),
            },
        )
        if patient_id is not None:
            # an account without a record has nothing for the privacy officer to review
            case = alert_raise(
                patient_id=patient_id,
                kind=PrivacyCase.Kind.COMPROMISE_REPORTED,
                audit_event_id=event.pk,
            )
            if note:
                case.patient_note = note
                case.save(update_fields=["patient_note"])
    return Secured(ended, apps)
