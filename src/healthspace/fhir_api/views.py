"""FHIR R4 REST endpoints under /fhir/R4/ (thin adapters: parse -> selector/service ->
Bundle). docs/fhir-api.md describes them for integrators."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict

from healthspace.access.context import Interaction
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.core.clock import now
from healthspace.fhir_api import bulk, capability, communication, openapi
from healthspace.fhir_api import selectors as reads
from healthspace.fhir_api import services as writes
from healthspace.fhir_api.bundles import collection, full_url, history, searchset
from healthspace.fhir_api.http import (
    ApiError,
    fhir_response,
    http_date,
    not_found,
    read_json_body,
)
from healthspace.fhir_api.http import fhir_view as api
from healthspace.fhir_api.resources import base, instant
from healthspace.fhir_api.search import ITEM_PARAMS, parse
from healthspace.ops.lifecycle import allowed_when_read_only
from healthspace.records.fhir_checks import validate_bundle
from healthspace.records.ips import ips_document
from healthspace.smart.tokens import TokenActor

READ_ACTIONS = (
    Action.VIEW_SCR,
    Action.VIEW_DEMOGRAPHICS,
    Action.CONSENT_VIEW,
    Action.ACCESS_LOG_VIEW,
    Action.MESSAGE_VIEW,
)


def _prefer(request: HttpRequest) -> dict[str, str]:
    out = {}
    for part in request.headers.get("Prefer", "").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            out[key.strip().lower()] = value.strip().strip('"').lower()
    return out


def _lenient(request: HttpRequest) -> bool:
    return _prefer(request).get("handling") == "lenient"


def _known(rtype: str) -> None:
    if rtype == "Communication" and communication.enabled():
        return
    if rtype not in capability.served_types():
        raise ApiError(404, "not-supported", f"Resource type {rtype!r} is not supported here.")


def _versioned(request: HttpRequest, resource: dict[str, Any], status: int = 200) -> HttpResponse:
    """A single resource with ETag and Last-Modified; 304 for a matching conditional read."""
    meta = resource.get("meta") or {}
    etag = f'W/"{meta.get("versionId")}"' if meta.get("versionId") else None
    headers = {}
    if etag:
        headers["ETag"] = etag
        wanted = request.headers.get("If-None-Match")
        if (wanted and etag in [w.strip() for w in wanted.split(",")]) or wanted == "*":
            return fhir_response(None, 304, headers=headers)
    if meta.get("lastUpdated"):
        from django.utils.dateparse import parse_datetime

        moment = parse_datetime(meta["lastUpdated"].replace("Z", "+00:00"))
        if moment is not None:
            headers["Last-Modified"] = http_date(moment)
    return fhir_response(resource, status, request=request, headers=headers)


# --- public ---------------------------------------------------------------------------


@endpoint(no_patient_data=True)
@api(public=True)
def metadata(request: HttpRequest) -> HttpResponse:
    return fhir_response(capability.capability_statement(), request=request)


@endpoint(no_patient_data=True)
@api(public=True)
def smart_configuration(request: HttpRequest) -> HttpResponse:
    return fhir_response(
        capability.smart_configuration(), request=request, content_type="application/json"
    )


@endpoint(no_patient_data=True)
@api(public=True)
def openapi_json(request: HttpRequest) -> HttpResponse:
    return fhir_response(openapi.document(), request=request, content_type="application/json")


@endpoint(no_patient_data=True)
@api(public=True, methods=("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"))
def no_route(request: HttpRequest) -> HttpResponse:
    raise ApiError(404, "not-supported", "No such endpoint in this FHIR API.")


# --- search and read ------------------------------------------------------------------


def _search(request: HttpRequest, who: TokenActor, rtype: str, query: QueryDict) -> HttpResponse:
    _known(rtype)
    search = parse(rtype, query, lenient=_lenient(request))
    if rtype in ITEM_PARAMS:
        page = reads.search_items(who, search)
    elif rtype == "Patient":
        page = reads.search_patients(who, search)
    elif rtype == "Consent":
        page = reads.search_consent(who, search)
    elif rtype == "AuditEvent":
        page = reads.search_audit_events(who, search)
    else:
        raise ApiError(404, "not-supported", f"Search of {rtype} is not supported.")
    return fhir_response(searchset(rtype, search, page), request=request)


@endpoint(*READ_ACTIONS, Action.IMPORT_RECORDS)
@api(methods=("GET", "POST", "PUT"))
def type_root(request: HttpRequest, who: TokenActor, rtype: str) -> HttpResponse:
    """``GET [type]`` search, ``POST [type]`` create, ``PUT [type]?...`` conditional update."""
    if request.method == "GET":
        return _search(request, who, rtype, request.GET)
    _known(rtype)
    resource = _single_body(request, rtype)
    if request.method == "POST":
        return _create(request, who, rtype, resource)
    query = request.GET.copy()
    for control in ("_format", "_pretty"):
        query.pop(control, None)
    if not query:
        raise ApiError(400, "invalid", "PUT needs an id ([type]/[id]) or search criteria.")
    matched = writes.conditional_match(who, rtype, parse(rtype, query, lenient=False), resource)
    if len(matched) > 1:
        raise ApiError(412, "multiple-matches", "More than one resource matches the criteria.")
    if matched:
        resource = {**resource, "id": matched[0]}
        return _update(request, who, rtype, matched[0], resource)
    return _create(request, who, rtype, resource)


@allowed_when_read_only
@endpoint(*READ_ACTIONS)
@api(methods=("POST",))
def type_search_post(request: HttpRequest, who: TokenActor, rtype: str) -> HttpResponse:
    """``POST [type]/_search`` with the parameters form-encoded in the body."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise ApiError(
            415, "not-supported", "Send the search as application/x-www-form-urlencoded."
        )
    body = request.read(64 * 1024 + 1)
    if len(body) > 64 * 1024:
        raise ApiError(413, "too-costly", "Search parameters are too long.")
    query = QueryDict(body.decode("utf-8", errors="replace"), mutable=True)
    for name, values in request.GET.lists():
        query.setlist(name, query.getlist(name) + values)
    return _search(request, who, rtype, query)


