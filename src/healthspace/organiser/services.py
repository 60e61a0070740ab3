"""Writes of the health organiser. Each asks ``access.decide`` first, works in one
transaction with its audit event, seals what the patient typed under the account's portal
key, and scopes every row by its owner (another account's id is "not found").

Shared readings live twice: the organiser's row (the patient's own) and a patient-recorded
Observation in the SCR (``records.patient_items``), kept in step in the same transaction
by every edit, unshare and delete.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.policy import Action, Decision, decide
from healthspace.accounts.models import PatientLink
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, NotFound, Refused
from healthspace.notify.notices import Notice
from healthspace.notify.services import notice_send
from healthspace.organiser import fhir
from healthspace.organiser import values as V
from healthspace.organiser.measures import Measure
from healthspace.organiser.models import Appointment, Medicine, Note, Reading
from healthspace.organiser.selectors import (
    NOT_FOUND,
    audit_success,
    latest_height,
    open_reading,
    purpose,
    require,
)
from healthspace.records.models import Section
from healthspace.records.patient_items import patient_item_put, patient_item_remove
from healthspace.vault.crypto import PatientCipher

NOTE_MAX = 500  # a reading's note
TITLE_MAX = 200
TEXT_MAX = 5000
WHERE_MAX = 200
APPOINTMENT_NOTES_MAX = 2000
MEDICINE_FIELD_MAX = 200
MEDICINE_HOW_MAX = 500


# --- readings -------------------------------------------------------------------------


def _reading_key(reading_id: uuid.UUID) -> str:
    return f"reading:{reading_id}"


def _bmi_key(reading_id: uuid.UUID) -> str:
    return f"reading:{reading_id}:bmi"


def _seal_reading(
    cipher: PatientCipher, row: Reading, values: dict[str, Any], entered: dict[str, Any], note: str
) -> None:
    row.payload = cipher.seal_json(
        {"values": values, "entered": entered, "note": note}, purpose=purpose("reading", row.id)
    )


def _check_reading(measure: Measure, values: dict[str, Any], note: str) -> None:
    """The service's own check (a form checks first, with messages for each box)."""
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"The note must be {NOTE_MAX} characters or fewer")
    expected = {key for key, _label, _code in _components(measure)}
    if set(values) != expected:
        raise InvalidInput("The reading's values do not match its measure")


def _components(measure: Measure):
    from healthspace.organiser.measures import INFO

    return INFO[measure].components


def _share_put(
    *, patient_id: uuid.UUID, cipher: PatientCipher, owner_id: int, row: Reading
) -> None:
    """Put the reading's Observation (and a weight's BMI) into the SCR."""
    reading = open_reading(cipher, row)
    patient_item_put(
        patient_id=patient_id,
        key=_reading_key(row.id),
        section=Section.RESULTS,
        resource=fhir.observation(
            patient_id=patient_id,
            measure=reading.measure,
            values=reading.values,
            taken_at=reading.taken_at,
            note=reading.note,
        ),
    )
    if reading.measure == Measure.WEIGHT:
        _share_bmi(patient_id=patient_id, cipher=cipher, owner_id=owner_id, weight=reading)


def _share_bmi(*, patient_id: uuid.UUID, cipher: PatientCipher, owner_id: int, weight) -> None:
    height = latest_height(cipher, owner_id)
    if height is None:
        patient_item_remove(
            patient_id=patient_id, key=_bmi_key(weight.id), resource_type="Observation"
        )
        return
    patient_item_put(
        patient_id=patient_id,
        key=_bmi_key(weight.id),
        section=Section.RESULTS,
        resource=fhir.bmi_observation(
            patient_id=patient_id,
            bmi=V.bmi(weight.values["kg"], height.values["cm"]),
            taken_at=weight.taken_at,
        ),
    )


def _share_remove(*, patient_id: uuid.UUID, reading_id: uuid.UUID, measure: str) -> None:
    patient_item_remove(
        patient_id=patient_id, key=_reading_key(reading_id), resource_type="Observation"
    )
    if measure == Measure.WEIGHT:
        patient_item_remove(
            patient_id=patient_id, key=_bmi_key(reading_id), resource_type="Observation"
        )


