"""Fixtures shared by every suite."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from healthspace.access.actors import Actor


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
