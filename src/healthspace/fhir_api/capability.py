"""What the server says about itself: the CapabilityStatement (``metadata``) and SMART's
``.well-known/smart-configuration``, both built from the registries the views use, so
they list exactly what is supported."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from healthspace.core.clock import now
from healthspace.fhir_api import communication
from healthspace.fhir_api.search import (
    DATE,
    ITEM_PARAMS,
    OTHER_PARAMS,
    PATIENT_SCOPED,
    SUBJECT_TYPES,
    TOKEN,
)
from healthspace.smart.assertions import ALGORITHMS

WRITABLE = frozenset([*ITEM_PARAMS, "Patient"])  # what GP feeds send (records.importer)


def oauth_base() -> str:
    return settings.HEALTHSPACE_BASE_URL.rstrip("/") + "/oauth"


def fhir_base() -> str:
    return settings.HEALTHSPACE_FHIR_BASE.rstrip("/")


def served_types() -> list[str]:
    types = ["Patient", *ITEM_PARAMS, "Consent", "AuditEvent"]
    if communication.enabled():
        types.append("Communication")
    return types


def search_params(rtype: str) -> list[dict[str, str]]:
    params = []
    if rtype in PATIENT_SCOPED:
        params.append(("patient", "reference"))
        if rtype in SUBJECT_TYPES:
            params.append(("subject", "reference"))
    for name, param in (ITEM_PARAMS.get(rtype) or OTHER_PARAMS.get(rtype) or {}).items():
        params.append((name, {TOKEN: "token", DATE: "date"}[param.kind]))
    params += [("_id", "token"), ("_lastUpdated", "date")]
    return [
        {
            "name": name,
            "definition": (
                f"http://hl7.org/fhir/SearchParameter/Resource-{name.lstrip('_')}"
                if name.startswith("_")
                else f"http://hl7.org/fhir/SearchParameter/{rtype}-{name}"
            ),
            "type": kind,
        }
        for name, kind in params
    ]


def capability_statement() -> dict[str, Any]:
    resources = []
    for rtype in served_types():
        interactions = ["read", "search-type"]
        if rtype not in ("AuditEvent", "Communication"):
            interactions += ["vread", "history-instance"]
        entry: dict[str, Any] = {"type": rtype}
        if rtype in WRITABLE:
            interactions += ["create", "update"]
            entry.update(
                {
                    "updateCreate": True,
                    "conditionalCreate": True,
                    "conditionalUpdate": True,
                    "conditionalDelete": "not-supported",
                }
            )
        entry["interaction"] = [{"code": i} for i in interactions]
        entry["versioning"] = "versioned" if rtype != "AuditEvent" else "no-version"
        entry["readHistory"] = rtype not in ("AuditEvent", "Communication")
        entry["searchParam"] = search_params(rtype)
        if rtype in PATIENT_SCOPED:
            entry["searchInclude"] = [f"{rtype}:patient"] + (
                [f"{rtype}:subject"] if rtype in SUBJECT_TYPES else []
            )
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "summary",
                    "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary",
                },
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                },
            ]
        resources.append(entry)
    resources.append(
        {
            "type": "Group",
            "operation": [
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
                }
            ],
        }
    )
    base = oauth_base()
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now().date().isoformat(),
        "publisher": "HealthSpace",
        "kind": "instance",
        "software": {"name": "HealthSpace"},
        "implementation": {"description": "HealthSpace FHIR R4 API", "url": fhir_base()},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "SCR content, consent and the access trail. See docs/fhir-api.md.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [
                                {"url": "authorize", "valueUri": f"{base}/authorize/"},
                                {"url": "token", "valueUri": f"{base}/token/"},
                                {"url": "revoke", "valueUri": f"{base}/revoke/"},
                            ],
                        }
                    ],
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    }
                ],
            }
        ],
    }


SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "patient/*.rs",
    "patient/*.read",
    "system/*.rs",
    "system/*.read",
    "system/*.cu",
    "system/*.write",
]


def smart_configuration() -> dict[str, Any]:
    base = oauth_base()
    return {
        "issuer": base,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "authorization_endpoint": f"{base}/authorize/",
        "token_endpoint": f"{base}/token/",
        "revocation_endpoint": f"{base}/revoke/",
        "userinfo_endpoint": f"{base}/userinfo/",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-offline",
            "permission-patient",
            "permission-v1",
            "permission-v2",
        ],
    }