def _resync_bmi(*, actor: Actor, cipher: PatientCipher, owner_id: int) -> int:
    """A height changed: every shared weight's BMI follows the latest height."""
    if actor.patient_id is None:
        return 0
    shared = list(Reading.objects.filter(owner_id=owner_id, measure=Measure.WEIGHT, shared=True))
    for row in shared:
        _share_bmi(
            patient_id=actor.patient_id,
            cipher=cipher,
            owner_id=owner_id,
            weight=open_reading(cipher, row),
        )
    return len(shared)


def _share_decision(actor: Actor) -> Decision:
    """May the actor's shared readings be kept in step with the SCR? Pure: asked before an
    edit or a delete of a reading that may be shared (a refusal then unshares it)."""
    return decide(actor, Action.READINGS_SHARE, actor.patient_id)


def reading_add(
    *,
    actor: Actor,
    owner_id: int,
    measure: Measure,
    taken_at: datetime,
    values: dict[str, Any],
    entered: dict[str, Any],
    note: str = "",
) -> uuid.UUID:
    _check_reading(measure, values, note)
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    share = _share_decision(actor)
    cipher = portal_cipher_for(user_id=owner_id)
    moment = now()
    with transaction.atomic():
        row = Reading(
            owner_id=owner_id,
            measure=measure,
            taken_at=taken_at,
            created_at=moment,
            updated_at=moment,
        )
        _seal_reading(cipher, row, values, entered, note)
        row.save(force_insert=True)
        resynced = (
            _resync_bmi(actor=actor, cipher=cipher, owner_id=owner_id)
            if measure == Measure.HEIGHT and share.allowed
            else 0
        )
        audit_success(
            actor, Action.ORGANISER_CHANGE, decision, what="reading", change="add", measure=measure
        )
        if resynced:
            audit_success(actor, Action.READINGS_SHARE, share, change="bmi-updated", count=resynced)
    return row.id


def _locked_reading(owner_id: int, reading_id: uuid.UUID) -> Reading:
    row = Reading.objects.select_for_update().filter(owner_id=owner_id, pk=reading_id).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


def reading_update(
    *,
    actor: Actor,
    owner_id: int,
    reading_id: uuid.UUID,
    taken_at: datetime,
    values: dict[str, Any],
    entered: dict[str, Any],
    note: str = "",
) -> None:
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    share = _share_decision(actor)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = _locked_reading(owner_id, reading_id)
        measure = Measure(row.measure)
        _check_reading(measure, values, note)
        row.taken_at = taken_at
        row.updated_at = now()
        _seal_reading(cipher, row, values, entered, note)
        if row.shared and not share.allowed:
            row.shared = False  # the account no longer has the record it was shared to
        row.save(update_fields=["taken_at", "updated_at", "payload", "shared"])
        audit_success(
            actor, Action.ORGANISER_CHANGE, decision, what="reading", change="edit", measure=measure
        )
        if share.allowed:
            changed = 0
            if row.shared:
                _share_put(patient_id=actor.patient_id, cipher=cipher, owner_id=owner_id, row=row)
                changed = 1
            if measure == Measure.HEIGHT:
                changed += _resync_bmi(actor=actor, cipher=cipher, owner_id=owner_id)
            if changed:
                audit_success(
                    actor, Action.READINGS_SHARE, share, change="updated", measure=measure
                )


def reading_delete(*, actor: Actor, owner_id: int, reading_id: uuid.UUID) -> None:
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    share = _share_decision(actor)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = _locked_reading(owner_id, reading_id)
        measure = Measure(row.measure)
        was_shared = row.shared
        row.delete()  # (clears row.pk: reading_id names it from here)
        audit_success(
            actor,
            Action.ORGANISER_CHANGE,
            decision,
            what="reading",
            change="delete",
            measure=measure,
        )
        if share.allowed:
            if was_shared:
                _share_remove(patient_id=actor.patient_id, reading_id=reading_id, measure=measure)
            resynced = (
                _resync_bmi(actor=actor, cipher=cipher, owner_id=owner_id)
                if measure == Measure.HEIGHT
                else 0
            )
            if was_shared or resynced:
                audit_success(
                    actor, Action.READINGS_SHARE, share, change="removed", measure=measure
                )


