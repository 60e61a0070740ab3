"""When fhir.resources' own check of one FHIR primitive value is certain to pass.

``fhir_checks`` validates every resource with one walk of its own; fhir.resources
(``model_validate``) then adds the lexical checks of the FHIR datatypes (date and time
patterns and calendars, integer ranges, the code and string patterns, URLs, ...). That
library call is four fifths of the cost of validation (docs/import.md). The walk skips it
when it can show that it would pass: every structural rule of the library is one of the
walk's own (stricter) rules, and for each primitive value :func:`certain_string` (and
``certain_integer``, ``certain_decimal``) answers True only for values the library's check
of that datatype is known to accept. Anything else (a leap second, a uuid, a URL that is
not plain http(s), a required element sent only as its ``_x`` extension, ...) is
*uncertain* and the walk runs ``model_validate`` after all, so the library's verdict and
its message stand. Being uncertain costs time, never strictness.

The predicates are the library's checks or narrower, never wider:

- ``date``, ``dateTime``, ``instant``, ``time``: the library's own regular expressions
  (``fhir_core.types``, the same Python ``re`` engine it uses), then a real calendar date
  for a full date (``datetime.date``); seconds of 60 are uncertain (the library maps them
  to 59 and re-validates);
- ``integer``, ``unsignedInt``, ``positiveInt``, ``integer64``: the library's bounds;
- ``decimal``: the library's pattern over ``str(value)``, as it does;
- ``string`` and ``code``: the library's patterns (``[ \\r\\n\\t\\S]+`` searched,
  ``^[^\\s]+(\\s[^\\s]+)*$``) run in pydantic's Rust regex, where ``\\s`` is Unicode
  White_Space: the same patterns here with that set spelled out (``WHITE_SPACE``), so
  non-Latin names and codes take the fast path too; the test checks every code point;
- ``oid``: the library's pattern, ASCII digits;
- ``url``: ``http(s)://host[:port]`` then printable ASCII; other schemes are uncertain;
- ``uuid``: always uncertain (a handful of choice elements only);
- ``uri``, ``canonical``, ``markdown`` (patterns every string meets), ``xhtml`` (no check
  in the library), ``id`` and ``base64Binary`` (the walk's own checks are stricter), and
  ``boolean``: certain once the walk's own checks passed.

``tests/test_fhir_fast_path.py`` holds the evidence: every resource of the shared FHIR
data, and thousands of mutations of them, gets the same verdict with and without the
library call whenever the walk calls itself certain.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from fhir_core.types import Date, DateTime, Decimal, Instant, Time

# Unicode White_Space (PropList.txt): what ``\s`` means in the Rust regex pydantic runs
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# the string pattern [ \r\n\t\S]+ finds a character that is not White_Space other than
# those four
_STRING_CHAR = re.compile("[^\x0b\x0c\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_CODE = re.compile(f"[^{WHITE_SPACE}]+(?:[{WHITE_SPACE}][^{WHITE_SPACE}]+)*")
_OID = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")
_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:[/?#][!-~]*)?")
_LEAP = re.compile(r"(?:^|T)[0-9]{2}:[0-9]{2}:60")

INTEGER_BOUNDS: dict[str, tuple[int, int]] = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
    "integer64": (-(2**63 - 1), 2**63 - 1),
}


def _full_date_exists(value: str) -> bool:
    try:
        dt.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def _date(value: str) -> bool:
    if Date.pattern.fullmatch(value) is None:
        return False
    return len(value) < 10 or _full_date_exists(value)


def _date_time(value: str) -> bool:
    if DateTime.pattern.fullmatch(value) is None:
        return False
    if len(value) < 10:
        return True  # a year or a year and month: the library keeps the string
    return _full_date_exists(value) and _LEAP.search(value) is None


def _instant(value: str) -> bool:
    return (
        Instant.pattern.fullmatch(value) is not None
        and _full_date_exists(value)
        and _LEAP.search(value) is None
    )


def _time(value: str) -> bool:
    return Time.pattern.fullmatch(value) is not None and _LEAP.search(value) is None


def _string(value: str) -> bool:
    return _STRING_CHAR.search(value) is not None


def _code(value: str) -> bool:
    return _CODE.fullmatch(value) is not None


def _oid(value: str) -> bool:
    return _OID.fullmatch(value) is not None


def _url(value: str) -> bool:
    return _URL.fullmatch(value) is not None


# Checks of string-valued primitives. A type in ALWAYS_CERTAIN is certain once the walk's
# own checks of it passed (see the module docstring); any other type, uuid or one the
# walk meets in a future library, is uncertain.
STRING_CHECKS: dict[str, Callable[[str], bool]] = {
    "string": _string,
    "code": _code,
    "date": _date,
    "dateTime": _date_time,
    "instant": _instant,
    "time": _time,
    "oid": _oid,
    "url": _url,
}
ALWAYS_CERTAIN = frozenset({"uri", "canonical", "markdown", "xhtml", "id", "base64Binary"})


def certain_string(prim: str, value: str) -> bool:
    """True if fhir.resources' check of this string value of type ``prim`` must pass."""
    check = STRING_CHECKS.get(prim)
    if check is not None:
        return check(value)
    return prim in ALWAYS_CERTAIN


def certain_integer(prim: str, value: int) -> bool:
    low, high = INTEGER_BOUNDS[prim]
    return low <= value <= high


def certain_decimal(value: int | float) -> bool:
    return Decimal.pattern.fullmatch(str(value)) is not None
