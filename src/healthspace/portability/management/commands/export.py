from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.access.actors import Actor
from healthspace.core.errors import NotFound
from healthspace.portability.services import export_fhir_bundle, patient_id_for


class Command(BaseCommand):
    help = (
        "Export one patient's whole record as a FHIR R4 Bundle (type collection). IDENT is an "
        "NHS number or an identifier written system|value. The export is audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("ident", help="NHS number, or system|value")
        parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    def handle(self, *args, ident, output, **options):
        try:
            patient_id = patient_id_for(ident)
            bundle = export_fhir_bundle(actor=Actor.system("export"), patient_id=patient_id)
        except NotFound as exc:
            raise CommandError(f"no patient found for {ident!r}") from exc
        text = json.dumps(bundle, indent=2, ensure_ascii=False)
        if output is None:
            sys.stdout.write(text + "\n")
            return
        tmp = output.with_name(output.name + ".partial")
        tmp.write_text(text + "\n")
        tmp.replace(output)  # never leave half a file under the real name
        self.stderr.write(f"wrote {len(bundle['entry'])} resources to {output}")
