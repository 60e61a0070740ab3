"""Fixtures shared by every suite."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from healthspace.access.actors import Actor


@pytest.fixture(autouse=True)
def _fresh_service_state():
    """The service's lifecycle state is cached in the process (ops.lifecycle): a test
    that changed it must not leave its state to the next (its rows were rolled back).

    Within a test the cache does not expire (a test that is about expiry sets its own
    lifetime): on a loaded machine a 5 s lifetime could end between two requests that a
    test compares, adding a query to one of them."""
    from django.conf import settings

    from healthspace.ops import lifecycle

    lifetime = settings.HEALTHSPACE_SERVICE_STATE_SECONDS
    settings.HEALTHSPACE_SERVICE_STATE_SECONDS = 3600
    lifecycle.forget()
    yield
    lifecycle.forget()
    settings.HEALTHSPACE_SERVICE_STATE_SECONDS = lifetime


@pytest.fixture
def write_bundles(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    """Write Bundles to files in a fresh folder and return the folder."""

    def write(bundles: list[dict[str, Any]]) -> Path:
        folder = tmp_path / f"bundles-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        for i, bundle in enumerate(bundles):
            (folder / f"bundle-{i:03d}.json").write_text(json.dumps(bundle))
        return folder

    return write


@pytest.fixture
def importer_actor() -> Actor:
    return Actor.system("import")


@pytest.fixture
def synthetic_patients(db, write_bundles):
    """Three synthetic patients imported; returns the ImportReport."""
    from healthspace.records import synthetic
    from healthspace.records.importer import import_paths

    folder = write_bundles(synthetic.population(3))
    report = import_paths([folder], source=synthetic.SOURCE)
    assert report.ok, report.errors
    return report


DB_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the database may use both of them: "default" and the
    "keystore" that holds the data keys (vault.routers). Django's test cases allow only
    "default" unless told, and nearly every read of a record opens its key."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        uses_db = marker is not None or DB_FIXTURES & set(getattr(item, "fixturenames", ()))
        if not uses_db or (marker is not None and "databases" in marker.kwargs):
            continue
        args, kwargs = (marker.args, dict(marker.kwargs)) if marker is not None else ((), {})
        if marker is None and {"transactional_db", "live_server"} & set(item.fixturenames):
            kwargs["transaction"] = True
        kwargs["databases"] = "__all__"
        item.add_marker(pytest.mark.django_db(*args, **kwargs), append=False)
