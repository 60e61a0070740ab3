"""The operator's usage statistics page (docs/statistics.md). Aggregates only: no patient,
account or member of staff is named, and every count from 1 to 9 is shown as "<10".
Staff with the operator role only (decide(): ``stats.view``); anyone else: not found."""

from __future__ import annotations

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from healthspace.access.actors import Actor
from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.core.errors import InvalidInput, Refused
from healthspace.ops.stats import (
    ORG_TYPES,
    ROLE_LABELS,
    SUPPRESSED,
    WITHHELD,
    month_add,
    month_key,
    month_parse,
    usage_report,
)
from healthspace.staff.views import staff_page

MONTHS_OFFERED = 24


def _month_name(key: str) -> str:
    year, month = (int(p) for p in key.split("-"))
    return f"{date(year, month, 1):%B %Y}"


@staff_page
@endpoint(Action.STATS_VIEW)
@require_GET
def statistics(request: HttpRequest, actor: Actor) -> HttpResponse:
    current = month_parse("")
    choices = [month_key(month_add(current, -i)) for i in range(MONTHS_OFFERED)]
    error = None
    try:
        month = month_parse(request.GET.get("month", ""))
    except InvalidInput as exc:
        error, month = str(exc), current
    try:
        figures = usage_report(actor=actor, month=month)
    except Refused as exc:
        raise Http404 from exc
    context = {
        "figures": figures,
        "this": figures["this_month"],
        "choices": [(key, _month_name(key)) for key in choices],
        "month_name": _month_name(figures["month"]),
        "month_name_of": _month_name,
        "error": error,
        "role_labels": ROLE_LABELS,
        "org_types": ORG_TYPES,
        "suppressed": SUPPRESSED,
        "withheld": WITHHELD,
    }
    context["staff_roles"] = sorted(actor.roles)  # the staff header's navigation
    return render(request, "ops/statistics.html", context, status=400 if error else 200)
