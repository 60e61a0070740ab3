"""The service's lifecycle (issue 6): open -> registrations closed -> closure announced
(with a date) -> read-only -> purged. See docs/lifecycle.md.

``allowed_when_read_only``: mark a view whose POST must keep working when the service is
read-only (closing down): logging in and out, second factors, and exporting one's data.
Everything else that writes is refused with a clear message while the service is
read-only.

The state is read on every request, so it is cached in the process for
``HEALTHSPACE_SERVICE_STATE_SECONDS`` (a few seconds): a page costs no query for it. A
change made in this process is seen at once; other processes see it within that time.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.audit.services import audit_record
from healthspace.core.clock import now
from healthspace.core.errors import HealthSpaceError, InvalidInput
from healthspace.ops.models import ServiceState, ServiceStateChange

# Where the banner and the reminder emails send people to take their data away: the
# account's "Download your data" page (portability).
EXPORT_URL_NAME = "portability:your-data"
EXPORT_PATH = "/account/your-data/"

OPERATOR = Actor.system("service")  # `healthspace service ...`, run on the server
STATE_CHANGE = "service.state-change"

ORDER = [
    ServiceState.OPEN,
    ServiceState.REGISTRATIONS_CLOSED,
    ServiceState.CLOSURE_ANNOUNCED,
    ServiceState.READ_ONLY,
    ServiceState.PURGED,
]


class ServiceReadOnly(HealthSpaceError):
    """The service is closing (read-only) or closed: nothing may be written."""


def allowed_when_read_only[V: Callable[..., object]](view: V) -> V:
    view.allowed_when_read_only = True  # type: ignore[attr-defined]
    return view


@dataclass(frozen=True)
class Status:
    state: ServiceState
    closure_date: dt.date | None = None
    changed_at: dt.datetime | None = None
    changed_by: str = ""

    @property
    def registrations_open(self) -> bool:
        return self.state == ServiceState.OPEN

    @property
    def read_only(self) -> bool:
        return self.state in (ServiceState.READ_ONLY, ServiceState.PURGED)

    @property
    def purged(self) -> bool:
        return self.state == ServiceState.PURGED

    @property
    def closure_in_words(self) -> str:
        return date_in_words(self.closure_date) if self.closure_date else ""

    @property
    def closing(self) -> bool:
        """A closure has been announced (the banner shows)."""
        return ORDER.index(self.state) >= ORDER.index(ServiceState.CLOSURE_ANNOUNCED)


OPEN = Status(ServiceState.OPEN)


def date_in_words(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


_lock = threading.Lock()
_cached: tuple[float, Status] | None = None


def _load() -> Status:
    row = ServiceStateChange.objects.order_by("-id").first()
    if row is None:
        return OPEN
    return Status(ServiceState(row.state), row.closure_date, row.changed_at, row.changed_by)


def status(*, fresh: bool = False) -> Status:
    """The service's state now: from this process's cache unless it is older than
    HEALTHSPACE_SERVICE_STATE_SECONDS (or ``fresh``, for commands that act on it)."""
    global _cached
    cached = _cached
    at = time.monotonic()
    if (
        not fresh
        and cached is not None
        and at - cached[0] < settings.HEALTHSPACE_SERVICE_STATE_SECONDS
    ):
        return cached[1]
    current = _load()
    with _lock:
        _cached = (at, current)
    return current


def forget() -> None:
    """Drop the cached state (tests; after a change in this process)."""
    global _cached
    with _lock:
        _cached = None


def refuse_writes(what: str, *, fresh: bool = True) -> None:
    """Raise ServiceReadOnly if the service is read-only: for commands and background
    work that write clinical data (the importer, GP feeds)."""
    current = status(fresh=fresh)
    if current.read_only:
        raise ServiceReadOnly(
            f"HealthSpace is {'closed' if current.purged else 'read-only while it closes'}: "
            f"{what} is not possible."
        )


# --- changes (the `healthspace service` command) ---------------------------------------


def _change(
    to: ServiceState,
    *,
    actor: Actor,
    closure_date: dt.date | None,
    note: str = "",
    also: Callable[[ServiceStateChange], object] | None = None,
) -> Status:
    with transaction.atomic():
        before = _locked_current()
        _check_transition(before, to, closure_date)
        if closure_date is None and to != ServiceState.OPEN:
            closure_date = before.closure_date
        row = ServiceStateChange.objects.create(
            state=to,
            closure_date=closure_date if to != ServiceState.OPEN else None,
            changed_at=now(),
            changed_by=actor.audit_label(),
            note=note,
        )
        audit_record(
            actor=actor,
            action=STATE_CHANGE,
            patient_id=None,
            outcome="success",
            reason=f"operator-command:{to}",
            detail={
                "from": str(before.state),
                "to": str(to),
                "closure_date": row.closure_date.isoformat() if row.closure_date else None,
            },
        )
        if also is not None:
            also(row)
    forget()
    return status(fresh=True)


def _locked_current() -> Status:
    # one change at a time: the latest row, held until this change commits
    row = ServiceStateChange.objects.select_for_update().order_by("-id").first()
    if row is None:
        return OPEN
    return Status(ServiceState(row.state), row.closure_date, row.changed_at, row.changed_by)


def _check_transition(before: Status, to: ServiceState, closure_date: dt.date | None) -> None:
    if before.purged:
        raise InvalidInput("the service has been purged: its state cannot change any more")
    if to == ServiceState.PURGED and before.state != ServiceState.READ_ONLY:
        raise InvalidInput("purge only a read-only service: run `healthspace service read-only`")
    if to == ServiceState.OPEN:
        if before.state == ServiceState.OPEN:
            raise InvalidInput("registrations are already open")
        return
    if to == before.state and to != ServiceState.CLOSURE_ANNOUNCED:
        raise InvalidInput(f"the service is already {to.label.lower()}")
    if ORDER.index(to) < ORDER.index(before.state):
        raise InvalidInput(
            f"the service is {before.state.label.lower()}: it can only go on towards closing, "
            "or reopen (`healthspace service reopen`)"
        )
    if to == ServiceState.CLOSURE_ANNOUNCED:
        if closure_date is None:
            raise InvalidInput("announce a closure with its date (YYYY-MM-DD)")
        if closure_date <= now().date():
            raise InvalidInput("the closure date must be in the future")
    if to == ServiceState.READ_ONLY and before.closure_date is None:
        raise InvalidInput(
            "announce the closure first (`healthspace service announce-closure DATE`)"
        )


def registrations_close(*, actor: Actor = OPERATOR) -> Status:
    return _change(ServiceState.REGISTRATIONS_CLOSED, actor=actor, closure_date=None)


def reopen(*, actor: Actor = OPERATOR) -> Status:
    """Back to open (registrations too, the closure called off): any time before purge."""
    return _change(ServiceState.OPEN, actor=actor, closure_date=None)


def closure_announce(*, closure_date: dt.date, actor: Actor = OPERATOR) -> Status:
    """Closes registrations too, and starts the reminder emails (ops.reminders) in the
    same transaction. Announcing again moves the date (and starts a new round)."""
    from healthspace.ops import reminders

    return _change(
        ServiceState.CLOSURE_ANNOUNCED,
        actor=actor,
        closure_date=closure_date,
        also=lambda row: reminders.campaign_start(closure_date=row.closure_date),
    )


def read_only(*, actor: Actor = OPERATOR) -> Status:
    return _change(ServiceState.READ_ONLY, actor=actor, closure_date=None)


def purged(*, actor: Actor, note: str) -> Status:
    """Recorded by ops.purge once every key is destroyed."""
    return _change(ServiceState.PURGED, actor=actor, closure_date=None, note=note)
