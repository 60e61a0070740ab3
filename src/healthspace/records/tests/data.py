"""Where the shared external FHIR data lives (read in place, never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def fhir_data_dir() -> Path:
    """``../shared/data/fhir`` beside the checkout, or ``$HEALTHSPACE_TEST_DATA``.

    Absent on a user's machine: the test is skipped with the reason. In CI (CI=true) the
    data is always there, so its absence fails the run.
    """
    override = os.environ.get("HEALTHSPACE_TEST_DATA")
    path = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[4].parent / "shared" / "data" / "fhir"
    )
    if not path.is_dir():
        message = f"shared FHIR test data not found at {path} (set HEALTHSPACE_TEST_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
