"""Every notification HealthSpace sends, with its whole text, in one place.

A notice never carries clinical content: not a message's words or subject, not an
appointment's title or place, not what a correction was about. Someone else may read the
patient's inbox. The only values a notice takes are typed (a date and time) and are
checked before anything is queued, so a caller cannot slip free text into an email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from django.utils import timezone


class Notice(StrEnum):
    NEW_MESSAGE = "new-message"
    APPOINTMENT_REMINDER = "appointment-reminder"
    CORRECTION_ANSWERED = "correction-answered"
    STAFF_VIEWED_RECORD = "staff-viewed-record"
    RECORD_SHARED_WITH_YOU = "record-shared-with-you"
    SERVICE_CLOSING = "service-closing"


@dataclass(frozen=True)
class NoticeText:
    subject: str
    body: str  # str.format() with ``link`` and the notice's typed values
    path: str  # where the link goes (after logging in)
    values: tuple[str, ...] = ()  # names of the typed values; each must be a datetime
    dates: tuple[str, ...] = ()  # names of typed values that are a day (a date)


SIGN_OFF = (
    "\n\nThis email was sent by HealthSpace. We never put details of your health in "
    "emails: log in to read them."
)

TEXTS: dict[Notice, NoticeText] = {
    Notice.NEW_MESSAGE: NoticeText(
        subject="You have a new message in HealthSpace",
        body="You have a new message in HealthSpace.\n\nLog in to read it: {link}",
        path="/messages/",
    ),
    Notice.APPOINTMENT_REMINDER: NoticeText(
        subject="Reminder: an appointment in your HealthSpace diary",
        body=(
            "You asked us to remind you about an appointment in your HealthSpace diary "
            "on {when}.\n\nLog in to see the details: {link}"
        ),
        path="/organiser/diary/",
        values=("when",),
    ),
    Notice.CORRECTION_ANSWERED: NoticeText(
        subject="Your GP practice has answered your request",
        body=(
            "Your GP practice has answered your request to correct your Summary Care "
            "Record.\n\nLog in to see the answer: {link}"
        ),
        path="/record/corrections/",
    ),
    Notice.STAFF_VIEWED_RECORD: NoticeText(
        subject="Your HealthSpace record was viewed",
        body=(
            "A member of staff has looked at your Summary Care Record.\n\n"
            "You asked us to email you when this happens. To see who looked and why, log "
            "in to HealthSpace and go to 'Who has looked at your record': {link}\n\n"
            "If you do not recognise it, you can tell us there. You can stop these emails "
            "on the same page."
        ),
        path="/record/access/who-has-looked/",
    ),
    # no name, no sections: whoever reads the inbox learns only that something was shared
    Notice.RECORD_SHARED_WITH_YOU: NoticeText(
        subject="Someone has shared their HealthSpace record with you",
        body=(
            "Someone has shared part of their health record with you in HealthSpace, or "
            "a GP practice has approved your request to act for someone.\n\n"
            "Log in to see who and what, and to accept or decline: {link}"
        ),
        path="/shared/",
    ),
    # the link: ops.lifecycle.EXPORT_PATH (where people download their information)
    Notice.SERVICE_CLOSING: NoticeText(
        subject="HealthSpace is closing",
        body=(
            "HealthSpace is closing on {closing_on}. After that date you will not be able "
            "to see anything you keep in HealthSpace, and we will delete it.\n\n"
            "Log in to download a copy of your information before then: {link}\n\n"
            "Your GP practice still has your health record."
        ),
        path="/account/your-data/",
        dates=("closing_on",),
    ),
}


class NoticeValueError(ValueError):
    pass


def checked_values(notice: Notice, values: dict[str, object]) -> dict[str, str]:
    """The notice's typed values as ISO strings (what the task queue stores); anything
    else is refused, never sent."""
    text = TEXTS[notice]
    if set(values) != {*text.values, *text.dates}:
        names = sorted({*text.values, *text.dates})
        raise NoticeValueError(f"{notice} takes {names}, not {sorted(values)}")
    out: dict[str, str] = {}
    for name, value in values.items():
        if name in text.dates:
            if not isinstance(value, date) or isinstance(value, datetime):
                raise NoticeValueError(f"{notice}: {name} must be a date")
            out[name] = value.isoformat()
            continue
        if not isinstance(value, datetime) or timezone.is_naive(value):
            raise NoticeValueError(f"{notice}: {name} must be an aware datetime")
        out[name] = value.isoformat()
    return out


def when_in_words(moment: datetime) -> str:
    local = timezone.localtime(moment)
    hour = local.hour % 12 or 12
    return (
        f"{local:%A} {local.day} {local:%B %Y} at {hour}:{local:%M}"
        f"{'am' if local.hour < 12 else 'pm'}"
    )


def day_in_words(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _in_words(notice: Notice, values: dict[str, str]) -> dict[str, str]:
    dates = TEXTS[notice].dates
    return {
        name: day_in_words(date.fromisoformat(v))
        if name in dates
        else when_in_words(datetime.fromisoformat(v))
        for name, v in values.items()
    }


def render(notice: Notice, *, base_url: str, values: dict[str, str]) -> tuple[str, str]:
    """Subject and body as sent by email."""
    text = TEXTS[notice]
    words = _in_words(notice, values)
    link = base_url.rstrip("/") + text.path
    return text.subject, text.body.format(link=link, **words) + SIGN_OFF


def personalisation(notice: Notice, *, base_url: str, values: dict[str, str]) -> dict[str, str]:
    """What a GOV.UK Notify template receives: ((link)) and the typed values in words."""
    out = _in_words(notice, values)
    out["link"] = base_url.rstrip("/") + TEXTS[notice].path
    return out
