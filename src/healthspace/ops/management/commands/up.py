from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from healthspace.config import env
from healthspace.ops.demo import (
    ensure_demo_logins,
    ensure_demo_portal,
    ensure_demo_usage,
    load_demo_records,
)


class Command(BaseCommand):
    help = (
        "Set up and run HealthSpace on this machine: apply migrations, load demo patients and "
        "demo logins (unless --no-demo), print the logins, and serve on 127.0.0.1."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-demo", action="store_true", help="no demo data or logins")
        parser.add_argument(
            "--no-serve", action="store_true", help="set up only (migrate, demo data), then exit"
        )
        parser.add_argument("--threads", type=int, default=4, help="WSGI threads (bounded)")
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="do not start a background worker (reminders, notification emails)",
        )

    def handle(self, *args, port, host, no_demo, no_serve, threads, no_worker, **options):
        nhsuk = settings.STATICFILES_DIRS[0][1]
        css = settings.STATICFILES_DIRS[1] / "healthspace.css"
        if not nhsuk.exists() or not css.exists():
            raise CommandError(
                f"Front-end assets are missing ({nhsuk if not nhsuk.exists() else css}). Run "
                "`npm ci && npm run build:css` in the checkout (./hs up does this for you)."
            )
        env.warn_demo_secrets()
        self.stdout.write(f"Database: {settings.DATABASES['default']['NAME']}")
        self.stdout.write(f"Key store: {settings.DATABASES['keystore']['NAME']}")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("migrate", database="keystore", interactive=False, verbosity=0)
        self.stdout.write("Migrations applied.")
        from healthspace.ops import lifecycle

        current = lifecycle.status(fresh=True)
        if current.state != lifecycle.ServiceState.OPEN:  # docs/lifecycle.md
            when = f", closure date {current.closure_date}" if current.closure_date else ""
            self.stdout.write(
                f"Service: {current.state.label.lower()}{when} (healthspace service status)"
            )
        if not no_demo:
            if settings.IS_PRODUCTION:
                raise CommandError("Demo data is never loaded in production (use --no-demo).")
            what, report = load_demo_records()
            self.stdout.write(f"Demo records: {what}.")
            if report is not None:
                for line in report.lines()[:2]:
                    self.stdout.write(f"  {line}")
            self.stdout.write("")
            self.stdout.write("=" * 72)
            self.stdout.write("DEMO LOGINS (synthetic patients; demo passwords, not for real use)")
            logins = ensure_demo_logins(with_totp=True)
            if ensure_demo_portal(logins[0].email):
                self.stdout.write(
                    f"Demo health organiser, appointment, access need and a conversation with the practice for {logins[0].email}."
                )
                patients = [login.email for login in logins if login.role == "patient"]
                ensure_demo_usage(patients)
                if len(logins) > 1 and logins[1].role == "patient":
                    self.stdout.write(
                        f"  {logins[0].email} shares medications, allergies and readings "
                        f"with {logins[1].email} (Records shared with you: /shared/)."
                    )
                self.stdout.write(
                    "Demo usage statistics: the operator login sees them at "
                    "/operator/statistics/ (or run `healthspace stats`)."
                )
            self.stdout.write(
                "  Download your data (FHIR, patient summary, SCR printout, readings) or close "
                "an account: /account/your-data/ and /account/close/ (downloads are built by "
                "`healthspace worker`)."
            )
            for login in logins:
                extra = f"  NHS number {login.nhs_number}" if login.nhs_number else ""
                if login.birth_date:
                    extra += f", born {login.birth_date:%-d %B %Y}"
                self.stdout.write(f"  {login.role:<10} {login.email:<38} {login.password}{extra}")
            for login in logins:
                if login.totp_secret:
                    self.stdout.write(
                        f"  {login.email} has an authenticator app: add the secret "
                        f"{login.totp_secret} to yours, or get a code with\n"
                        f'    .venv/bin/python -c "import pyotp; '
                        f"print(pyotp.TOTP('{login.totp_secret}').now())\""
                    )
            self.stdout.write(
                "  The others set up a second factor (passkey or app) at their first login;\n"
                "  staff (clinician, a-and-e, clerk, privacy, operator) register a passkey, then use\n"
                "  http://127.0.0.1:PORT/staff/ to find a patient by NHS number and date of birth.".replace(
                    "PORT", str(port)
                )
            )
            self.stdout.write("=" * 72)
        if no_serve:
            return
        self.stdout.write(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)")
        if not no_worker:
            self.stdout.write("Background worker started (reminders, notification emails).")
        sys.stdout.flush()
        granian = shutil.which("granian") or os.path.join(
            os.path.dirname(sys.executable), "granian"
        )
        server = [
            granian, "--interface", "wsgi", "--host", host, "--port", str(port),
            "--workers", "1", "--blocking-threads", str(threads),
            "--log-level", "warning", "healthspace.config.wsgi:application",
        ]  # fmt: skip
        if no_worker:
            os.execv(granian, server)  # noqa: S606 - fixed argv, no shell
        worker = [sys.executable, "-m", "healthspace.cli", "worker", "--verbosity", "0"]
        supervise([server, worker])


def supervise(commands: list[list[str]]) -> None:
    """Run the server and the worker side by side; when either stops (or Ctrl+C), stop
    the other, so no orphaned worker keeps running after the server is gone."""
    children = [subprocess.Popen(argv) for argv in commands]  # noqa: S603 - fixed argv
    try:
        while all(child.poll() is None for child in children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                children[0].wait(timeout=1)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
