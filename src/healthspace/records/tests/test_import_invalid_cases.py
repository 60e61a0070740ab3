"""The FHIR validator's invalid cases, through the importer: refused, named, nothing written."""

from __future__ import annotations

import json

import pytest

from healthspace.audit.models import AuditEvent
from healthspace.records.importer import import_paths
from healthspace.records.models import (
    Organisation,
    Patient,
    PatientIdentifier,
    ScrItem,
    ScrItemVersion,
)
from healthspace.records.tests.data import fhir_data_dir
from healthspace.vault.models import DataKey

pytestmark = pytest.mark.django_db

# Categories the issue requires us to catch (MANIFEST.json "category", before the colon).
MUST_CATCH = (
    "json-syntax",
    "structure",
    "datatype",
    "cardinality",
    "version mismatch",
    "security",
    "xhtml",
)


def _cases() -> list[tuple[str, str]]:
    """Read at collection time: without the data there are no cases, and the test below
    (which calls fhir_data_dir) skips, or fails in CI."""
    try:
        manifest = json.loads((fhir_data_dir() / "MANIFEST.json").read_text())
    except (pytest.skip.Exception, pytest.fail.Exception):
        return []
    return sorted(
        (entry["file"].split("/", 1)[1], entry["category"])
        for entry in manifest["files"]
        if entry["file"].startswith("invalid-fhir-test-cases/")
        and "expected-outcomes" not in entry["file"]
    )


def _snapshot() -> dict[str, int]:
    models = (
        Patient,
        PatientIdentifier,
        ScrItem,
        ScrItemVersion,
        DataKey,
        AuditEvent,
        Organisation,
    )
    return {m.__name__: m.objects.count() for m in models}


def test_the_manifest_lists_the_35_invalid_cases():
    fhir_data_dir()
    assert len(_cases()) == 35


@pytest.mark.parametrize(
    ("name", "category"),
    [c for c in _cases() if c[1].split(":")[0] in MUST_CATCH],
)
def test_required_invalid_cases_are_refused_and_change_nothing(synthetic_patients, name, category):
    before = _snapshot()
    report = import_paths(
        [fhir_data_dir() / "invalid-fhir-test-cases" / name], assign_nhs_numbers=True
    )

    assert report.files_failed == 1, f"{name} ({category}) was accepted"
    assert report.errors[0].startswith(name)
    assert len(report.errors[0]) > len(name) + 10  # says what is wrong, not just where
    assert _snapshot() == before