@endpoint(*READ_ACTIONS, Action.IMPORT_RECORDS)
@api(methods=("GET", "PUT", "DELETE"))
def instance(request: HttpRequest, who: TokenActor, rtype: str, fhir_id: str) -> HttpResponse:
    _known(rtype)
    if request.method == "DELETE":
        raise ApiError(
            405,
            "not-supported",
            "Delete is not supported: send the resource with status entered-in-error.",
            headers={"Allow": "GET, PUT"},
        )
    if request.method == "PUT":
        return _update(request, who, rtype, fhir_id, _single_body(request, rtype))
    if rtype in ITEM_PARAMS:
        resource = reads.read_item(who, rtype, fhir_id)
    elif rtype == "Patient":
        resource = reads.read_patient(who, fhir_id)
    elif rtype == "Consent":
        versions = reads.consent_for(who, reads._uuid(fhir_id), Interaction.READ)
        if not versions:
            raise not_found("Consent")
        resource = versions[0]
    elif rtype == "AuditEvent":
        resource = reads.read_audit_event(who, fhir_id)
    else:
        raise not_found(rtype)
    return _versioned(request, resource)


@endpoint(*READ_ACTIONS)
@api()
def instance_history(
    request: HttpRequest, who: TokenActor, rtype: str, fhir_id: str
) -> HttpResponse:
    _known(rtype)
    if rtype in ITEM_PARAMS:
        versions = reads.item_history(who, rtype, fhir_id)
    elif rtype == "Patient":
        # superseded Patient versions are not kept: the history is the current version
        versions = [reads.read_patient(who, fhir_id)]
    elif rtype == "Consent":
        versions = reads.consent_for(who, reads._uuid(fhir_id), Interaction.READ) or []
        if not versions:
            raise not_found("Consent")
    else:
        raise ApiError(404, "not-supported", f"History of {rtype} is not kept.")
    return fhir_response(history(versions), request=request)


@endpoint(*READ_ACTIONS)
@api()
def instance_version(
    request: HttpRequest, who: TokenActor, rtype: str, fhir_id: str, vid: str
) -> HttpResponse:
    _known(rtype)
    if not vid.isdigit() or len(vid) > 9:
        raise not_found(f"{rtype} version")
    if rtype in ITEM_PARAMS:
        resource = reads.read_item(who, rtype, fhir_id, version=int(vid))
    elif rtype == "Patient":
        resource = reads.read_patient(who, fhir_id)
        if resource["meta"]["versionId"] != vid:
            raise not_found("Patient version")  # earlier Patient versions are not kept
    elif rtype == "Consent":
        versions = reads.consent_for(who, reads._uuid(fhir_id), Interaction.READ) or []
        resource = next((v for v in versions if v["meta"]["versionId"] == vid), None)
        if resource is None:
            raise not_found("Consent version")
    else:
        raise ApiError(404, "not-supported", f"History of {rtype} is not kept.")
    return _versioned(request, resource)


# --- the whole record -----------------------------------------------------------------


