"""Background work of the organiser, run by ``healthspace worker`` (django-tasks-db)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.tasks import task


@task()
def appointment_reminder_send(appointment_id: str, reminder_at_iso: str) -> str:
    """Queued with ``run_after=reminder_at`` in the transaction that saved the appointment.

    Sends nothing if the appointment was deleted, its reminder moved or removed (a newer
    task carries the new time), or the reminder already went: editing or deleting makes
    old tasks do nothing, and a reminder is never sent twice.
    """
    from healthspace.organiser.services import appointment_reminder_deliver

    return appointment_reminder_deliver(
        appointment_id=uuid.UUID(appointment_id),
        reminder_at=datetime.fromisoformat(reminder_at_iso),
    )
