"""Fixtures of the reliability suite (docs/reliability.md).

The suite runs when the test run is on PostgreSQL (``DATABASE_URL=postgresql://...``, as
in CI's second pass); on SQLite it is skipped with the reason. It never touches the
database of ``DATABASE_URL`` or its server: it starts a private PostgreSQL 15 cluster of
its own (a temporary folder, a port of 55433-55435), migrates HealthSpace into a template
database once, and gives each test fresh databases copied from it. The cluster is
stopped and removed at the end, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.harness import (
    GRANIAN,
    PG_BIN,
    AppServer,
    PrivateCluster,
    Service,
    private_cluster,
    production_secrets,
)

TEMPLATE = "hs_reliability_template"


def _on_postgresql() -> bool:
    return (os.environ.get("DATABASE_URL") or "").startswith(("postgres://", "postgresql://"))


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"reliability prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(f"reliability prerequisite missing: {reason}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def cluster() -> Iterator[PrivateCluster]:
    if not _on_postgresql():
        pytest.skip(
            "reliability tests run only on PostgreSQL (DATABASE_URL=postgresql://..., as CI's "
            "PostgreSQL pass sets it): they kill and restart servers, which needs a private "
            "PostgreSQL cluster and the production server"
        )
    for tool in ("initdb", "pg_ctl", "pg_dump", "pg_restore"):
        if not (PG_BIN / tool).is_file():
            _missing(f"{PG_BIN / tool} not found (apt-get install postgresql-15)")
    if not Path(GRANIAN).is_file():
        _missing(f"{GRANIAN} not found (pip install -e '.[dev]')")
    with private_cluster() as made:
        yield made


@pytest.fixture(scope="session")
def _template(cluster: PrivateCluster) -> Iterator[Service]:
    """HealthSpace migrated once (main database and key store) with its static files
    collected, as `healthspace migrate` and `collectstatic` set up a production install."""
    # HEALTHSPACE_RELIABILITY_DATA_DIR (development only): keep the data folder (logs,
    # collected static files) there between runs, and collect the static files only once.
    kept = os.environ.get("HEALTHSPACE_RELIABILITY_DATA_DIR")
    data_dir = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="hs-reliability-data-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    collected = (data_dir / "staticfiles" / "staticfiles.json").is_file()
    service = Service(cluster, TEMPLATE, data_dir, production_secrets())
    try:
        cluster.create_database(TEMPLATE)
        cluster.create_database(service.keystore)
        with ThreadPoolExecutor(1) as pool:  # the slowest step, beside the migrations
            static = pool.submit(
                (lambda *_: None) if collected else service.command, "collectstatic", "--noinput"
            )
            service.command("migrate", "--noinput")
            service.command("migrate", "--database", "keystore", "--noinput")
            static.result()
        yield service
    finally:
        if kept:
            print(f"\n[reliability] server logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def new_service(cluster: PrivateCluster, _template: Service) -> Callable[[str], Service]:
    """A fresh, migrated HealthSpace: databases copied from the template (left for the
    cluster's removal: dropping them would cost a checkpoint each)."""

    def make(name: str) -> Service:
        database = f"hs_reliability_{name}"
        service = Service(cluster, database, _template.data_dir, _template.secrets)
        cluster.create_database(database, template=TEMPLATE)
        cluster.create_database(service.keystore, template=_template.keystore)
        return service

    return make


@pytest.fixture(autouse=True)
def _stop_servers() -> Iterator[None]:
    """No server outlives its test, passed or failed."""
    yield
    while AppServer.made:
        AppServer.made.pop().stop()
