"""Placeholder until the strict checks land (being written in parallel)."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class


class FhirInputError(Exception):
    pass


def parse_json_bytes(data: bytes, *, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirInputError(f"{where}: not valid JSON: {exc}") from exc


def validate_resource(resource: Any, *, where: str) -> None:
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:
        raise FhirInputError(f"{where}: {exc}") from exc


def validate_bundle(bundle: dict, *, where: str) -> None:
    if "type" not in bundle:
        raise FhirInputError(f"{where}: Bundle.type is required")
