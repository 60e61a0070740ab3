"""``healthspace service status|close-registrations|reopen|announce-closure DATE|remind|
read-only|purge``: closing the service down (docs/lifecycle.md)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.core.errors import InvalidInput
from healthspace.ops import lifecycle, reminders

CONFIRM = "--yes-destroy-everything"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = "Close the service down, step by step: see docs/lifecycle.md."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("status", help="the service's state, its history, and reminder progress")
        sub.add_parser("close-registrations", help="refuse new accounts (existing ones go on)")
        sub.add_parser("reopen", help="open again (registrations too), any time before purge")
        announce = sub.add_parser(
            "announce-closure",
            help="closes registrations, shows a banner on every page, emails every user",
        )
        announce.add_argument("date", type=_date, help="the closure date, YYYY-MM-DD")
        remind = sub.add_parser("remind", help="go on with the closure emails (after a crash)")
        remind.add_argument(
            "--new-round", action="store_true", help="email everyone again (a later reminder)"
        )
        sub.add_parser("read-only", help="refuse every change; logging in and exports go on")
        purge = sub.add_parser(
            "purge", help="destroy every data key, end every login, write the closure report"
        )
        purge.add_argument(
            CONFIRM, dest="confirmed", action="store_true", help="required: there is no undo"
        )
        purge.add_argument(
            "--report-dir", type=Path, default=None, help="where the closure report goes"
        )

    def handle(self, *args, subcommand: str, **options):
        try:
            if subcommand == "status":
                return self._status()
            if subcommand == "close-registrations":
                self._show(lifecycle.registrations_close())
            elif subcommand == "reopen":
                self._show(lifecycle.reopen())
            elif subcommand == "announce-closure":
                self._show(lifecycle.closure_announce(closure_date=options["date"]))
                self.stdout.write("Closure reminder emails are queued for the worker.")
            elif subcommand == "remind":
                new = options["new_round"]
                self.stdout.write(reminders.new_round() if new else reminders.resume())
            elif subcommand == "read-only":
                self._show(lifecycle.read_only())
            elif subcommand == "purge":
                self._purge(options["confirmed"], options["report_dir"])
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc

    def _show(self, current: lifecycle.Status) -> None:
        when = f" (closure date {current.closure_date})" if current.closure_date else ""
        self.stdout.write(f"HealthSpace is now {current.state.label.lower()}{when}.")

    def _status(self) -> None:
        from healthspace.ops.models import ServiceStateChange

        current = lifecycle.status(fresh=True)
        self._show(current)
        for row in ServiceStateChange.objects.order_by("id"):
            date = f" closure {row.closure_date}" if row.closure_date else ""
            self.stdout.write(
                f"  {row.changed_at:%Y-%m-%d %H:%M:%S} {row.state}{date} by {row.changed_by}"
            )
        progress = reminders.progress()
        if progress is not None:
            self.stdout.write("Closure emails: " + json.dumps(progress, sort_keys=True))

    def _purge(self, confirmed: bool, report_dir: Path | None) -> None:
        from healthspace.ops.purge import purge

        if not confirmed:
            raise CommandError(f"purge destroys every record for good: add {CONFIRM}")
        report, path = purge(confirmed=True, report_dir=report_dir)
        self.stdout.write(report.text())
        self.stdout.write(f"Closure report written to {path} (and {path.with_suffix('.txt')})")
        if report.keys_left_readable or not report.audit_verified:
            raise CommandError("purge incomplete: see the report")
