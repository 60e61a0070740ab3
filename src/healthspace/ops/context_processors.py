"""``service`` on every page: the service's lifecycle state, for the closure banner in
web/base.html (cached in the process: no query per page)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from healthspace.ops import lifecycle


def service(request: HttpRequest) -> dict[str, Any]:
    return {"service": lifecycle.status(), "export_url_name": lifecycle.EXPORT_URL_NAME}
