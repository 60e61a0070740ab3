"""Search parameters: the allowlist per resource type, parsing, and matching.

Every parameter a search may use is listed here; anything else is refused (400) unless
the client asks for lenient handling (``Prefer: handling=lenient``), when it is ignored
and left out of the ``self`` link. Values are parsed into typed filters, never passed to
SQL as text, so ``_sort`` and friends cannot inject anything (OpenEMR CVE-2026-24908).

Clinical content is sealed, so content parameters (code, category, status, date...) are
matched on the decrypted resources of one patient; parameters on columns kept in the
clear (patient, ``_lastUpdated``, ``birthdate``, ``_sort`` by date) run in SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import QueryDict

from healthspace.fhir_api.http import ApiError
from healthspace.records import fhir_map

TOKEN, DATE, REFERENCE = "token", "date", "reference"


@dataclass(frozen=True)
class Param:
    kind: str
    paths: tuple[str, ...] = ()


def token(*paths: str) -> Param:
    return Param(TOKEN, paths)


def date_param(*paths: str) -> Param:
    return Param(DATE, paths)


IDENTIFIER = token("identifier")
STATUS = token("status")
CATEGORY = token("category")
CODE = token("code")

# Item types: SCR items, served as they came from the source (with HealthSpace ids).
ITEM_PARAMS: dict[str, dict[str, Param]] = {
    "AllergyIntolerance": {
        "clinical-status": token("clinicalStatus"),
        "verification-status": token("verificationStatus"),
        "category": CATEGORY,
        "code": CODE,
        "criticality": token("criticality"),
        "type": token("type"),
        "date": date_param("recordedDate"),
        "onset": date_param("onsetDateTime", "onsetPeriod"),
        "identifier": IDENTIFIER,
    },
    "Condition": {
        "clinical-status": token("clinicalStatus"),
        "verification-status": token("verificationStatus"),
        "category": CATEGORY,
        "code": CODE,
        "onset-date": date_param("onsetDateTime", "onsetPeriod"),
        "recorded-date": date_param("recordedDate"),
        "identifier": IDENTIFIER,
    },
    "Observation": {
        "category": CATEGORY,
        "code": CODE,
        "status": STATUS,
        "date": date_param("effectiveDateTime", "effectivePeriod", "effectiveInstant"),
        "identifier": IDENTIFIER,
    },
    "MedicationStatement": {
        "status": STATUS,
        "code": token("medicationCodeableConcept"),
        "category": CATEGORY,
        "effective": date_param("effectiveDateTime", "effectivePeriod"),
        "identifier": IDENTIFIER,
    },
    "MedicationRequest": {
        "status": STATUS,
        "intent": token("intent"),
        "code": token("medicationCodeableConcept"),
        "category": CATEGORY,
        "authoredon": date_param("authoredOn"),
        "identifier": IDENTIFIER,
    },
    "Immunization": {
        "status": STATUS,
        "vaccine-code": token("vaccineCode"),
        "date": date_param("occurrenceDateTime"),
        "identifier": IDENTIFIER,
    },
    "Procedure": {
        "status": STATUS,
        "code": CODE,
        "category": CATEGORY,
        "date": date_param("performedDateTime", "performedPeriod"),
        "identifier": IDENTIFIER,
    },
    "DiagnosticReport": {
        "status": STATUS,
        "code": CODE,
        "category": CATEGORY,
        "date": date_param("effectiveDateTime", "effectivePeriod"),
        "identifier": IDENTIFIER,
    },
    "Encounter": {
        "status": STATUS,
        "class": token("class"),
        "type": token("type"),
        "date": date_param("period"),
        "identifier": IDENTIFIER,
    },
    "CarePlan": {
        "status": STATUS,
        "category": CATEGORY,
        "date": date_param("period"),
        "identifier": IDENTIFIER,
    },
    "CareTeam": {
        "status": STATUS,
        "category": CATEGORY,
        "date": date_param("period"),
        "identifier": IDENTIFIER,
    },
    "AdverseEvent": {"event": token("event"), "date": date_param("date")},
    "Practitioner": {"identifier": IDENTIFIER},
    "PractitionerRole": {"identifier": IDENTIFIER},
}
# The element each item type's search by ``patient`` / ``subject`` follows.
PATIENT_REFERENCE = dict(fhir_map.PATIENT_FIELD)
OTHER_PARAMS: dict[str, dict[str, Param]] = {
    "Patient": {"identifier": IDENTIFIER, "birthdate": date_param("birthDate")},
    "Consent": {"status": STATUS, "date": date_param("dateTime")},
    "AuditEvent": {"date": date_param("recorded")},
    "Communication": {"status": STATUS, "sent": date_param("sent")},
}
# Types whose search names (or implies) a patient
PATIENT_SCOPED = frozenset([*PATIENT_REFERENCE, "Consent", "AuditEvent", "Communication"])
# Types that also take ``subject`` (and ``_include=[type]:subject``): FHIR defines it
SUBJECT_TYPES = frozenset(
    [*(t for t, element in PATIENT_REFERENCE.items() if element == "subject"), "Communication"]
)
# Controls every search takes (FHIR "search result parameters" and our paging).
CONTROLS = frozenset(
    {"_count", "_offset", "_sort", "_include", "_total", "_summary", "_format", "_pretty"}
)
SORTS = {"_lastUpdated": "updated", "date": "date"}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def params_for(rtype: str) -> dict[str, Param]:
    return ITEM_PARAMS.get(rtype) or OTHER_PARAMS.get(rtype) or {}


@dataclass(frozen=True)
class DateRange:
    start: datetime
    end: datetime  # exclusive


# _lastUpdated against a stored instant (its range is itself): the bounds on the stored
# time that each prefix asks for, all together, negated for ne; the ORM's Q
# (fhir_api.selectors) and plain SQL (messaging.fhir) are built from this one table
LAST_UPDATED_BOUNDS: dict[str, tuple[bool, tuple[tuple[str, str], ...]]] = {
    "eq": (False, ((">=", "start"), ("<", "end"))),
    "ne": (True, ((">=", "start"), ("<", "end"))),
    "gt": (False, ((">=", "end"),)),
    "sa": (False, ((">=", "end"),)),
    "ge": (False, ((">=", "start"),)),
    "lt": (False, (("<", "start"),)),
    "eb": (False, (("<", "start"),)),
    "le": (False, (("<", "end"),)),
}

MIN = datetime(1, 1, 1, tzinfo=UTC)
MAX = datetime(9999, 12, 31, tzinfo=UTC)
_DATE = re.compile(
    r"(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})"
    r"(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(\.\d{1,9})?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def date_range(text: str) -> DateRange | None:
    """The range a FHIR date, dateTime or instant covers (its precision): "2020" is the
    whole year. Times without a zone are read as UTC."""
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        return None
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            return DateRange(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
        month = int(g["m"])
        if g["d"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            return DateRange(start, end)
        day = date(year, month, int(g["d"]))
        if g["H"] is None:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return DateRange(start, start + timedelta(days=1))
        tz = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            from datetime import timezone

            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        seconds = g["S"]
        start = datetime(
            day.year, day.month, day.day, int(g["H"]), int(g["M"]), int(seconds or 0), tzinfo=tz
        )
        return DateRange(start, start + timedelta(seconds=1 if seconds else 60))
    except ValueError:
        return None


def value_range(value: Any) -> DateRange | None:
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, dict):  # Period
        start = date_range(value.get("start", "")) if value.get("start") else None
        end = date_range(value.get("end", "")) if value.get("end") else None
        if start is None and end is None:
            return None
        return DateRange(start.start if start else MIN, end.end if end else MAX)
    return None


def date_matches(prefix: str, search: DateRange, target: DateRange) -> bool:
    eq = search.start <= target.start and target.end <= search.end
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return not eq
    if prefix == "gt":
        return target.end > search.end
    if prefix == "lt":
        return target.start < search.start
    if prefix == "ge":
        return target.end > search.end or eq
    if prefix == "le":
        return target.start < search.start or eq
    if prefix == "sa":
        return target.start >= search.end
    if prefix == "eb":
        return target.end <= search.start
    return False


@dataclass(frozen=True)
class TokenValue:
    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code in the system


def token_value(text: str) -> TokenValue:
    if "|" not in text:
        return TokenValue(None, text)
    system, _, code = text.partition("|")
    return TokenValue(system, code or None)


def _codings(value: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, bool) or not isinstance(value, dict):
        return []
    if "coding" in value or ("text" in value and "system" not in value):
        return [(c.get("system"), c.get("code")) for c in value.get("coding") or []]
    if "value" in value and ("system" in value or "use" in value or "type" in value):
        return [(value.get("system"), value.get("value"))]  # Identifier
    return [(value.get("system"), value.get("code"))]  # Coding


def _values(resource: dict[str, Any], path: str) -> list[Any]:
    value = resource.get(path)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def token_matches(wanted: TokenValue, resource: dict[str, Any], paths: tuple[str, ...]) -> bool:
    for path in paths:
        for value in _values(resource, path):
            for system, code in _codings(value):
                if wanted.code is not None and code != wanted.code:
                    continue
                if wanted.system is None:
                    return True
                if wanted.system == "" and not system:
                    return True
                if system == wanted.system or (system is None and isinstance(value, str)):
                    return True
    return False


@dataclass
class Filter:
    name: str
    param: Param
    values: list[Any]  # OR of values; each TokenValue or (prefix, DateRange)

    def matches(self, resource: dict[str, Any]) -> bool:
        if self.param.kind == TOKEN:
            return any(token_matches(v, resource, self.param.paths) for v in self.values)
        targets = [
            r for p in self.param.paths for v in _values(resource, p) if (r := value_range(v))
        ]
        return any(date_matches(prefix, rng, t) for prefix, rng in self.values for t in targets)


@dataclass
class Search:
    rtype: str
    patients: list[str] = field(default_factory=list)  # ids named by patient / subject
    ids: list[str] | None = None  # _id (OR)
    filters: list[Filter] = field(default_factory=list)
    last_updated: list[tuple[str, DateRange]] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    sort: tuple[str, bool] = ("date", True)  # (key, descending)
    include_patient: bool = False
    summary_count: bool = False
    used: list[tuple[str, str]] = field(default_factory=list)  # for the self link

    @property
    def content_filters(self) -> bool:
        return bool(self.filters)


def _bad(message: str, name: str | None = None) -> ApiError:
    return ApiError(400, "invalid", message, expression=[name] if name else None)


def _split_values(raw: str) -> list[str]:
    # commas separate alternatives; "\," is a literal comma
    parts, current, escaped = [], "", False
    for ch in raw:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _date_values(name: str, raw: str) -> list[tuple[str, DateRange]]:
    out = []
    for text in _split_values(raw):
        prefix = text[:2] if text[:2] in PREFIXES else "eq"
        rest = text[2:] if text[:2] in PREFIXES else text
        rng = date_range(rest)
        if rng is None:
            raise _bad(f"{name}: {text!r} is not a FHIR date (e.g. ge2024-01-31)", name)
        out.append((prefix, rng))
    return out


def reference_id(value: str, rtype: str = "Patient") -> str:
    """``123``, ``Patient/123`` or ``<base>/Patient/123`` -> ``123``."""
    base = settings.HEALTHSPACE_FHIR_BASE.rstrip("/") + "/"
    text = value.removeprefix(base)
    if "/" in text:
        kind, _, rest = text.partition("/")
        if kind != rtype or "/" in rest:
            return ""  # another type, or a path: names no patient here
        return rest
    return text


def parse(rtype: str, query: QueryDict, *, lenient: bool) -> Search:
    allowed = params_for(rtype)
    search = Search(rtype=rtype, count=settings.HEALTHSPACE_FHIR_PAGE_SIZE)
    # newest first: by the item's clinical date, else by when it last changed
    search.sort = ("date", True) if rtype in ITEM_PARAMS else ("updated", True)
    patient_names = {"patient"} if rtype in PATIENT_SCOPED else set()
    if rtype in SUBJECT_TYPES:
        patient_names.add("subject")
    unknown: list[str] = []
    for raw_name, values in query.lists():
        name, _, modifier = raw_name.partition(":")
        for raw in values:
            if raw == "" and name not in ("_pretty",):
                raise _bad(f"{raw_name} has no value", raw_name)
            if name in patient_names:
                if modifier not in ("", "Patient"):
                    raise _bad(f"{raw_name}: modifier not supported", raw_name)
                values_ = _split_values(raw)
                if len(values_) != 1:
                    raise _bad(f"{name} takes one patient", name)
                search.patients.append(reference_id(values_[0]))
            elif name == "_id" and not modifier:
                ids = _split_values(raw)
                search.ids = ids if search.ids is None else [i for i in search.ids if i in ids]
            elif name == "_lastUpdated" and not modifier:
                search.last_updated += _date_values(name, raw)
            elif name in allowed and not modifier:
                param = allowed[name]
                if param.kind == TOKEN:
                    search.filters.append(
                        Filter(name, param, [token_value(v) for v in _split_values(raw)])
                    )
                else:
                    search.filters.append(Filter(name, param, _date_values(name, raw)))
            elif name in CONTROLS and not modifier:
                _control(search, name, raw, lenient)
                continue
            else:
                unknown.append(raw_name)
                continue
            search.used.append((raw_name, raw))
    if unknown and not lenient:
        raise ApiError(
            400,
            "not-supported",
            "Search parameters not supported: "
            + ", ".join(sorted(set(unknown)))
            + " (send Prefer: handling=lenient to have them ignored).",
            expression=sorted(set(unknown)),
        )
    return search


def _control(search: Search, name: str, raw: str, lenient: bool) -> None:
    if name == "_count":
        if not raw.isdigit():
            raise _bad("_count must be a whole number", name)
        search.count = min(int(raw), settings.HEALTHSPACE_FHIR_MAX_PAGE_SIZE)
        search.used.append((name, str(search.count)))
    elif name == "_offset":
        if not raw.isdigit() or int(raw) > 10_000_000:
            raise _bad("_offset must be a whole number", name)
        search.offset = int(raw)
    elif name == "_sort":
        keys = _split_values(raw)
        key = keys[0] if len(keys) == 1 else ""
        descending = key.startswith("-")
        column = SORTS.get(key.lstrip("-"))
        if column is None or (column == "date" and search.rtype not in ITEM_PARAMS):
            if lenient:
                return
            raise ApiError(
                400,
                "not-supported",
                "_sort supports one of: _lastUpdated, -_lastUpdated"
                + (", date, -date" if search.rtype in ITEM_PARAMS else ""),
                expression=[name],
            )
        search.sort = (column, descending)
        search.used.append((name, key))
    elif name == "_include":
        target = raw.split(":")
        ok = (
            search.rtype in PATIENT_SCOPED
            and len(target) == 2
            and target[0] == search.rtype
            and target[1] in ("patient", "subject")
            and (target[1] == "patient" or search.rtype in SUBJECT_TYPES)
        )
        if not ok:
            if lenient:
                return
            raise ApiError(
                400,
                "not-supported",
                f"_include supports only the patient ({search.rtype}:patient)",
                expression=[name],
            )
        search.include_patient = True
        search.used.append((name, raw))
    elif name == "_summary":
        if raw == "count":
            search.summary_count = True
            search.used.append((name, raw))
        elif raw != "false" and not lenient:
            raise ApiError(
                400, "not-supported", "_summary supports count and false", expression=[name]
            )
    elif name == "_total":
        if raw not in ("none", "estimate", "accurate") and not lenient:
            raise _bad("_total is none, estimate or accurate", name)
    elif name == "_format":
        pass  # checked by fhir_view (JSON only)


def matches(search: Search, resource: dict[str, Any]) -> bool:
    return all(f.matches(resource) for f in search.filters)
