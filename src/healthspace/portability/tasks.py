"""Background work of portability, run by ``healthspace worker`` (django-tasks-db)."""

from __future__ import annotations

from django.tasks import task


@task()
def build_download(download_id: str) -> str:
    from healthspace.portability.downloads import build

    return build(download_id)


@task()
def expire_downloads() -> str:
    from healthspace.portability.downloads import expire

    return f"expired {expire()}"