def readings_share_set(
    *,
    actor: Actor,
    owner_id: int,
    measure: Measure,
    shown_ids: list[uuid.UUID],
    shared_ids: list[uuid.UUID],
) -> tuple[int, int]:
    """Share the readings in ``shared_ids`` and stop sharing the others of ``shown_ids``
    (the readings the page listed). Returns (newly shared, no longer shared)."""
    require(actor, Action.ORGANISER_CHANGE, owner_id)  # the rows are the account's own
    share = access_checked(actor=actor, action=Action.READINGS_SHARE, patient_id=actor.patient_id)
    if not share.allowed:
        raise Refused(NOT_FOUND, reason=share.reason)
    wanted = set(shared_ids)
    if not wanted <= set(shown_ids):
        raise InvalidInput("Choose only readings shown on the page")
    cipher = portal_cipher_for(user_id=owner_id)
    added = removed = 0
    with transaction.atomic():
        rows = list(
            Reading.objects.select_for_update()
            .filter(owner_id=owner_id, measure=measure, pk__in=list(shown_ids))
            .order_by("taken_at")
        )
        if len(rows) != len(set(shown_ids)):
            raise NotFound(NOT_FOUND)
        for row in rows:
            want = row.id in wanted
            if want == row.shared:
                continue
            if want:
                _share_put(patient_id=actor.patient_id, cipher=cipher, owner_id=owner_id, row=row)
                added += 1
            else:
                _share_remove(patient_id=actor.patient_id, reading_id=row.id, measure=row.measure)
                removed += 1
            row.shared = want
            row.save(update_fields=["shared"])
        audit_success(
            actor,
            Action.READINGS_SHARE,
            share,
            measure=measure,
            shared=added,
            unshared=removed,
        )
    return added, removed


# --- diary and reminders --------------------------------------------------------------


def _seal_appointment(cipher: PatientCipher, row: Appointment, what: str, where: str, notes: str):
    row.payload = cipher.seal_json(
        {"what": what, "where": where, "notes": notes}, purpose=purpose("appointment", row.id)
    )


def _check_appointment(
    *, starts_at: datetime, what: str, where: str, notes: str, reminder_at: datetime | None
) -> None:
    if not what.strip() or len(what) > TITLE_MAX:
        raise InvalidInput(f"Enter what the appointment is for, in {TITLE_MAX} characters or fewer")
    if len(where) > WHERE_MAX or len(notes) > APPOINTMENT_NOTES_MAX:
        raise InvalidInput("The place or the notes are too long")
    if reminder_at is not None:
        if reminder_at >= starts_at:
            raise InvalidInput("The reminder must be before the appointment")
        if reminder_at <= now():
            raise InvalidInput("The reminder time has already passed")


def _queue_reminder(row: Appointment) -> None:
    from healthspace.organiser.tasks import appointment_reminder_send

    if row.reminder_at is None:
        return
    appointment_reminder_send.using(run_after=row.reminder_at).enqueue(
        str(row.id), row.reminder_at.isoformat()
    )


def appointment_add(
    *,
    actor: Actor,
    owner_id: int,
    starts_at: datetime,
    what: str,
    where: str = "",
    notes: str = "",
    reminder: str = "none",
    reminder_at: datetime | None = None,
) -> uuid.UUID:
    _check_appointment(
        starts_at=starts_at, what=what, where=where, notes=notes, reminder_at=reminder_at
    )
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    moment = now()
    with transaction.atomic():
        row = Appointment(
            owner_id=owner_id,
            starts_at=starts_at,
            reminder=reminder if reminder_at is not None else "none",
            reminder_at=reminder_at,
            created_at=moment,
            updated_at=moment,
        )
        _seal_appointment(cipher, row, what, where, notes)
        row.save(force_insert=True)
        _queue_reminder(row)
        audit_success(
            actor,
            Action.ORGANISER_CHANGE,
            decision,
            what="appointment",
            change="add",
            reminder=row.reminder,
        )
    return row.id


