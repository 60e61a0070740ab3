"""NHS numbers: validation with the `nhs-number` package, and the synthetic test range."""

from __future__ import annotations

import hashlib

import nhs_number

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
# NHS England's range for test and synthetic data, never issued to a person.
TEST_RANGE_START = 999_000_000
TEST_RANGE_END = 999_999_999


def normalise(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def is_valid(value: str) -> bool:
    digits = normalise(value)
    return len(digits) == 10 and nhs_number.is_valid(digits)


def format_spaced(value: str) -> str:
    return f"{value[:3]} {value[3:6]} {value[6:]}"


def synthetic_for(seed: str, *, attempt: int = 0) -> str:
    """A valid NHS number in the test range, derived from ``seed`` so re-imports agree."""
    span = TEST_RANGE_END - TEST_RANGE_START + 1
    counter = 0
    while True:
        digest = hashlib.sha256(f"{seed}:{attempt}:{counter}".encode()).digest()
        nine = str(TEST_RANGE_START + int.from_bytes(digest[:8], "big") % span)
        check = nhs_number.calculate_checksum(nine)
        if check is not None and check != 10:
            return f"{nine}{check}"
        counter += 1  # about 1 in 11 prefixes has no valid check digit
