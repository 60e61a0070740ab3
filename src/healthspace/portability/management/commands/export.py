from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.access.actors import Actor
from healthspace.core.errors import NotFound
from healthspace.portability import services


class Command(BaseCommand):
    help = (
        "Export one patient's data. IDENT is an NHS number or an identifier written "
        "system|value. --format fhir (default): everything as a FHIR R4 collection Bundle "
        "(SCR, consent history, who looked, the linked account's organiser readings and "
        "messages); ips: the International Patient Summary; pdf: the SCR printout; csv: "
        "the organiser's readings. The export is audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("ident", help="NHS number, or system|value")
        parser.add_argument("--format", choices=services.FORMATS, default="fhir", dest="what")
        parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    def handle(self, *args, ident, what, output, **options):
        try:
            patient_id = services.patient_id_for(ident)
            body = services.export(
                actor=Actor.system("export"),
                patient_id=patient_id,
                user_id=services.account_of(patient_id),
                what=what,
            )
        except NotFound as exc:
            raise CommandError(f"no patient found for {ident!r}") from exc
        if output is None:
            if what == "pdf" and sys.stdout.isatty():
                raise CommandError("a PDF goes to a file: give -o FILE")
            sys.stdout.buffer.write(body) if hasattr(sys.stdout, "buffer") else sys.stdout.write(
                body.decode("utf-8")
            )
            sys.stdout.flush()
            return
        tmp = output.with_name(output.name + ".partial")
        tmp.write_bytes(body)
        tmp.replace(output)  # never leave half a file under the real name
        self.stderr.write(f"wrote {what} export ({len(body)} bytes) to {output}")
