"""``healthspace linkage-key NHS_NUMBER``: issue linkage details for a patient.

The file name has a hyphen on purpose: Django names a command after its module file (and
imports it with importlib, which accepts the hyphen), so the command is ``linkage-key``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from healthspace.access.actors import Actor
from healthspace.accounts.linkage import services
from healthspace.core import nhs_numbers
from healthspace.core.errors import InvalidInput, NotFound


class Command(BaseCommand):
    help = (
        "Issue linkage details (account ID, linkage key, practice ODS code) for the patient "
        "with this NHS number, as a GP practice does for online services. Printed once and "
        "never stored; earlier unused details for the patient stop working."
    )

    def add_arguments(self, parser):
        parser.add_argument("nhs_number", help="the patient's NHS number (10 digits)")

    def handle(self, *args, nhs_number: str, **options):
        if not nhs_numbers.is_valid(nhs_number):
            raise CommandError("That is not a valid NHS number (10 digits, valid check digit).")
        try:
            issued = services.linkage_key_issue_for_nhs_number(
                actor=Actor.system(services.CLI_PURPOSE),
                nhs_number=nhs_numbers.normalise(nhs_number),
            )
        except (NotFound, InvalidInput) as exc:
            message = "No patient with that NHS number." if isinstance(exc, NotFound) else str(exc)
            raise CommandError(message) from exc
        line = "=" * 72
        self.stdout.write(line)
        self.stdout.write(
            "LINKAGE DETAILS: give these to the patient; they are not stored and cannot be "
            "shown again."
        )
        self.stdout.write(f"  Account ID:         {issued.account_id}")
        self.stdout.write(f"  Linkage key:        {issued.linkage_key}")
        self.stdout.write(f"  Practice ODS code:  {issued.practice_ods}")
        self.stdout.write(f"  Use before:         {services.format_expiry(issued.expires_at)}")
        self.stdout.write("The key works once. Issuing new details stops these from working.")
        self.stdout.write(line)
