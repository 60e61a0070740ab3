"""Forms of the organiser pages, with NHS.UK error messages (one per box, linked from the
error summary). The numbers of a reading are checked by ``values.parse`` against the
ranges table; dates come from the NHS.UK date input and a time box."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from healthspace.core.clock import now
from healthspace.organiser import values as V
from healthspace.organiser.measures import SCHEMES, Measure
from healthspace.organiser.services import (
    APPOINTMENT_NOTES_MAX,
    MEDICINE_FIELD_MAX,
    MEDICINE_HOW_MAX,
    NOTE_MAX,
    TEXT_MAX,
    TITLE_MAX,
    WHERE_MAX,
)
from healthspace.web.forms import NHSForm

# a reading's clock may run a little ahead of the server's
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_YEAR = 1900
# appointments: up to this many years ahead
DIARY_YEARS_AHEAD = 5

TIME_24 = re.compile(r"^(\d{1,2})[:.](\d{2})$")
TIME_12 = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?m\.?$")


def parse_time(text: str) -> time | None:
    """ "14:30", "14.30", "9:05", "2:30pm", "2pm", "12am" -> a time; anything else None."""
    text = text.strip().lower().replace(" ", "")
    if m := TIME_24.match(text):
        hour, minute = int(m[1]), int(m[2])
        if hour <= 23 and minute <= 59:
            return time(hour, minute)
        return None
    if m := TIME_12.match(text):
        hour, minute = int(m[1]), int(m[2] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        hour = hour % 12 + (12 if m[3] == "p" else 0)
        return time(hour, minute)
    return None


def date_parts(form: forms.Form, data: dict[str, Any], prefix: str, *, what: str) -> date | None:
    """The NHS.UK date input's three boxes as a real date (error on the day box)."""
    parts = [str(data.get(f"{prefix}_{p}") or "").strip() for p in ("day", "month", "year")]
    if not all(parts):
        form.add_error(f"{prefix}_day", f"Enter the date {what}, with a day, month and year")
        return None
    try:
        day, month, year = (int(p) for p in parts)
        value = date(year, month, day)
    except ValueError:
        form.add_error(f"{prefix}_day", f"The date {what} must be a real date, like 27 3 2026")
        return None
    if len(parts[2]) != 4 or value.year < EARLIEST_YEAR:
        form.add_error(f"{prefix}_day", f"Enter the year {what} with 4 numbers, like 2026")
        return None
    return value


def time_part(form: forms.Form, data: dict[str, Any], name: str, *, what: str) -> time | None:
    raw = str(data.get(name) or "").strip()
    if not raw:
        form.add_error(name, f"Enter the time {what}, like 08:30 or 6:15pm")
        return None
    value = parse_time(raw)
    if value is None:
        form.add_error(name, f"Enter a real time {what}, like 08:30 or 6:15pm")
    return value


def local_moment(day: date, at: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, at), timezone.get_current_timezone())


def date_initial(moment: datetime, prefix: str, time_name: str) -> dict[str, str]:
    local = timezone.localtime(moment)
    return {
        f"{prefix}_day": str(local.day),
        f"{prefix}_month": str(local.month),
        f"{prefix}_year": str(local.year),
        time_name: f"{local:%H:%M}",
    }


# --- readings -------------------------------------------------------------------------


