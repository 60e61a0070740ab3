from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from healthspace.portability import receipts


class Command(BaseCommand):
    help = (
        "Check a deletion receipt's Ed25519 signature against the configured receipt key "
        "(HEALTHSPACE_RECEIPT_SIGNING_KEY) or --public-key. Exits 1 if it was changed or "
        "signed by another key."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", type=Path, help="the receipt (JSON)")
        parser.add_argument("--public-key", help="trust this key (base64) instead")
        parser.add_argument(
            "--show-public-key", action="store_true", help="print the configured public key"
        )

    def handle(self, *args, file, public_key, show_public_key, **options):
        if show_public_key:
            public = receipts.signing_key().public_key()
            self.stdout.write(
                f"{receipts.public_key_text(public)} (key id {receipts.key_id(public)})"
            )
            return
        if file is None:
            raise CommandError("give the receipt's FILE")
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        try:
            key = receipts.public_key_from_text(public_key) if public_key else None
            receipt = receipts.verify(text, key)
        except receipts.ReceiptInvalid as exc:
            raise CommandError(f"receipt NOT valid: {exc}") from exc
        keys = ", ".join(k["key_id"] for k in receipt["keys_destroyed"]) or "none"
        self.stdout.write(
            f"receipt valid: {receipt['kind']} {receipt['receipt_id']} issued "
            f"{receipt['issued_at']}; keys destroyed: {keys}"
        )
