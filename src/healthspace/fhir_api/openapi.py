"""An OpenAPI 3.0 description of the FHIR API, built from the same registries as the
CapabilityStatement (served at /fhir/R4/openapi.json). It is for tooling (the property-
based fuzzing in tests/fuzz, client generators); the FHIR CapabilityStatement is the
authoritative description."""

from __future__ import annotations

from typing import Any

from healthspace.fhir_api import capability
from healthspace.fhir_api.search import CONTROLS, ITEM_PARAMS, PATIENT_SCOPED
from healthspace.fhir_api.services import WRITABLE

FHIR = {"application/fhir+json": {"schema": {"type": "object"}}}
RESPONSES = {
    "200": {"description": "OK", "content": FHIR},
    "400": {"description": "Bad request (OperationOutcome)", "content": FHIR},
    "401": {"description": "No valid token (OperationOutcome)", "content": FHIR},
    "403": {"description": "Not allowed by the token (OperationOutcome)", "content": FHIR},
    "404": {"description": "Not found (OperationOutcome)", "content": FHIR},
    "default": {"description": "Other outcome (OperationOutcome)", "content": FHIR},
}


def _query(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _op(
    summary: str, params: list[dict[str, Any]], *, body: bool = False, public: bool = False
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": RESPONSES}
    if body:
        op["requestBody"] = {"required": True, "content": FHIR}
    if public:
        op["security"] = []
    return op


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/metadata": {"get": _op("CapabilityStatement", [], public=True)},
        "/.well-known/smart-configuration": {"get": _op("SMART configuration", [], public=True)},
        "/": {"post": _op("Transaction Bundle (GP feeds)", [], body=True)},
        "/$export": {"get": _op("Bulk export kick-off (system)", _export_params())},
        "/Patient/$export": {"get": _op("Bulk export kick-off (patients)", _export_params())},
        "/Group/{group_id}/$export": {
            "get": _op("Bulk export kick-off (group)", [_path("group_id"), *_export_params()])
        },
        "/$export-poll/{job_id}": {
            "get": _op("Bulk export status", [_path("job_id")]),
            "delete": _op("Cancel a bulk export", [_path("job_id")]),
        },
        "/$export-file/{job_id}/{name}": {
            "get": _op("Bulk export file (NDJSON)", [_path("job_id"), _path("name")])
        },
        "/Patient/{id}/$everything": {
            "get": _op(
                "Everything of one patient", [_path("id"), _query("_type"), _query("_since")]
            )
        },
        "/Patient/{id}/$summary": {"get": _op("International Patient Summary", [_path("id")])},
    }
    for rtype in capability.served_types():
        params = [_query(p["name"]) for p in capability.search_params(rtype)]
        params += [_query(c) for c in sorted(CONTROLS - {"_format", "_pretty"})]
        if rtype in PATIENT_SCOPED:
            params.append(_query("_include"))
        root: dict[str, Any] = {"get": _op(f"Search {rtype}", _dedupe(params))}
        instance: dict[str, Any] = {"get": _op(f"Read {rtype}", [_path("id")])}
        if rtype in WRITABLE:
            root["post"] = _op(f"Create {rtype}", [], body=True)
            instance["put"] = _op(f"Update {rtype}", [_path("id")], body=True)
        paths[f"/{rtype}"] = root
        paths[f"/{rtype}/{{id}}"] = instance
        if rtype not in ("AuditEvent", "Communication"):
            paths[f"/{rtype}/{{id}}/_history"] = {
                "get": _op(f"History of a {rtype}", [_path("id")])
            }
            paths[f"/{rtype}/{{id}}/_history/{{vid}}"] = {
                "get": _op(f"Version of a {rtype}", [_path("id"), _path("vid")])
            }
    return {
        "openapi": "3.0.3",
        "info": {"title": "HealthSpace FHIR R4 API", "version": "1"},
        "servers": [{"url": capability.fhir_base()}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _export_params() -> list[dict[str, Any]]:
    return [
        _query("_type"),
        _query("_since"),
        _query("_outputFormat"),
        {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"}},
    ]


def _dedupe(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for p in params:
        if p["name"] not in seen:
            seen.add(p["name"])
            out.append(p)
    return out


ITEM_TYPES = tuple(ITEM_PARAMS)
