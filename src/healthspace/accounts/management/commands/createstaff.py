"""``healthspace createstaff EMAIL --role ROLE --org ODS``: the only way to make a staff login."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from healthspace.access.actors import Actor
from healthspace.access.roles import STAFF_GROUPS
from healthspace.accounts.linkage import staff
from healthspace.core.errors import InvalidInput

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = (
        "Create a staff login (staff never register themselves) with one or more roles at "
        "one organisation, and print a one-time set-up link (72 hours) where they choose a "
        "passcode and register a passkey."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            dest="roles",
            metavar="ROLE",
            help=f"repeat for several; roles and activities: {', '.join(sorted(STAFF_GROUPS))}",
        )
        parser.add_argument("--org", dest="ods", help="ODS code of their organisation")
        parser.add_argument("--name", default="", help='full name, e.g. "Sam Taylor"')
        parser.add_argument(
            "--new-link",
            action="store_true",
            help="print a fresh set-up link for a staff login whose set-up is not finished",
        )
        parser.add_argument(
            "--base-url",
            default=None,
            help="address of the service in the link (default: HEALTHSPACE_BASE_URL)",
        )

    def handle(self, *args, email, roles, ods, name, new_link, base_url, **options):
        try:
            if new_link:
                user = staff.staff_setup_restart(email=email)
                token = staff.staff_setup_token(user)
            else:
                if not ods:
                    raise InvalidInput("Give the organisation's ODS code with --org.")
                created = staff.staff_account_create(
                    actor=Actor.system("createstaff"),
                    email=email,
                    roles=roles,
                    ods_code=ods,
                    full_name=name,
                )
                user, token = created.user, created.setup_token
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc
        base = (base_url or getattr(settings, "HEALTHSPACE_BASE_URL", DEFAULT_BASE_URL)).rstrip("/")
        link = base + reverse("accounts:staff-setup-link", kwargs={"token": token})
        line = "=" * 72
        if not new_link:
            self.stdout.write(f"Staff login created: {user.get_username()}")
        self.stdout.write(line)
        self.stdout.write(
            "ONE-TIME SET-UP LINK: send it to this person only. It works once, for 72"
        )
        self.stdout.write("hours; there they choose a passcode, then register a passkey.")
        self.stdout.write(f"  {link}")
        self.stdout.write(line)
