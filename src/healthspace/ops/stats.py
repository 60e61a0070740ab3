"""Usage statistics: how HealthSpace is used, counted from the audit trail.

Every figure is an aggregate (docs/statistics.md defines each one). Nothing here returns a
patient, an account or a member of staff: the queries group by action, month, role and
organisation type, and the numbers leave this module only through ``published``, which
applies small-number suppression (0 stays 0, 1 to 9 become "<10").

Cost: a fixed number of queries (``QUERIES``) whatever the size of the trail, each a range
of the ``audit_action_ts`` index (action, occurred_at) over the months asked for, so the
work grows with one month's events of the counted actions, never with the whole trail.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import TruncMonth
from django.utils import timezone

from healthspace.access.actors import Actor
from healthspace.access.policy import ORGANISER_ACTIONS, PATIENT_OWN_ACTIONS, Action
from healthspace.accounts.models import Account
from healthspace.audit.models import AuditEvent
from healthspace.audit.services import access_checked, audit_record
from healthspace.core.clock import now
from healthspace.core.errors import InvalidInput, Refused
from healthspace.core.replicas import replica_reads
from healthspace.ops.models import MonthlyUsage

SUPPRESSED = "<10"  # a count from 1 to 9
WITHHELD = "*"  # withheld so that a suppressed count cannot be worked out from the others
SMALL = 10
TREND_MONTHS = 12  # the monthly table: the month asked for and the 11 before it
# What ``usage_compute`` costs, whatever the size of the trail (tested): 6 queries when
# the 12 months of the table are kept (MonthlyUsage); otherwise one more to count the
# others and one to keep those that have ended.
QUERIES = 6
QUERIES_MAX = 8

REGISTRATION_ROUTES = {
    "online": Action.LINKAGE_VERIFY,  # linkage details from the practice, entered online
    "in_person": Action.ACCOUNT_LINK_IN_PERSON,  # identity checked by a registration clerk
}
# What a patient (basic or verified account) does in HealthSpace: any of it in a month makes
# them an active patient that month.
PATIENT_ACTIVITY = sorted(str(a) for a in PATIENT_OWN_ACTIONS | ORGANISER_ACTIONS)
MONTHLY_ACTIONS = sorted(
    {
        *(str(a) for a in REGISTRATION_ROUTES.values()),
        Action.VIEW_SCR,
        Action.EMERGENCY_ACCESS,
        Action.PERMISSION_RECORD,
        Action.EXPORT_RECORD,
        Action.ORGANISER_EXPORT,
        Action.READINGS_SHARE,
        Action.SHARING_GRANT,
        Action.MESSAGE_SEND,
    }
)
PATIENT_ACTOR = Q(actor__startswith="patient:")
STAFF_ACTOR = Q(actor__startswith="staff:")

ROLE_LABELS = {
    "clinician": "Clinician",
    "registration-clerk": "Registration clerk",
    "privacy-officer": "Privacy officer",
    "operator": "Operator",
}
ORG_TYPES = {
    "gp-practice": "GP practice",
    "nhs-trust": "NHS trust",
    "other": "Other organisation",
    "unknown": "Organisation not recorded",
}
# ODS code formats (NHS Digital's Organisation Data Service): a GP practice is a letter and
# five digits (A81001); an NHS trust is R and two characters, a trust site R and four (RR8,
# RR801). The audit event records the code at the time of the view.
GP_PRACTICE = re.compile(r"^[A-Z][0-9]{5}$")
NHS_TRUST = re.compile(r"^R[A-Z0-9]{2}([A-Z0-9]{2})?$")


def org_type(ods_code: str | None) -> str:
    code = (ods_code or "").strip().upper()
    if not code:
        return "unknown"
    if GP_PRACTICE.match(code):
        return "gp-practice"
    if NHS_TRUST.match(code):
        return "nhs-trust"
    return "other"


# --- months ------------------------------------------------------------------------------

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_parse(text: str | None) -> date:
    """YYYY-MM (the first of that month); the current month when empty."""
    if not text:
        local = timezone.localtime(now())
        return date(local.year, local.month, 1)
    found = MONTH.match(text.strip())
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise InvalidInput("Enter the month as a year and month, for example 2026-11")
    return date(int(found.group(1)), int(found.group(2)), 1)


def month_add(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_start(month: date) -> datetime:
    """Midnight at the start of the month, in the service's time zone (Europe/London)."""
    return timezone.make_aware(datetime(month.year, month.month, 1))