def _locked_appointment(owner_id: int, appointment_id: uuid.UUID) -> Appointment:
    row = (
        Appointment.objects.select_for_update().filter(owner_id=owner_id, pk=appointment_id).first()
    )
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


def appointment_update(
    *,
    actor: Actor,
    owner_id: int,
    appointment_id: uuid.UUID,
    starts_at: datetime,
    what: str,
    where: str = "",
    notes: str = "",
    reminder: str = "none",
    reminder_at: datetime | None = None,
) -> None:
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = _locked_appointment(owner_id, appointment_id)
        unchanged_sent = (
            reminder_at is not None
            and row.reminder_sent_at is not None
            and row.reminder_at == reminder_at
        )
        # a reminder already sent may stay as it was; any new one must still be ahead
        _check_appointment(
            starts_at=starts_at,
            what=what,
            where=where,
            notes=notes,
            reminder_at=None if unchanged_sent else reminder_at,
        )
        new_time = row.reminder_at != reminder_at
        row.starts_at = starts_at
        row.reminder = reminder if reminder_at is not None else "none"
        row.reminder_at = reminder_at
        if new_time:
            # tasks queued for the old time find it changed and do nothing
            row.reminder_sent_at = None
        row.updated_at = now()
        _seal_appointment(cipher, row, what, where, notes)
        row.save()
        if new_time:
            _queue_reminder(row)
        audit_success(
            actor,
            Action.ORGANISER_CHANGE,
            decision,
            what="appointment",
            change="edit",
            reminder=row.reminder,
        )


def appointment_delete(*, actor: Actor, owner_id: int, appointment_id: uuid.UUID) -> None:
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    with transaction.atomic():
        row = _locked_appointment(owner_id, appointment_id)
        row.delete()  # its queued reminder finds nothing and does nothing
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="appointment", change="delete")


REMINDERS = Actor.system("reminders")


def appointment_reminder_deliver(*, appointment_id: uuid.UUID, reminder_at: datetime) -> str:
    """Run by the worker when a reminder falls due: send it if the appointment still
    exists, still wants a reminder at exactly this time, has not had it, and has not
    started. Returns what happened (the task's result; never the appointment's details)."""
    with transaction.atomic():
        row = Appointment.objects.select_for_update().filter(pk=appointment_id).first()
        if row is None:
            return "appointment-gone"
        if row.reminder_at is None or row.reminder_at != reminder_at:
            return "reminder-changed"
        if row.reminder_sent_at is not None:
            return "already-sent"
        if row.starts_at <= now():
            return "appointment-started"
        patient_id = (
            PatientLink.objects.filter(user_id=row.owner_id)
            .values_list("patient_id", flat=True)
            .first()
        )
        decision = decide(REMINDERS, Action.REMINDER_SEND, patient_id)
        detail = {"appointment": str(row.id), "owner": f"user:{row.owner_id}"}
        if not decision.allowed:
            audit_record(
                actor=REMINDERS,
                action=Action.REMINDER_SEND,
                patient_id=patient_id,
                outcome="denied",
                reason=decision.reason,
                detail=detail,
            )
            return "refused"
        # the email says only the date and time: never what or where
        notice_send(user_id=row.owner_id, notice=Notice.APPOINTMENT_REMINDER, when=row.starts_at)
        row.reminder_sent_at = now()
        row.save(update_fields=["reminder_sent_at"])
        audit_record(
            actor=REMINDERS,
            action=Action.REMINDER_SEND,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail=detail,
        )
    return "sent"


# --- notes ----------------------------------------------------------------------------


