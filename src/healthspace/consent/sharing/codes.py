"""One-time share codes: 10 characters of Crockford base32 (50 bits), shown in two groups
of five ("7KQ2M-X9D4P"), typed by a professional. Only a keyed hash is stored."""

from __future__ import annotations

import secrets

from healthspace.vault.services import index

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 10
# what people mistype for what they see (Crockford's decoding rules)
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
HASH_PURPOSE = "sharing:share-code"


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalised(typed: str) -> str | None:
    """The code as typed, in canonical form, or None when it cannot be a code."""
    text = "".join(ch for ch in (typed or "").upper() if ch not in " -\t").translate(_READS_AS)
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        return None
    return text


def code_hash(typed: str) -> str | None:
    canonical = normalised(typed)
    return index(HASH_PURPOSE, canonical) if canonical else None


def qr_svg(text: str) -> bytes:
    """An SVG QR code (segno): no script, no style element, nothing inline to trust."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return out.getvalue()
