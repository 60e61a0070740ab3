"""Background work of the FHIR API, run by ``healthspace worker`` (django-tasks-db)."""

from __future__ import annotations

import logging

from django.tasks import task

logger = logging.getLogger(__name__)


@task()
def run_export(job_id: str) -> str:
    """Build the files of one Bulk Data export (see fhir_api.bulk.run)."""
    from healthspace.fhir_api.bulk import run

    return run(job_id)


@task()
def expire_exports() -> str:
    from healthspace.fhir_api.bulk import expire

    return f"expired {expire()}"
