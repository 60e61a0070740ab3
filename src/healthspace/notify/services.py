"""Queue a notice for a user. Call it inside the transaction of the action it tells of:
the task row is written in that transaction (django-tasks-db), so a notice is sent only
for what really happened, and is not lost if the process dies after the commit."""

from __future__ import annotations

from datetime import datetime

from healthspace.notify.notices import Notice, checked_values
from healthspace.notify.tasks import send_notice


def notice_send(
    *, user_id: int, notice: Notice, at: datetime | None = None, **values: object
) -> str:
    """Queue ``notice`` for ``user_id``, to go at once or at ``at``; returns the task id.

    ``values`` are the notice's typed values (e.g. ``when=`` for a reminder): checked
    here, so nothing but a date and time can reach an email.
    """
    checked = checked_values(notice, values)
    task = send_notice.using(run_after=at) if at is not None else send_notice
    return str(task.enqueue(user_id, str(notice), checked).id)