def _types_param(request: HttpRequest) -> list[str] | None:
    raw = request.GET.get("_type")
    if raw is None:
        return None
    types = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in types if t not in capability.served_types()]
    if unknown and not _lenient(request):
        raise ApiError(400, "not-supported", f"_type: not supported: {', '.join(unknown)}")
    return [t for t in types if t not in unknown]


def _since_param(request: HttpRequest):
    raw = request.GET.get("_since")
    if raw is None:
        return None
    from healthspace.fhir_api.search import date_range

    rng = date_range(raw)
    if rng is None:
        raise ApiError(400, "invalid", "_since must be a FHIR instant")
    return rng.start


def _only(request: HttpRequest, allowed: set[str]) -> None:
    extra = set(request.GET) - allowed - {"_format", "_pretty"}
    if extra and not _lenient(request):
        raise ApiError(
            400, "not-supported", f"Parameters not supported: {', '.join(sorted(extra))}"
        )


@endpoint(Action.VIEW_SCR)
@api()
def patient_everything(request: HttpRequest, who: TokenActor, fhir_id: str) -> HttpResponse:
    """Everything of the patient this token may see (a searchset, as the operation says)."""
    _only(request, {"_type", "_since"})
    reads.require_token(who, Action.VIEW_SCR, "Patient", Interaction.READ)
    record = reads.load_record(
        who,
        reads._uuid(fhir_id),
        operation="$everything",
        types=_types_param(request),
        since=_since_param(request),
    )
    resources = [record.patient, *(r for _, r in record.items), *record.consent]
    return fhir_response(collection(resources), request=request)


@endpoint(Action.VIEW_SCR)
@api()
def patient_summary(request: HttpRequest, who: TokenActor, fhir_id: str) -> HttpResponse:
    """The International Patient Summary (a document Bundle)."""
    _only(request, set())
    reads.require_token(who, Action.VIEW_SCR, "Patient", Interaction.READ)
    record = reads.load_record(who, reads._uuid(fhir_id), operation="$summary")
    document = ips_document(
        patient=record.patient,
        items=record.items,
        withheld=set(record.withheld),
        base_url=base(),
        timestamp=now(),
    )
    return fhir_response(document, request=request)


# --- writes (GP feeds) ----------------------------------------------------------------


def _single_body(request: HttpRequest, rtype: str) -> dict[str, Any]:
    resource = read_json_body(request)
    if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
        raise ApiError(400, "invalid", f"The body must be a {rtype} resource.")
    return resource


def _written_response(
    request: HttpRequest, who: TokenActor, written: writes.Written | None, rtype: str
) -> HttpResponse:
    if written is None:
        raise ApiError(422, "business-rule", f"The {rtype} was not stored.")
    status = 201 if written.created else 200
    headers = {
        "Location": f"{base()}/{written.location}",
        "ETag": f'W/"{written.version}"',
        "Last-Modified": http_date(written.last_updated),
    }
    prefer = _prefer(request).get("return", "representation")
    if prefer == "minimal":
        return fhir_response(None, status, headers=headers)
    if prefer == "operationoutcome":
        from healthspace.fhir_api.http import operation_outcome

        word = "Created" if written.created else ("Updated" if written.changed else "Unchanged")
        return fhir_response(
            operation_outcome("informational", word, "information"), status, headers=headers
        )
    try:
        if rtype == "Patient":
            resource = reads.read_patient(who, written.server_id)
        else:
            resource = reads.read_item(who, rtype, written.server_id)
    except ApiError:
        # stored, but this client may not read it back (e.g. additional information
        # without the patient's consent): say so, show nothing
        from healthspace.fhir_api.http import operation_outcome

        return fhir_response(
            operation_outcome(
                "informational",
                "Stored. This client may not read it back (the patient's consent).",
                "information",
            ),
            status,
            headers=headers,
        )
    return fhir_response(resource, status, request=request, headers=headers)


def _create(
    request: HttpRequest, who: TokenActor, rtype: str, resource: dict[str, Any]
) -> HttpResponse:
    condition = request.headers.get("If-None-Exist")
    if condition:
        search = parse(rtype, QueryDict(condition), lenient=False)
        matched = writes.conditional_match(who, rtype, search, resource)
        if len(matched) > 1:
            raise ApiError(412, "multiple-matches", "More than one resource matches If-None-Exist.")
        if matched:
            found = (
                reads.read_patient(who, matched[0])
                if rtype == "Patient"
                else reads.read_item(who, rtype, matched[0])
            )
            return _versioned(request, found, 200)
    written = writes.feed_write(
        who, [(None, resource)], {rtype: Interaction.CREATE}, where=f"{rtype} create"
    )[0]
    return _written_response(request, who, written, rtype)


