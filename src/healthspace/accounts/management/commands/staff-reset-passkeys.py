"""Remove a staff member's passkeys (a lost or stolen security key) and print a new set-up
link: they set a new passcode and register a new passkey, as on their first day."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.access.policy import Action
from healthspace.accounts.models import Account, Passkey
from healthspace.accounts.sessions.services import sessions_end_all
from healthspace.audit.services import audit_record


class Command(BaseCommand):
    help = (
        "Remove every passkey of a staff login, end its sessions, make its passcode unusable "
        "and print a new set-up link (72 hours). Use when a security key is lost or stolen."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--base-url", default=None)

    def handle(self, *args, email, base_url, **options):
        user = get_user_model().objects.filter(username=email.strip().lower()).first()
        if user is None or not Account.objects.filter(user=user, kind=Account.Kind.STAFF).exists():
            raise CommandError(f"no staff login {email!r}")
        with transaction.atomic():
            removed = Passkey.objects.filter(user=user).delete()[0]
            user.set_unusable_password()
            user.save(update_fields=["password"])
            ended = sessions_end_all(user, reason="staff-passkeys-reset")
            audit_record(
                actor=Actor.system("staff-reset-passkeys"),
                action=Action.ACCOUNT_STAFF_PASSKEYS_RESET,
                patient_id=None,
                outcome="success",
                reason="operator-command",
                detail={"user": user.pk, "passkeys_removed": removed, "sessions_ended": ended},
            )
        self.stdout.write(f"Removed {removed} passkey(s) and ended {ended} session(s).")
        extra = ["--base-url", base_url] if base_url else []
        call_command("createstaff", user.username, "--new-link", *extra, stdout=self.stdout)