def _check_note(title: str, text: str) -> None:
    if not title.strip() or len(title) > TITLE_MAX:
        raise InvalidInput(f"Enter a title of {TITLE_MAX} characters or fewer")
    if not text.strip() or len(text) > TEXT_MAX:
        raise InvalidInput(f"Enter the note, in {TEXT_MAX} characters or fewer")


def note_add(*, actor: Actor, owner_id: int, title: str, text: str) -> uuid.UUID:
    _check_note(title, text)
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    moment = now()
    with transaction.atomic():
        row = Note(owner_id=owner_id, created_at=moment, updated_at=moment)
        row.payload = cipher.seal_json(
            {"title": title, "text": text}, purpose=purpose("note", row.id)
        )
        row.save(force_insert=True)
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="note", change="add")
    return row.id


def note_update(*, actor: Actor, owner_id: int, note_id: uuid.UUID, title: str, text: str) -> None:
    _check_note(title, text)
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = Note.objects.select_for_update().filter(owner_id=owner_id, pk=note_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        row.payload = cipher.seal_json(
            {"title": title, "text": text}, purpose=purpose("note", row.id)
        )
        row.updated_at = now()
        row.save(update_fields=["payload", "updated_at"])
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="note", change="edit")


def note_delete(*, actor: Actor, owner_id: int, note_id: uuid.UUID) -> None:
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    with transaction.atomic():
        deleted, _ = Note.objects.filter(owner_id=owner_id, pk=note_id).delete()
        if not deleted:
            raise NotFound(NOT_FOUND)
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="note", change="delete")


# --- my medicines ---------------------------------------------------------------------


def _medicine_content(
    name: str, how: str, what_for: str, since: str, stopped: str
) -> dict[str, str]:
    if not name.strip() or len(name) > MEDICINE_FIELD_MAX:
        raise InvalidInput(
            f"Enter the name of the medicine, in {MEDICINE_FIELD_MAX} characters or fewer"
        )
    if len(how) > MEDICINE_HOW_MAX or len(what_for) > MEDICINE_FIELD_MAX:
        raise InvalidInput("How you take it, or what it is for, is too long")
    first = since if len(since) == 7 else f"{since}-01"
    last = stopped if len(stopped) == 7 else f"{stopped}-12"
    if since and stopped and last < first:
        raise InvalidInput("The date you stopped must be after the date you started")
    return {"name": name, "how": how, "what_for": what_for, "since": since, "stopped": stopped}


def medicine_add(
    *,
    actor: Actor,
    owner_id: int,
    name: str,
    how: str = "",
    what_for: str = "",
    since: str = "",
    stopped: str = "",
) -> uuid.UUID:
    content = _medicine_content(name, how, what_for, since, stopped)
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    moment = now()
    with transaction.atomic():
        row = Medicine(owner_id=owner_id, created_at=moment, updated_at=moment)
        row.payload = cipher.seal_json(content, purpose=purpose("medicine", row.id))
        row.save(force_insert=True)
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="medicine", change="add")
    return row.id


def medicine_update(
    *,
    actor: Actor,
    owner_id: int,
    medicine_id: uuid.UUID,
    name: str,
    how: str = "",
    what_for: str = "",
    since: str = "",
    stopped: str = "",
) -> None:
    content = _medicine_content(name, how, what_for, since, stopped)
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = Medicine.objects.select_for_update().filter(owner_id=owner_id, pk=medicine_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        row.payload = cipher.seal_json(content, purpose=purpose("medicine", row.id))
        row.updated_at = now()
        row.save(update_fields=["payload", "updated_at"])
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="medicine", change="edit")


def medicine_delete(*, actor: Actor, owner_id: int, medicine_id: uuid.UUID) -> None:
    decision = require(actor, Action.ORGANISER_CHANGE, owner_id)
    with transaction.atomic():
        deleted, _ = Medicine.objects.filter(owner_id=owner_id, pk=medicine_id).delete()
        if not deleted:
            raise NotFound(NOT_FOUND)
        audit_success(actor, Action.ORGANISER_CHANGE, decision, what="medicine", change="delete")
