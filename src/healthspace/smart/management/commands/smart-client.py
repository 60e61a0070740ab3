"""``healthspace smart-client``: register and manage OAuth clients (docs/smart.md).

    healthspace smart-client add-app "My medicines" --redirect-uri https://app.example/cb
    healthspace smart-client add-system "Riverside GP system" --ods Y00001 \\
        --jwks keys.json --scopes "system/*.rs system/*.cu"
    healthspace smart-client list
    healthspace smart-client set-keys CLIENT_ID keys.json
    healthspace smart-client disable CLIENT_ID
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.core.errors import InvalidInput, NotFound
from healthspace.smart import services
from healthspace.smart.models import AppRegistration


def _jwks(path: str):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read a JWK Set from {path}: {exc}") from exc


class Command(BaseCommand):
    help = "Register and manage OAuth clients: patient apps and system clients (GP feeds)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        app = sub.add_parser("add-app", help="a patient app (SMART standalone launch, PKCE)")
        app.add_argument("name")
        app.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
        app.add_argument("--publisher", default="", help="shown to patients on the consent screen")
        app.add_argument(
            "--confidential",
            action="store_true",
            help="a server-side app with a client secret (printed once); PKCE still required",
        )
        system = sub.add_parser("add-system", help="a system client (SMART Backend Services)")
        system.add_argument("name")
        system.add_argument("--ods", required=True, help="ODS code of the organisation it acts for")
        system.add_argument("--org-name", default="", help="name of the organisation, if new here")
        system.add_argument("--jwks", required=True, help="file with its public JWK Set")
        system.add_argument(
            "--scopes",
            required=True,
            help='the most it may be granted, e.g. "system/*.rs system/*.cu"',
        )
        system.add_argument(
            "--source-system",
            default="",
            help="URI its writes are recorded under (default urn:healthspace:client:<id>)",
        )
        keys = sub.add_parser("set-keys", help="replace a system client's JWK Set (rotation)")
        keys.add_argument("client_id")
        keys.add_argument("jwks")
        disable = sub.add_parser("disable", help="stop a client now: its tokens are revoked")
        disable.add_argument("client_id")
        sub.add_parser("list", help="every registered client")

    def handle(self, *args, **options):
        action = options["action"]
        try:
            if action == "add-app":
                done = services.client_register_patient_app(
                    name=options["name"],
                    redirect_uris=options["redirect_uris"],
                    publisher=options["publisher"],
                    confidential=options["confidential"],
                )
                self.stdout.write(f"client_id: {done.client_id}")
                if done.client_secret:
                    self.stdout.write(f"client_secret: {done.client_secret}")
                    self.stdout.write("(shown once: only a hash of it is kept)")
            elif action == "add-system":
                done = services.client_register_system(
                    name=options["name"],
                    ods_code=options["ods"],
                    organisation_name=options["org_name"],
                    jwks=_jwks(options["jwks"]),
                    allowed_scopes=options["scopes"],
                    source_system=options["source_system"],
                )
                self.stdout.write(f"client_id: {done.client_id}")
            elif action == "set-keys":
                services.client_jwks_set(
                    client_id=options["client_id"], jwks=_jwks(options["jwks"])
                )
                self.stdout.write("keys replaced")
            elif action == "disable":
                services.client_disable(client_id=options["client_id"])
                self.stdout.write("disabled; its tokens are revoked")
            else:
                for reg in AppRegistration.objects.select_related(
                    "application", "organisation"
                ).order_by("created_at"):
                    org = reg.organisation.ods_code if reg.organisation else "-"
                    state = "active" if reg.active else "disabled"
                    scopes = reg.allowed_scopes or "patient/*.rs (patient's choice)"
                    self.stdout.write(
                        f"{reg.application.client_id}\t{reg.kind}\t{state}\t{org}\t"
                        f"{reg.application.name}\t{scopes}"
                    )
        except (InvalidInput, NotFound, ValueError) as exc:
            raise CommandError(str(exc)) from exc