class ReadingForm(NHSForm):
    """One reading of ``measure``: its numbers (in the unit chosen), date, time and note."""

    taken_day = forms.CharField(required=False)
    taken_month = forms.CharField(required=False)
    taken_year = forms.CharField(required=False)
    taken_time = forms.CharField(required=False)
    note = forms.CharField(
        max_length=NOTE_MAX,
        required=False,
        strip=True,
        error_messages={"max_length": f"The note must be {NOTE_MAX} characters or fewer"},
    )

    def __init__(self, *args, measure: Measure, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.measure = measure
        self.schemes = SCHEMES[measure]
        self.anchors = {"taken_day": "taken-day", "unit": "unit"}
        for scheme in self.schemes:
            for f in scheme.fields:
                self.fields[f.name] = forms.CharField(required=False)
        self.fields["unit"] = forms.CharField(required=False)

    @property
    def unit(self) -> str:
        chosen = self.data.get("unit") if self.is_bound else self.initial.get("unit")
        return chosen or self.schemes[0].unit

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        unit = data.get("unit") or self.schemes[0].unit
        if len(self.schemes) > 1 and not data.get("unit"):
            self.add_error("unit", "Choose the unit you measured in")
        parsed = V.parse(self.measure, unit, data)
        for name, message in parsed.errors.items():
            if name in self.fields:
                self.add_error(name, message)
        data["values"], data["entered"] = parsed.values, parsed.entered
        day = date_parts(self, data, "taken", what="of the reading")
        at = time_part(self, data, "taken_time", what="of the reading")
        if day is not None and at is not None:
            moment = local_moment(day, at)
            if moment > now() + FUTURE_TOLERANCE:
                self.add_error("taken_day", "The date and time of the reading must be in the past")
            else:
                data["taken_at"] = moment
        return data


# --- diary ----------------------------------------------------------------------------

REMINDER_CHOICES = [
    ("none", "No reminder"),
    ("2h", "2 hours before"),
    ("1d", "1 day before"),
    ("1w", "1 week before"),
    ("at", "At a date and time I choose"),
]
REMINDER_BEFORE = {"2h": timedelta(hours=2), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}


class AppointmentForm(NHSForm):
    anchors = {"starts_day": "starts-day", "reminder": "reminder", "remind_day": "remind-day"}

    what = forms.CharField(
        max_length=TITLE_MAX,
        error_messages={
            "required": "Enter what the appointment is, for example 'Asthma review'",
            "max_length": f"What the appointment is must be {TITLE_MAX} characters or fewer",
        },
    )
    where = forms.CharField(
        max_length=WHERE_MAX,
        required=False,
        error_messages={"max_length": f"Where it is must be {WHERE_MAX} characters or fewer"},
    )
    notes = forms.CharField(
        max_length=APPOINTMENT_NOTES_MAX,
        required=False,
        error_messages={"max_length": f"Notes must be {APPOINTMENT_NOTES_MAX} characters or fewer"},
    )
    starts_day = forms.CharField(required=False)
    starts_month = forms.CharField(required=False)
    starts_year = forms.CharField(required=False)
    starts_time = forms.CharField(required=False)
    reminder = forms.ChoiceField(
        choices=REMINDER_CHOICES,
        error_messages={
            "required": "Choose whether you want a reminder",
            "invalid_choice": "Choose whether you want a reminder",
        },
    )
    remind_day = forms.CharField(required=False)
    remind_month = forms.CharField(required=False)
    remind_year = forms.CharField(required=False)
    remind_time = forms.CharField(required=False)

    def __init__(self, *args, sent_reminder_at: datetime | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # the reminder already emailed for this appointment (editing may keep it as it was)
        self.sent_reminder_at = sent_reminder_at

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        day = date_parts(self, data, "starts", what="of the appointment")
        at = time_part(self, data, "starts_time", what="of the appointment")
        starts_at = local_moment(day, at) if day and at else None
        if starts_at is not None:
            if starts_at > now() + timedelta(days=366 * DIARY_YEARS_AHEAD):
                self.add_error(
                    "starts_day",
                    f"The date of the appointment must be within {DIARY_YEARS_AHEAD} years",
                )
                starts_at = None
            else:
                data["starts_at"] = starts_at
        choice = data.get("reminder")
        reminder_at = None
        if choice == "at":
            rday = date_parts(self, data, "remind", what="of the reminder")
            rat = time_part(self, data, "remind_time", what="of the reminder")
            reminder_at = local_moment(rday, rat) if rday and rat else None
        elif choice in REMINDER_BEFORE and starts_at is not None:
            reminder_at = starts_at - REMINDER_BEFORE[choice]
        if reminder_at is not None and starts_at is not None:
            kept = reminder_at == self.sent_reminder_at
            error_box = "remind_day" if choice == "at" else "reminder"
            if reminder_at >= starts_at:
                self.add_error(error_box, "The reminder must be before the appointment")
            elif reminder_at <= now() and not kept:
                self.add_error(
                    error_box,
                    "The time for this reminder has already passed. Choose a later "
                    "reminder, or no reminder",
                )
        data["reminder_at"] = reminder_at if choice != "none" else None
        return data


# --- notes and medicines --------------------------------------------------------------


class NoteForm(NHSForm):
    title = forms.CharField(
        max_length=TITLE_MAX,
        error_messages={
            "required": "Enter a title for your note",
            "max_length": f"The title must be {TITLE_MAX} characters or fewer",
        },
    )
    text = forms.CharField(
        max_length=TEXT_MAX,
        error_messages={
            "required": "Enter your note",
            "max_length": f"Your note must be {TEXT_MAX} characters or fewer",
        },
    )


def month_year(form: forms.Form, data: dict[str, Any], prefix: str, *, what: str) -> str:
    """Optional month and year ("YYYY-MM", or "YYYY" with the year alone), not in the future."""
    month = str(data.get(f"{prefix}_month") or "").strip()
    year = str(data.get(f"{prefix}_year") or "").strip()
    if not month and not year:
        return ""
    if not year:
        form.add_error(f"{prefix}_month", f"Enter the year {what}")
        return ""
    if not (year.isdigit() and len(year) == 4 and int(year) >= EARLIEST_YEAR):
        form.add_error(f"{prefix}_month", f"Enter the year {what} with 4 numbers, like 2024")
        return ""
    if month and not (month.isdigit() and 1 <= int(month) <= 12):
        form.add_error(f"{prefix}_month", f"The month {what} must be a number from 1 to 12")
        return ""
    value = f"{int(year):04d}-{int(month):02d}" if month else f"{int(year):04d}"
    today = timezone.localdate(now())
    if value > f"{today:%Y-%m}":
        form.add_error(f"{prefix}_month", f"The date {what} must be in the past")
        return ""
    return value


class MedicineForm(NHSForm):
    anchors = {"since_month": "since-month", "stopped_month": "stopped-month"}

    name = forms.CharField(
        max_length=MEDICINE_FIELD_MAX,
        error_messages={
            "required": "Enter the name of the medicine",
            "max_length": f"The name must be {MEDICINE_FIELD_MAX} characters or fewer",
        },
    )
    how = forms.CharField(
        max_length=MEDICINE_HOW_MAX,
        required=False,
        error_messages={
            "max_length": f"How you take it must be {MEDICINE_HOW_MAX} characters or fewer"
        },
    )
    what_for = forms.CharField(
        max_length=MEDICINE_FIELD_MAX,
        required=False,
        error_messages={
            "max_length": f"What it is for must be {MEDICINE_FIELD_MAX} characters or fewer"
        },
    )
    since_month = forms.CharField(required=False)
    since_year = forms.CharField(required=False)
    stopped_month = forms.CharField(required=False)
    stopped_year = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["since"] = month_year(self, data, "since", what="you started")
        data["stopped"] = month_year(self, data, "stopped", what="you stopped")
        if (
            data["since"]
            and data["stopped"]
            and not months_in_order(data["since"], data["stopped"])
        ):
            self.add_error("stopped_month", "The date you stopped must be after you started")
        return data


def months_in_order(since: str, stopped: str) -> bool:
    """ "2024" as a start means January at the earliest; as a stop, December at the latest."""
    first = since if len(since) == 7 else f"{since}-01"
    last = stopped if len(stopped) == 7 else f"{stopped}-12"
    return first <= last


def month_year_initial(value: str, prefix: str) -> dict[str, str]:
    if not value:
        return {}
    year, _, month = value.partition("-")
    return {f"{prefix}_year": year, f"{prefix}_month": str(int(month)) if month else ""}
