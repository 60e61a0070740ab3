"""``healthspace stats [--month YYYY-MM] [--json]``: usage statistics (docs/statistics.md).

Aggregates only, small numbers suppressed exactly as on the operator page; the run is
audited (``stats.view``, about no patient).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from healthspace.access.actors import Actor
from healthspace.core.errors import HealthSpaceError
from healthspace.ops.stats import month_parse, usage_report

LABELS = {
    "active_patients": "Active patients",
    "patients_who_viewed_their_record": "Patients who viewed their SCR",
    "patients_who_viewed_more_than_once": "Patients who viewed more than once",
    "scr_views_by_patients": "SCR views by patients",
    "scr_views_by_staff": "SCR views by staff",
    "emergency_accesses": "Emergency accesses",
    "permission_refusals": "Permission refusals",
    "exports": "Exports (downloads by patients)",
    "shares": "Shares of readings with the care team",
    "messages_from_patients": "Messages from patients",
    "messages_from_staff": "Messages from staff",
    "registered_this_month_and_viewed_since": "Registered this month and viewed since",
    "median_days_from_registration_to_first_view": "Median days, registration to first view",
    "cost_per_view_gbp": "Cost per SCR view (GBP)",
}
MONTH_COLUMNS = [
    ("Month", lambda r: r["month"]),
    ("Reg online", lambda r: r["registrations"]["online"]),
    ("Reg in person", lambda r: r["registrations"]["in_person"]),
    ("Reg total", lambda r: r["registrations"]["total"]),
    ("Patient views", lambda r: r["scr_views_by_patients"]),
    ("Staff views", lambda r: r["scr_views_by_staff"]),
    ("Emergency", lambda r: r["emergency_accesses"]),
    ("Refusals", lambda r: r["permission_refusals"]),
    ("Exports", lambda r: r["exports"]),
    ("Shares", lambda r: r["shares"]),
    ("Msgs patients", lambda r: r["messages_from_patients"]),
    ("Msgs staff", lambda r: r["messages_from_staff"]),
]


def _show(value) -> str:
    return "-" if value is None else str(value)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def plain(figures: dict) -> str:
    this = figures["this_month"]
    out = [f"HealthSpace usage statistics for {figures['month']}", ""]
    accounts = [
        ["Basic accounts (no record linked)", _show(figures["accounts"]["basic"])],
        ["Verified accounts (record linked)", _show(figures["accounts"]["verified"])],
    ]
    out += [table(["Accounts now", "Count"], accounts), ""]
    rows = [[label, _show(this[key])] for key, label in LABELS.items()]
    out += [table([f"In {figures['month']}", "Count"], rows), ""]
    by_role = [[role, _show(n)] for role, n in this["staff_views_by_role"].items()]
    out += [table(["Staff views by role", "Count"], by_role), ""]
    by_org = [[kind, _show(n)] for kind, n in this["staff_views_by_organisation_type"].items()]
    out += [table(["Staff views by organisation type", "Count"], by_org), ""]
    months = [[_show(get(r)) for _, get in MONTH_COLUMNS] for r in figures["months"]]
    out += [table([h for h, _ in MONTH_COLUMNS], months), "", figures["suppression"]]
    return "\n".join(out)


class Command(BaseCommand):
    help = "Usage statistics for one month, from the audit trail (small numbers suppressed)."

    def add_arguments(self, parser):
        parser.add_argument("--month", default="", help="YYYY-MM (default: this month)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, month, json: bool, **options):
        try:
            figures = usage_report(actor=Actor.system("stats"), month=month_parse(month))
        except HealthSpaceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(_dumps(figures) if json else plain(figures))


def _dumps(figures: dict) -> str:
    return json.dumps(figures, indent=2, sort_keys=False)
