"""Background work of the service's lifecycle, run by ``healthspace worker``."""

from __future__ import annotations

from django.tasks import task


@task()
def closure_reminders_batch(campaign_id: int) -> str:
    """Queue the next batch of closure reminders, then hand on to the next batch."""
    from healthspace.ops.reminders import batch_send

    return batch_send(campaign_id=campaign_id)
