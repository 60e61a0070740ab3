"""NHS numbers, log hygiene and configuration."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from healthspace.core import nhs_numbers
from healthspace.core.logging import RedactIdentifiersFilter, redact


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("9434765919", True),
        ("943 476 5919", True),
        ("9434765918", False),
        ("123", False),
        ("", False),
    ],
)
def test_nhs_number_validation(value, valid):
    assert nhs_numbers.is_valid(value) is valid


def test_synthetic_numbers_are_valid_in_the_test_range_and_stable():
    numbers = {nhs_numbers.synthetic_for(f"seed-{i}") for i in range(500)}
    assert len(numbers) == 500
    assert all(n.startswith("999") and nhs_numbers.is_valid(n) for n in numbers)
    assert nhs_numbers.synthetic_for("seed-1") == nhs_numbers.synthetic_for("seed-1")


def test_log_records_lose_nhs_numbers_and_email_addresses():
    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "import of %s for %s", ("943 476 5919", "a.b@nhs.net"), None
    )
    RedactIdentifiersFilter().filter(record)
    assert record.getMessage() == "import of [nhs-number] for [email]"
    assert redact("patient 9434765919 item 12") == "patient [nhs-number] item 12"


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "HEALTHSPACE_KEK", "HEALTHSPACE_INDEX_KEY")
    }
    env.update(
        HEALTHSPACE_ENV="production",
        HEALTHSPACE_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="healthspace.config.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment in production" in result.stderr
    assert not (tmp_path / "DEMO-SECRETS-NOT-FOR-REAL-DATA.json").exists()
