"""Background upkeep of the key store, run by ``healthspace worker``."""

from __future__ import annotations

from datetime import timedelta

from django.tasks import task

EVERY = timedelta(days=1)
# older than a day and older than every open transaction on the main database
SCHEDULED_MIN_AGE = timedelta(hours=24)


@task()
def keystore_orphans_sweep() -> str:
    """Delete the orphaned data keys (``vault.orphans``), then queue itself for tomorrow."""
    from healthspace.core.clock import now
    from healthspace.vault import orphans

    report = orphans.find(min_age=SCHEDULED_MIN_AGE, delete=True)
    keystore_orphans_sweep.using(run_after=now() + EVERY).enqueue()
    return f"{report.deleted} orphaned data key(s) deleted"