def month_key(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        moment = timezone.localtime(moment)
    return f"{moment.year:04d}-{moment.month:02d}"


# --- the raw figures (never leave this module unsuppressed) ------------------------------


@dataclass
class Usage:
    month: date
    accounts_basic: int
    accounts_verified: int
    monthly: dict[str, dict[str, int]]  # "YYYY-MM" -> figure -> count, oldest first
    active_patients: int
    patients_viewed: int
    patients_viewed_more_than_once: int
    staff_views_by_role: dict[str, int]
    staff_views_by_org_type: dict[str, int]
    registered_then_viewed: int  # of the month's registrations: who has viewed since
    median_days_to_first_view: float | None
    annual_cost_gbp: Decimal | None = None
    notes: list[str] = field(default_factory=list)


MONTHLY_FIGURES = (
    "registrations_online",
    "registrations_in_person",
    "scr_views_by_patients",
    "scr_views_by_staff",
    "emergency_accesses",
    "permission_refusals",
    "exports",
    "shares",
    "messages_from_patients",
    "messages_from_staff",
)


def usage_compute(month: date) -> Usage:
    """Every figure for ``month`` (and the monthly table ending with it), in ``QUERIES`` to
    ``QUERIES_MAX`` queries. Call through ``usage_report``, which asks decide() and audits."""
    start, end = month_start(month), month_start(month_add(month, 1))
    in_month = Q(occurred_at__gte=start, occurred_at__lt=end)

    # 1. accounts now, by type (a basic account has no linked record)
    accounts = Account.objects.filter(kind=Account.Kind.PATIENT).aggregate(
        total=Count("id"), verified=Count("id", filter=Q(user__patient_link__isnull=False))
    )

    # 2. the monthly table: closed months already counted are read from MonthlyUsage; the
    #    rest (usually only the month in progress) with one GROUP BY (month, action) over
    #    the index range, and the closed ones among them kept for next time
    keys = [month_add(month, i - TREND_MONTHS + 1) for i in range(TREND_MONTHS)]
    kept = {row.month: row.figures for row in MonthlyUsage.objects.filter(month__in=keys)}
    monthly = {month_key(m): {**dict.fromkeys(MONTHLY_FIGURES, 0), **kept.get(m, {})} for m in keys}
    missing = [m for m in keys if m not in kept]
    if missing:
        _count_months(monthly, missing, end)
        t = now()
        closed = [m for m in missing if month_start(month_add(m, 1)) <= t]
        MonthlyUsage.objects.bulk_create(
            [MonthlyUsage(month=m, figures=monthly[month_key(m)], computed_at=t) for m in closed],
            ignore_conflicts=True,
        )

    # 3. distinct patient accounts active, and who viewed their record, this month
    active = AuditEvent.objects.filter(
        in_month, PATIENT_ACTOR, action__in=PATIENT_ACTIVITY, outcome="success"
    ).aggregate(
        active=Count("actor", distinct=True),
        viewed=Count("actor", distinct=True, filter=Q(action=Action.VIEW_SCR)),
    )

    # 4. patients who viewed more than once: counted over a grouped subquery
    more_than_once = (
        AuditEvent.objects.filter(
            in_month, PATIENT_ACTOR, action=Action.VIEW_SCR, outcome="success"
        )
        .values("actor")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )

    # 5. staff views by the roles and organisation recorded with each view (rows: one per
    #    organisation and set of roles, bounded by the organisations, not the events)
    by_role = dict.fromkeys(ROLE_LABELS, 0)
    by_org = dict.fromkeys(ORG_TYPES, 0)
    staff_rows = (
        AuditEvent.objects.filter(in_month, STAFF_ACTOR, action=Action.VIEW_SCR, outcome="success")
        .values(roles=KT("detail__roles"), org=KT("detail__org"))
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in staff_rows:
        for role in _roles(row["roles"]):
            if role in by_role:
                by_role[role] += row["n"]
        by_org[org_type(row["org"])] += row["n"]

    # 6. registrations this month and each one's first view of the record by the patient
    #    since (the subquery walks that patient's own index, audit_patient_ts)
    first_view = (
        AuditEvent.objects.filter(
            PATIENT_ACTOR,
            patient_id=OuterRef("patient_id"),
            action=Action.VIEW_SCR,
            outcome="success",
            occurred_at__gte=OuterRef("occurred_at"),
        )
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    registered = list(
        AuditEvent.objects.filter(
            in_month,
            action__in=[str(a) for a in REGISTRATION_ROUTES.values()],
            outcome="success",
            patient_id__isnull=False,
        )
        .annotate(first_view=Subquery(first_view))
        .values_list("occurred_at", "first_view")
    )
    waits = [(seen - at) / timedelta(days=1) for at, seen in registered if seen is not None]

    return Usage(
        month=month,
        accounts_basic=accounts["total"] - accounts["verified"],
        accounts_verified=accounts["verified"],
        monthly=monthly,
        active_patients=active["active"],
        patients_viewed=active["viewed"],
        patients_viewed_more_than_once=more_than_once,
        staff_views_by_role=by_role,
        staff_views_by_org_type=by_org,
        registered_then_viewed=len(waits),
        median_days_to_first_view=statistics.median(waits) if waits else None,
        annual_cost_gbp=settings.HEALTHSPACE_ANNUAL_COST_GBP,
    )


def _count_months(monthly: dict[str, dict[str, int]], months: list[date], end: datetime) -> None:
    """Count ``months`` (oldest first, all before ``end``) into ``monthly``, in one query
    from the first of them to ``end``; months in between that were kept are left alone."""
    wanted = {month_key(m) for m in months}
    for row in monthly_rows(month_start(months[0]), end):
        key = month_key(row["month"])
        figures = monthly.get(key)
        if figures is None or key not in wanted:
            continue
        action = row["action"]
        if action == Action.LINKAGE_VERIFY:
            figures["registrations_online"] += row["n"]
        elif action == Action.ACCOUNT_LINK_IN_PERSON:
            figures["registrations_in_person"] += row["n"]
        elif action == Action.VIEW_SCR:
            figures["scr_views_by_patients"] += row["patients"]
            figures["scr_views_by_staff"] += row["staff"]
        elif action == Action.EMERGENCY_ACCESS:
            figures["emergency_accesses"] += row["n"]
        elif action == Action.PERMISSION_RECORD:
            figures["permission_refusals"] += row["refused"]
        elif action in (Action.EXPORT_RECORD, Action.ORGANISER_EXPORT):
            figures["exports"] += row["patients"]
        elif action in (Action.READINGS_SHARE, Action.SHARING_GRANT):
            # readings shared with the care team; a record shared with another account
            # or a one-time share code made for a professional (consent.sharing)
            figures["shares"] += row["patients"]
        elif action == Action.MESSAGE_SEND:
            figures["messages_from_patients"] += row["patients"]
            figures["messages_from_staff"] += row["staff"]


def monthly_rows(start: datetime, end: datetime):
    """Counts by (month, action): a range of ``audit_action_ts`` for each counted action."""
    return (
        AuditEvent.objects.filter(
            action__in=MONTHLY_ACTIONS,
            outcome="success",
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .annotate(month=TruncMonth("occurred_at"))
        .values("month", "action")
        .annotate(
            n=Count("id"),
            patients=Count("id", filter=PATIENT_ACTOR),
            staff=Count("id", filter=STAFF_ACTOR),
            refused=Count("id", filter=Q(detail__answer="refused")),
        )
        .order_by()
    )


def _roles(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if not value:
        return []
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


# --- suppression ---------------------------------------------------------------------------


def suppress(n: int) -> int | str:
    """0 stays 0; 1 to 9 become "<10"; 10 and over are shown exactly."""
    return SUPPRESSED if 0 < n < SMALL else n


def suppress_parts(parts: dict[str, int]) -> dict[str, int | str]:
    """Parts of a total that is shown: when exactly one part is suppressed, the total minus
    the others would give it away, so the smallest other non-zero part is withheld too."""
    out: dict[str, int | str] = {k: suppress(v) for k, v in parts.items()}
    small = [k for k, v in parts.items() if 0 < v < SMALL]
    if len(small) == 1:
        others = sorted((v, k) for k, v in parts.items() if v >= SMALL)
        if others:
            out[others[0][1]] = WITHHELD
    return out


def _median_days(usage: Usage) -> float | str | None:
    if usage.median_days_to_first_view is None:
        return None
    if usage.registered_then_viewed < SMALL:
        return SUPPRESSED  # a median of a handful of people describes those people
    return round(usage.median_days_to_first_view, 1)


def _cost_per_view(usage: Usage, views: int) -> str | None:
    """The month's share of the annual cost over the month's SCR views, in pounds; not
    shown for under 10 views (the cost and the price would give the count away)."""
    if usage.annual_cost_gbp is None:
        return None
    if views < SMALL:
        return SUPPRESSED if views else "no views"
    per_view = usage.annual_cost_gbp / 12 / views
    return str(per_view.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def published(usage: Usage) -> dict[str, Any]:
    """The figures as they may be shown to anyone: every count suppressed."""
    key = month_key(usage.month)
    this = usage.monthly[key]
    views = this["scr_views_by_patients"] + this["scr_views_by_staff"]
    months = []
    for name, figures in usage.monthly.items():
        routes = suppress_parts(
            {
                "online": figures["registrations_online"],
                "in_person": figures["registrations_in_person"],
            }
        )
        total = figures["registrations_online"] + figures["registrations_in_person"]
        row: dict[str, Any] = {"month": name, "registrations": {**routes, "total": suppress(total)}}
        for figure in MONTHLY_FIGURES[2:]:
            row[figure] = suppress(figures[figure])
        months.append(row)
    staff_total = sum(usage.staff_views_by_org_type.values())
    return {
        "month": key,
        "accounts": {
            "basic": suppress(usage.accounts_basic),
            "verified": suppress(usage.accounts_verified),
        },
        "this_month": {
            "active_patients": suppress(usage.active_patients),
            "patients_who_viewed_their_record": suppress(usage.patients_viewed),
            "patients_who_viewed_more_than_once": suppress(usage.patients_viewed_more_than_once),
            "scr_views_by_patients": suppress(this["scr_views_by_patients"]),
            "scr_views_by_staff": suppress(staff_total),
            "staff_views_by_role": {k: suppress(v) for k, v in usage.staff_views_by_role.items()},
            "staff_views_by_organisation_type": suppress_parts(usage.staff_views_by_org_type),
            "emergency_accesses": suppress(this["emergency_accesses"]),
            "permission_refusals": suppress(this["permission_refusals"]),
            "exports": suppress(this["exports"]),
            "shares": suppress(this["shares"]),
            "messages_from_patients": suppress(this["messages_from_patients"]),
            "messages_from_staff": suppress(this["messages_from_staff"]),
            "registered_this_month_and_viewed_since": suppress(usage.registered_then_viewed),
            "median_days_from_registration_to_first_view": _median_days(usage),
            "cost_per_view_gbp": _cost_per_view(usage, views),
        },
        "months": months,
        "suppression": (
            f'counts from 1 to 9 are shown as "{SUPPRESSED}"; "{WITHHELD}" marks a count '
            "withheld so that a suppressed one cannot be worked out from a total"
        ),
    }


# --- asking for them -------------------------------------------------------------------------


def usage_report(*, actor: Actor, month: date) -> dict[str, Any]:
    """The published figures for ``month``, if decide() lets this actor see statistics
    (operators and the stats command), audited as ``stats.view`` about no patient."""
    decision = access_checked(actor=actor, action=Action.STATS_VIEW, patient_id=None)
    if not decision.allowed:
        raise Refused("Usage statistics are for operators", reason=decision.reason)
    # Counts over a month of the trail: a replica's moment-old copy is as good, and the
    # scan stays off the primary. The audit write is on the primary, after it.
    with replica_reads():
        figures = published(usage_compute(month))
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Action.STATS_VIEW,
            patient_id=None,
            outcome="success",
            reason=decision.reason,
            detail={"month": figures["month"]},
        )
    return figures
