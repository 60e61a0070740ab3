"""Test helper: every response body of the API is FHIR, validated with fhir.resources
(R4B models); every error is an OperationOutcome."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

PLAIN_JSON = ("application/json",)  # SMART configuration, OpenAPI, bulk manifests


def check(response) -> Any:
    """The parsed body, after checking it is valid FHIR (or allowed plain JSON)."""
    status = response.status_code
    if status in (202, 204, 304):
        return None
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if not content:
        assert status in (200, 201), f"{status} with no body"
        return None
    content_type = response["Content-Type"].split(";")[0]
    if content_type == "application/fhir+ndjson":
        lines = [json.loads(line) for line in content.splitlines() if line.strip()]
        for resource in lines:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        return lines
    body = json.loads(content)
    if content_type in PLAIN_JSON:
        assert status < 400, f"an error must be an OperationOutcome: {body}"
        return body
    assert content_type == "application/fhir+json", content_type
    resource_type = body["resourceType"]
    get_fhir_model_class(resource_type).model_validate(body)
    if status >= 400:
        assert resource_type == "OperationOutcome", body
    return body
