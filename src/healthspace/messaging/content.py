"""What a subject and a message body may be: plain text (never HTML: pages escape it),
not empty, not too long, without invisible characters that could disguise what it says.

Pure functions, used by the forms (to show a field error) and again by the services (so
nothing reaches the database unchecked, whoever calls them).
"""

from __future__ import annotations

import re
import unicodedata

from healthspace.core.errors import InvalidInput

SUBJECT_MAX = 100
BODY_MAX = 5000

SUBJECT_EMPTY = "Enter a subject"
SUBJECT_TOO_LONG = f"The subject must be {SUBJECT_MAX} characters or fewer"
BODY_EMPTY = "Enter your message"
BODY_TOO_LONG = f"Your message must be {BODY_MAX:,} characters or fewer"

# Bidirectional overrides and isolates reorder what is shown ("Trojan Source"); C0/C1
# controls have no place in a message. Other format characters (zero-width joiners in
# emoji and in some scripts) are kept.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _common(text: str) -> str:
    text = unicodedata.normalize("NFC", text or "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BIDI.sub("", text)
    return _CONTROL.sub("", text)


def subject_clean(text: str) -> str:
    """One line, spaces collapsed."""
    subject = " ".join(_common(text).split())
    if not subject:
        raise InvalidInput(SUBJECT_EMPTY)
    if len(subject) > SUBJECT_MAX:
        raise InvalidInput(SUBJECT_TOO_LONG)
    return subject


def body_clean(text: str) -> str:
    """Lines kept (the page shows them), trailing spaces dropped, at most one empty line
    between paragraphs."""
    lines = [line.rstrip() for line in _common(text).replace("\t", "    ").split("\n")]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    if not body.strip():
        raise InvalidInput(BODY_EMPTY)
    if len(body) > BODY_MAX:
        raise InvalidInput(BODY_TOO_LONG)
    return body


def paragraphs(body: str) -> list[list[str]]:
    """A body as paragraphs of lines, for a template to show with its line breaks while
    escaping every line (nothing is ever marked safe)."""
    return [para.split("\n") for para in body.split("\n\n") if para.strip()]
