"""SMART scopes: both forms parsed, narrowed to what a client may be granted."""

from __future__ import annotations

import pytest

from healthspace.smart.scopes import (
    describe,
    grants_of,
    narrow_for_patient_app,
    narrow_for_system,
    parse_resource_scope,
)


@pytest.mark.parametrize(
    ("scope", "grant"),
    [
        ("patient/*.rs", ("patient", "*", "rs")),
        ("patient/*.read", ("patient", "*", "rs")),  # v1
        ("patient/Observation.r", ("patient", "Observation", "r")),
        ("patient/Observation.write", ("patient", "Observation", "cud")),  # v1
        ("system/*.cruds", ("system", "*", "cruds")),
        ("system/*.*", ("system", "*", "cruds")),  # v1
        ("user/*.rs", ("user", "*", "rs")),
        ("patient/*.sr", None),  # letters out of order
        ("patient/*.rr", None),
        ("patient/*.x", None),
        ("patient/observation.rs", None),  # types start with a capital
        ("patient/*.rs?category=laboratory", None),  # granular: not granted
        ("patient/../*.rs", None),
        ("openid", None),
    ],
)
def test_scope_grammar(scope, grant):
    assert parse_resource_scope(scope) == grant


def test_user_scopes_grant_nothing():
    assert grants_of("user/*.cruds patient/Condition.rs") == {("patient", "Condition", "rs")}


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        (["patient/*.rs", "openid", "fhirUser"], ["patient/*.rs", "openid", "fhirUser"]),
        (["patient/*.read"], ["patient/*.read"]),  # v1 kept as asked
        (["patient/*.cruds"], ["patient/*.rs"]),  # a patient app never writes
        (["patient/*.write"], []),
        (["system/*.rs", "user/*.rs", "launch", "online_access"], []),
        (["patient/Observation.rs?category=vital-signs"], []),
        (
            ["launch/patient", "offline_access", "patient/Observation.s"],
            ["launch/patient", "offline_access", "patient/Observation.s"],
        ),
    ],
)
def test_patient_apps_are_granted_reading_only(asked, granted):
    assert narrow_for_patient_app(asked) == granted


@pytest.mark.parametrize(
    ("allowed", "asked", "granted"),
    [
        ("system/*.rs", ["system/*.cruds"], ["system/*.rs"]),
        ("system/*.rs", ["system/*.read"], ["system/*.read"]),
        (
            "system/*.rs system/Observation.cu",
            ["system/Observation.cruds"],
            ["system/Observation.crus"],
        ),
        ("system/*.rs system/Observation.cu", ["system/*.cu"], ["system/Observation.cu"]),
        ("system/Observation.rs", ["system/*.rs"], ["system/Observation.rs"]),
        ("system/*.rs", ["patient/*.rs"], []),
    ],
)
def test_system_clients_get_at_most_their_registration(allowed, asked, granted):
    assert narrow_for_system(asked, allowed) == granted


def test_consent_screen_words():
    texts = [d.text for d in describe(["patient/*.rs", "openid", "offline_access"])]
    assert texts[0] == "Everything in your record that apps can see"
    assert "Stay connected until you disconnect it" in texts
    assert [d.text for d in describe(["patient/MedicationStatement.rs"])] == ["Your medicines"]
