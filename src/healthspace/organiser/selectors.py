"""Reads of the health organiser. Each asks ``access.decide`` (the account's own organiser:
``AccessContext(portal_owner="user:<owner>")``), scopes every query by the owner, and
writes its audit event in the read's transaction. A row of another account is "not
found", exactly like a missing one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext
from healthspace.access.policy import Action, Decision, decide
from healthspace.accounts.portal import portal_cipher_for
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.errors import NotFound, Refused
from healthspace.organiser import values as V
from healthspace.organiser.measures import Measure
from healthspace.organiser.models import Appointment, Medicine, Note, Reading
from healthspace.vault.crypto import PatientCipher

NOT_FOUND = "Page not found."
# the overview's small charts: this many latest readings of each measure
OVERVIEW_POINTS = 30


def purpose(kind: str, row_id: uuid.UUID) -> str:
    return f"organiser:{kind}:{row_id}"


def owner_context(owner_id: int) -> AccessContext:
    return AccessContext(portal_owner=f"user:{owner_id}")


def require(actor: Actor, action: Action, owner_id: int) -> Decision:
    """Ask decide() about the owner's organiser; a refusal is audited and is "not found"."""
    decision = access_checked(
        actor=actor, action=action, patient_id=actor.patient_id, context=owner_context(owner_id)
    )
    if not decision.allowed:
        raise Refused(NOT_FOUND, reason=decision.reason)
    return decision


def audit_success(actor: Actor, action: Action, decision: Decision, **detail: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        patient_id=actor.patient_id,
        outcome="success",
        reason=decision.reason,
        detail=detail,
    )


# --- readings -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadingView:
    id: uuid.UUID
    measure: Measure
    taken_at: datetime
    values: dict[str, Any]
    entered: dict[str, Any]
    note: str
    shared: bool
    updated_at: datetime
    bmi: float | None = None

    @property
    def text(self) -> str:
        return V.entered_text(self.measure, self.values, self.entered)

    @property
    def canonical(self) -> str:
        return V.canonical_text(self.measure, self.values)

    @property
    def unit(self) -> str:
        return str(self.entered.get("unit") or "")


def open_reading(cipher: PatientCipher, row: Reading) -> ReadingView:
    content = cipher.open_json(row.payload, purpose=purpose("reading", row.id))
    return ReadingView(
        id=row.id,
        measure=Measure(row.measure),
        taken_at=row.taken_at,
        values=content["values"],
        entered=content["entered"],
        note=content.get("note") or "",
        shared=row.shared,
        updated_at=row.updated_at,
    )


def with_bmi(reading: ReadingView, height: ReadingView | None) -> ReadingView:
    if reading.measure != Measure.WEIGHT or height is None:
        return reading
    bmi = V.bmi(reading.values["kg"], height.values["cm"])
    return replace(reading, bmi=bmi)


def latest_height(cipher: PatientCipher, owner_id: int) -> ReadingView | None:
    row = (
        Reading.objects.filter(owner_id=owner_id, measure=Measure.HEIGHT)
        .order_by("-taken_at", "-created_at")
        .first()
    )
    return open_reading(cipher, row) if row is not None else None


@dataclass
class Overview:
    # measure -> its latest readings, newest first (at most OVERVIEW_POINTS)
    readings: dict[Measure, list[ReadingView]] = field(default_factory=dict)
    height: ReadingView | None = None

    def latest(self, measure: Measure) -> ReadingView | None:
        rows = self.readings.get(measure) or []
        return rows[0] if rows else None


def overview_for(*, actor: Actor, owner_id: int) -> Overview:
    """The latest readings of every measure, in one query (a window per measure)."""
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        ranked = Reading.objects.filter(owner_id=owner_id).annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("measure")],
                order_by=[F("taken_at").desc(), F("created_at").desc()],
            )
        )
        rows = list(ranked.filter(rank__lte=OVERVIEW_POINTS).order_by("measure", "-taken_at"))
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="overview", readings=len(rows))
    overview = Overview()
    for row in rows:
        overview.readings.setdefault(Measure(row.measure), []).append(open_reading(cipher, row))
    heights = overview.readings.get(Measure.HEIGHT) or []
    overview.height = heights[0] if heights else None
    if Measure.WEIGHT in overview.readings:
        overview.readings[Measure.WEIGHT] = [
            with_bmi(r, overview.height) for r in overview.readings[Measure.WEIGHT]
        ]
    return overview


@dataclass
class MeasurePage:
    measure: Measure
    readings: list[ReadingView]  # newest first
    height: ReadingView | None = None
    total: int = 0  # of this measure, in any period


def readings_for(
    *, actor: Actor, owner_id: int, measure: Measure, since: datetime | None
) -> MeasurePage:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        query = Reading.objects.filter(owner_id=owner_id, measure=measure)
        total = query.count()
        if since is not None:
            query = query.filter(taken_at__gte=since)
        rows = list(query.order_by("-taken_at", "-created_at"))
        height = latest_height(cipher, owner_id) if measure == Measure.WEIGHT else None
        audit_success(
            actor,
            Action.ORGANISER_VIEW,
            decision,
            what="readings",
            measure=measure,
            count=len(rows),
        )
    readings = [with_bmi(open_reading(cipher, row), height) for row in rows]
    return MeasurePage(measure=measure, readings=readings, height=height, total=total)


