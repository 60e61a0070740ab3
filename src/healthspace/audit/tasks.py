"""Background upkeep of the audit trail, run by ``healthspace worker``."""

from __future__ import annotations

from datetime import timedelta

from django.tasks import task

EVERY = timedelta(days=1)


@task()
def audit_partitions_ensure() -> str:
    """Create the coming months' partitions (and rehome default-partition rows), then
    queue itself for tomorrow. Idempotent: two chains of this task only repeat a no-op."""
    from healthspace.audit import partitions
    from healthspace.core.clock import now

    created = partitions.ensure_partitions()
    audit_partitions_ensure.using(run_after=now() + EVERY).enqueue()
    return f"{len(created)} partition(s) created"
