"""Log hygiene: nothing that identifies a patient reaches a log line."""

from __future__ import annotations

import logging
import re

# Ten digits, optionally spaced 3-3-4 (NHS numbers), and email addresses.
_NHS_NUMBER = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def redact(text: str) -> str:
    return _EMAIL.sub("[email]", _NHS_NUMBER.sub("[nhs-number]", text))


class RedactIdentifiersFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True