def reading_for(*, actor: Actor, owner_id: int, reading_id: uuid.UUID) -> ReadingView:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = Reading.objects.filter(owner_id=owner_id, pk=reading_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="reading", measure=row.measure)
    return open_reading(cipher, row)


def readings_for_export(
    *, actor: Actor, owner_id: int, measure: Measure | None
) -> list[ReadingView]:
    """Every reading (or every reading of one measure), oldest first, for the CSV."""
    decision = require(actor, Action.ORGANISER_EXPORT, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        query = Reading.objects.filter(owner_id=owner_id)
        if measure is not None:
            query = query.filter(measure=measure)
        rows = list(query.order_by("taken_at", "created_at"))
        height = latest_height(cipher, owner_id)
        audit_success(
            actor,
            Action.ORGANISER_EXPORT,
            decision,
            what="readings-csv",
            measure=str(measure) if measure else "all",
            count=len(rows),
        )
    return [with_bmi(open_reading(cipher, row), height) for row in rows]


# --- diary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentView:
    id: uuid.UUID
    starts_at: datetime
    what: str
    where: str
    notes: str
    reminder: str
    reminder_at: datetime | None
    reminder_sent_at: datetime | None


def open_appointment(cipher: PatientCipher, row: Appointment) -> AppointmentView:
    content = cipher.open_json(row.payload, purpose=purpose("appointment", row.id))
    return AppointmentView(
        id=row.id,
        starts_at=row.starts_at,
        what=content["what"],
        where=content.get("where") or "",
        notes=content.get("notes") or "",
        reminder=row.reminder,
        reminder_at=row.reminder_at,
        reminder_sent_at=row.reminder_sent_at,
    )


@dataclass
class Diary:
    upcoming: list[AppointmentView]  # soonest first
    past: list[AppointmentView]  # most recent first


def diary_for(*, actor: Actor, owner_id: int, now: datetime) -> Diary:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        rows = list(
            Appointment.objects.filter(owner_id=owner_id).order_by("starts_at", "created_at")
        )
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="diary", count=len(rows))
    views = [open_appointment(cipher, row) for row in rows]
    return Diary(
        upcoming=[a for a in views if a.starts_at >= now],
        past=[a for a in reversed(views) if a.starts_at < now],
    )


def appointment_for(*, actor: Actor, owner_id: int, appointment_id: uuid.UUID) -> AppointmentView:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = Appointment.objects.filter(owner_id=owner_id, pk=appointment_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="appointment")
    return open_appointment(cipher, row)


# --- notes and medicines --------------------------------------------------------------


@dataclass(frozen=True)
class NoteView:
    id: uuid.UUID
    title: str
    text: str
    created_at: datetime
    updated_at: datetime


def _open_note(cipher: PatientCipher, row: Note) -> NoteView:
    content = cipher.open_json(row.payload, purpose=purpose("note", row.id))
    return NoteView(row.id, content["title"], content["text"], row.created_at, row.updated_at)


def notes_for(*, actor: Actor, owner_id: int) -> list[NoteView]:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        rows = list(Note.objects.filter(owner_id=owner_id).order_by("-updated_at", "-created_at"))
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="notes", count=len(rows))
    return [_open_note(cipher, row) for row in rows]


def note_for(*, actor: Actor, owner_id: int, note_id: uuid.UUID) -> NoteView:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = Note.objects.filter(owner_id=owner_id, pk=note_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="note")
    return _open_note(cipher, row)


@dataclass(frozen=True)
class MedicineView:
    id: uuid.UUID
    name: str
    how: str
    what_for: str
    since: str  # "YYYY-MM", "YYYY" or ""
    stopped: str

    @property
    def current(self) -> bool:
        return not self.stopped


def _open_medicine(cipher: PatientCipher, row: Medicine) -> MedicineView:
    c = cipher.open_json(row.payload, purpose=purpose("medicine", row.id))
    return MedicineView(
        row.id, c["name"], c.get("how") or "", c.get("what_for") or "", c.get("since") or "",
        c.get("stopped") or "",
    )  # fmt: skip


def medicines_for(*, actor: Actor, owner_id: int) -> list[MedicineView]:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        rows = list(Medicine.objects.filter(owner_id=owner_id).order_by("created_at", "id"))
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="medicines", count=len(rows))
    medicines = [_open_medicine(cipher, row) for row in rows]
    return sorted(medicines, key=lambda m: m.name.casefold())


def medicine_for(*, actor: Actor, owner_id: int, medicine_id: uuid.UUID) -> MedicineView:
    decision = require(actor, Action.ORGANISER_VIEW, owner_id)
    cipher = portal_cipher_for(user_id=owner_id)
    with transaction.atomic():
        row = Medicine.objects.filter(owner_id=owner_id, pk=medicine_id).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        audit_success(actor, Action.ORGANISER_VIEW, decision, what="medicine")
    return _open_medicine(cipher, row)


def sharing_allowed(actor: Actor) -> bool:
    """Whether the page offers sharing: only a verified account has a care team to share
    with (the share itself asks decide() again, and audits)."""
    return decide(actor, Action.READINGS_SHARE, actor.patient_id).allowed