def _update(
    request: HttpRequest, who: TokenActor, rtype: str, fhir_id: str, resource: dict[str, Any]
) -> HttpResponse:
    reads.require_token(who, Action.IMPORT_RECORDS, rtype, Interaction.UPDATE)
    prepared, _ = writes.prepare_update(
        who, rtype, fhir_id, resource, request.headers.get("If-Match")
    )
    written = writes.feed_write(
        who, [(None, prepared)], {rtype: Interaction.UPDATE}, where=f"{rtype}/{fhir_id} update"
    )[0]
    return _written_response(request, who, written, rtype)


@endpoint(Action.IMPORT_RECORDS)
@api(methods=("POST",))
def transaction(request: HttpRequest, who: TokenActor) -> HttpResponse:
    """``POST [base]`` with a transaction Bundle: all of it, or nothing."""
    bundle = read_json_body(request)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ApiError(400, "invalid", "POST a transaction Bundle to the base.")
    if bundle.get("type") != "transaction":
        raise ApiError(400, "not-supported", "Only transaction Bundles are accepted here.")
    validate_bundle(bundle, where="request")
    entries, interactions = [], {}
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        req = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(req, dict):
            raise ApiError(400, "invalid", f"entry[{index}] needs a resource and a request")
        method, url = req.get("method"), str(req.get("url") or "")
        rtype = resource.get("resourceType")
        if method not in ("POST", "PUT") or req.get("ifNoneExist") or "?" in url:
            raise ApiError(
                400,
                "not-supported",
                f"entry[{index}]: only POST and PUT of resources (by the source's logical "
                "ids; conditional forms are for single-resource requests).",
            )
        if method == "PUT":
            if url != f"{rtype}/{resource.get('id')}":
                raise ApiError(400, "invalid", f"entry[{index}]: request.url must be {rtype}/<id>")
            if rtype in writes.WRITABLE:
                resource, _ = writes.prepare_update(who, rtype, resource["id"], resource, None)
        elif url != rtype:
            raise ApiError(400, "invalid", f"entry[{index}]: request.url must be {rtype}")
        if rtype in writes.WRITABLE:
            wanted = Interaction.UPDATE if method == "PUT" else Interaction.CREATE
            if interactions.get(rtype) not in (None, wanted):
                writes.require_token(who, Action.IMPORT_RECORDS, rtype, wanted)
            interactions.setdefault(rtype, wanted)
        entries.append((entry.get("fullUrl"), resource))
    if not interactions:
        raise ApiError(400, "invalid", "The transaction holds nothing to store.")
    results = writes.feed_write(who, entries, interactions, where="transaction")
    response_entries = []
    for (_, resource), written in zip(entries, results, strict=True):
        if written is None:
            response_entries.append(
                {
                    "response": {
                        "status": "200 OK",
                        "outcome": {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {
                                    "severity": "information",
                                    "code": "informational",
                                    "diagnostics": f"{resource['resourceType']} used to resolve "
                                    "references; not stored as part of the record.",
                                }
                            ],
                        },
                    }
                }
            )
            continue
        response_entries.append(
            {
                "fullUrl": f"{base()}/{written.rtype}/{written.server_id}",
                "response": {
                    "status": written.status,
                    "location": written.location,
                    "etag": f'W/"{written.version}"',
                    "lastModified": instant(written.last_updated),
                },
            }
        )
    return fhir_response(
        {"resourceType": "Bundle", "type": "transaction-response", "entry": response_entries},
        request=request,
    )


# --- Bulk Data export -------------------------------------------------------------------


@endpoint(Action.EXPORT_RECORD)
@api()
def export_system(request: HttpRequest, who: TokenActor) -> HttpResponse:
    return bulk.kick_off(request, who, level="system")


@endpoint(Action.EXPORT_RECORD)
@api()
def export_patients(request: HttpRequest, who: TokenActor) -> HttpResponse:
    return bulk.kick_off(request, who, level="patient")


@endpoint(Action.EXPORT_RECORD)
@api()
def export_group(request: HttpRequest, who: TokenActor, group_id: str) -> HttpResponse:
    return bulk.kick_off(request, who, level="group", group_id=group_id)


@allowed_when_read_only
@endpoint(Action.EXPORT_RECORD)
@api(methods=("GET", "DELETE"))
def export_status(request: HttpRequest, who: TokenActor, job_id: str) -> HttpResponse:
    return bulk.status(request, who, job_id)


@endpoint(Action.EXPORT_RECORD)
@api()
def export_file(request: HttpRequest, who: TokenActor, job_id: str, name: str) -> HttpResponse:
    return bulk.download(request, who, job_id, name)


def entry_url(resource: dict[str, Any]) -> str:  # for tests and docs
    return full_url(resource)
