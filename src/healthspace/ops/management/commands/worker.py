"""``healthspace worker``: run background tasks (reminders, notifications) as they fall due."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

from healthspace.config import env


class Command(BaseCommand):
    help = (
        "Run HealthSpace's background tasks (appointment reminders, notification emails) "
        "as they fall due. Run one or more beside the web server; `healthspace up` starts "
        "one for you."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between looks for due tasks"
        )
        parser.add_argument(
            "--batch", action="store_true", help="run what is due now, then exit (for cron)"
        )

    def handle(self, *args, interval, batch, **options):
        env.warn_demo_secrets()
        call_command(
            "db_worker",
            queue_name="default",
            interval=interval,
            batch=batch,
            verbosity=options.get("verbosity", 1),
        )
