"""Bundles the API returns: search sets with self/next links."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from healthspace.core.clock import now
from healthspace.fhir_api.resources import base, instant
from healthspace.fhir_api.search import Search
from healthspace.fhir_api.selectors import Page


def full_url(resource: dict[str, Any]) -> str:
    return f"{base()}/{resource['resourceType']}/{resource['id']}"


def _link(path: str, used: list[tuple[str, str]], offset: int | None = None) -> str:
    params = list(used) + ([("_offset", str(offset))] if offset else [])
    return f"{base()}/{path}" + (f"?{urlencode(params)}" if params else "")


def searchset(path: str, search: Search, page: Page) -> dict[str, Any]:
    """A searchset; ``self`` lists the parameters used (lenient handling leaves out the
    ones ignored), ``next`` / ``previous`` page by ``_offset``."""
    links = [{"relation": "self", "url": _link(path, search.used, search.offset)}]
    end = search.offset + len(page.resources)
    if not search.summary_count and search.count and end < page.total:
        links.append({"relation": "next", "url": _link(path, search.used, end)})
    if search.offset and not search.summary_count:
        links.append(
            {
                "relation": "previous",
                "url": _link(path, search.used, max(0, search.offset - search.count)),
            }
        )
    entries = [
        {"fullUrl": full_url(r), "resource": r, "search": {"mode": "match"}} for r in page.resources
    ]
    entries += [
        {"fullUrl": full_url(r), "resource": r, "search": {"mode": "include"}}
        for r in page.included
    ]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now())},
        "type": "searchset",
        "total": page.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def history(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for r in resources:
        entries.append(
            {
                "fullUrl": full_url(r),
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                "response": {
                    "status": "200",
                    "etag": f'W/"{r["meta"]["versionId"]}"',
                    **(
                        {"lastModified": r["meta"]["lastUpdated"]}
                        if r["meta"].get("lastUpdated")
                        else {}
                    ),
                },
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "history",
        "total": len(entries),
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def collection(resources: list[dict[str, Any]], kind: str = "searchset") -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now())},
        "type": kind,
        "timestamp": instant(now()),
    }
    if kind == "searchset":
        bundle["total"] = len(resources)
        del bundle["timestamp"]
    if resources:
        bundle["entry"] = [
            {"fullUrl": full_url(r), "resource": r}
            | ({"search": {"mode": "match"}} if kind == "searchset" else {})
            for r in resources
        ]
    return bundle
