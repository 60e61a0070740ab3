"""Strict validation of incoming FHIR R4 JSON (GP feeds, file imports).

Why this module exists: ``fhir.resources`` (pydantic models, R4B) is a *parser*, not a
conformance validator. Measured against the 35 deliberately invalid inputs of the HL7
validator test suite it rejects only 20, and it is lenient in ways that matter for a
patient record: it accepts ``null`` and ``[]`` everywhere, ``"true"`` for a boolean and
``"3"`` for an integer (pydantic lax mode), Python field names instead of FHIR property
names, ``fhir_comments``, resource ids up to 255 characters, any code for a required
binding, and it never looks inside narrative XHTML or markdown. Whatever we store is later
shown to patients and clinicians, so active content and malformed data are rejected at the
door, with a message that says where and what.

Public interface (used by the importer)::

    data = parse_json_bytes(raw, where="upload.json")         # strict JSON
    validate_bundle(data, where="upload.json")                # Bundle rules + Bundle shell
    for i, entry in enumerate(data.get("entry", [])):         # each entry resource once
        validate_resource(entry["resource"], where=f"upload.json entry[{i}]")

``validate_resource`` on a whole Bundle validates the Bundle *and everything inside it*
(a function of that name never silently skips nested content); the loop above validates
every byte exactly once, because ``validate_bundle`` checks the Bundle's own elements but
treats ``entry[].resource`` as opaque.

Design: each resource gets ONE recursive walk over the parsed JSON, guided by the
``fhir.resources`` model classes (field aliases, FHIR primitive type of each field read
from the ``Annotated`` metadata, cardinality, choice groups, required-binding codes from
``enum_values``). The per-class table is computed once and cached. The walk does every
check of our own; ``model_validate`` then supplies the lexical datatype checks (dates,
decimals, code/uri patterns, ...), where the walk cannot show they pass (fhir_lexical).
Problems from both are merged, de-duplicated by element path, and raised together so a
sender can fix everything in one round trip.

Not checked here (needs data we do not have locally): terminology beyond the required
bindings the models enumerate (needs a terminology server), profiles and extension
definitions (need the StructureDefinitions), and FHIRPath invariants other than the handful
implemented by hand below.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import inspect
import itertools
import json
import json.decoder
import json.scanner
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree as DefusedET
from defusedxml.common import DefusedXmlException
from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import ValidationError

from healthspace.records import fhir_lexical

__all__ = ["FhirInputError", "parse_json_bytes", "validate_bundle", "validate_resource"]

logger = logging.getLogger(__name__)


class FhirInputError(Exception):
    """Message is a clear, human-readable statement naming the place (where) and the problem.

    ``problems`` holds the individual findings (``"<element path>: <message>"``) so callers
    such as an OperationOutcome builder need not split the message.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = problems or (message,)


# Bound the size of one error message: a hostile 100k-entry bundle must not produce a
# megabyte of log line. The count of the rest is still reported.
_MAX_PROBLEMS_LISTED = 50
# FHIR resources nest a few dozen levels at most (Questionnaire items being the deepest);
# anything far beyond is an attack on the recursion, not a health record.
_MAX_DEPTH = 200
# FHIR: "strings SHALL NOT exceed 1,048,576 characters".
_MAX_STRING = 1024 * 1024


def _raise(where: str, label: str, problems: list[str]) -> typing.NoReturn:
    # The importer already puts "Type/id" into ``where``; do not say it twice.
    head = where if label and label in where else " ".join(p for p in (where, label) if p)
    shown = problems[:_MAX_PROBLEMS_LISTED]
    text = "; ".join(shown)
    if len(problems) > len(shown):
        text += f"; ... and {len(problems) - len(shown)} more problems"
    raise FhirInputError(f"{head}: {text}" if head else text, tuple(problems))


# ---------------------------------------------------------------------------------------
# Strict JSON
# ---------------------------------------------------------------------------------------


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str, start: int | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.start = start


class _NonFiniteError(ValueError):
    pass


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON (RFC 8259) leaves duplicate names undefined and Python silently keeps the last
    # one: two parsers could then see two different records. FHIR forbids them.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> typing.NoReturn:
    # Python's json accepts NaN/Infinity/-Infinity by default; they are not JSON.
    raise _NonFiniteError(name)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e999 overflows to inf
        raise _NonFiniteError(text)
    return value


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


# Tokens outside strings: a string literal is consumed whole so its content never matches.
_TOKEN_RE = re.compile(
    r'"(?:[^"\\]|\\.)*"|(?P<tok>-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
)


def _find_token(text: str, predicate: Callable[[str], bool]) -> int | None:
    for match in _TOKEN_RE.finditer(text):
        tok = match.group("tok")
        if tok is not None and predicate(tok):
            return match.start()
    return None


def _locate_duplicate(text: str) -> tuple[str, int]:
    """Re-parse with the pure-Python scanner, which tells us where each object starts.

    Only runs after the fast C parser found a duplicate, so its slowness does not matter.
    """
    decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_parse_float)

    def parse_object(
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: Callable[..., Any],
        object_hook: Any,
        object_pairs_hook: Any,
        memo: Any = None,
    ) -> tuple[Any, int]:
        start = s_and_end[1] - 1

        def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            try:
                return _pairs_hook(pairs)
            except _DuplicateKeyError as exc:
                raise _DuplicateKeyError(exc.key, start) from None

        return json.decoder.JSONObject(s_and_end, strict, scan_once, object_hook, hook, memo)

    decoder.parse_object = parse_object  # type: ignore[assignment]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        decoder.decode(text)
    except _DuplicateKeyError as exc:
        return exc.key, exc.start or 0
    return "?", 0  # not reached: the fast parser found one


def _describe_decode_error(text: str, exc: json.JSONDecodeError) -> str:
    """Turn Python's terse messages into what a sender needs to fix."""
    pos = exc.pos
    rest = text[pos:]
    nxt = rest[:1]
    before = text[:pos].rstrip()[-1:]
    msg = exc.msg
    if pos >= len(text.rstrip()) and not msg.startswith("Extra data"):
        return (
            "the input ends unexpectedly (truncated JSON: an object, array or string is not closed)"
        )
    if rest.startswith(("//", "/*")):
        return "comments are not allowed in JSON"
    if msg.startswith("Expecting property name"):
        if nxt == "}" and before == ",":
            return "trailing comma before '}'"
        if nxt == "'":
            return "property names must use double quotes, not single quotes"
        return "property name is not in double quotes"
    if msg.startswith("Expecting value"):
        if nxt == "]" and before == ",":
            return "trailing comma before ']'"
        if nxt in ("]", "}"):
            return f"a value is missing before '{nxt}'"
        if nxt == "'":
            return "strings must use double quotes, not single quotes"
        if nxt.isalpha():
            word = re.match(r"[A-Za-z_]\w*", rest)
            found = word.group(0) if word else nxt
            return (
                f"unquoted text '{found[:30]}' (JSON strings need double quotes; the only bare"
                " words are true, false and null)"
            )
        return "a JSON value was expected here"
    if msg.startswith("Expecting ',' delimiter"):
        if nxt in ("]", "}"):
            return (
                f"unexpected '{nxt}': brackets do not match (an object or array is closed wrongly)"
            )
        return "a comma is missing between two values"
    if msg.startswith("Expecting ':' delimiter"):
        return "a ':' is missing after a property name"
    if msg.startswith("Extra data"):
        return "unexpected data after the end of the JSON document"
    if msg.startswith("Unterminated string"):
        return "a string is not terminated (truncated input or missing '\"')"
    if msg.startswith("Invalid control character"):
        return "raw control character inside a string (must be escaped, e.g. \\n)"
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        return "invalid backslash escape in a string"
    return msg


_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _first_lone_surrogate(text: str) -> int | None:
    """Position of an escaped UTF-16 surrogate that is not part of a valid pair."""
    matches = list(_SURROGATE_ESCAPE_RE.finditer(text))
    paired: set[int] = set()
    for match in matches:
        start = match.start()
        # An escape is real only if preceded by an even number of backslashes.
        slashes = len(text[:start]) - len(text[:start].rstrip("\\"))
        if slashes % 2 or start in paired:
            continue
        code = int(match.group(0)[2:], 16)
        follow = text[match.end() : match.end() + 6]
        if (
            0xD800 <= code <= 0xDBFF
            and _SURROGATE_ESCAPE_RE.fullmatch(follow)
            and 0xDC00 <= int(follow[2:], 16) <= 0xDFFF
        ):
            paired.add(match.end())
            continue
        return start
    return None


def parse_json_bytes(data: bytes, *, where: str) -> Any:
    """Strict JSON: reject invalid UTF-8, comments, trailing commas, unquoted keys, NaN/Infinity,
    duplicate keys in an object, and truncated input. Raise FhirInputError naming line/column.

    A leading UTF-8 byte order mark is tolerated (RFC 8259 allows a parser to ignore it and
    the HL7 validator accepts it); everything else is exactly RFC 8259 JSON.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FhirInputError(f"{prefix}expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")  # strict: invalid sequences and encoded surrogates fail
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FhirInputError(
            f"{prefix}invalid UTF-8 at line {line} column {col} (byte offset {exc.start}):"
            " FHIR JSON must be UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = " " + text[1:]  # keep every column number unchanged
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_hook,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
        )
    except _DuplicateKeyError:
        key, start = _locate_duplicate(text)
        line, col = _line_col(text, start)
        raise FhirInputError(
            f"{prefix}invalid JSON: duplicate property '{key[:60]}' in the object that starts"
            f" at line {line} column {col}"
        ) from None
    except _NonFiniteError as exc:
        bad = str(exc)
        pos = _find_token(text, lambda tok: tok == bad)
        line, col = _line_col(text, pos or 0)
        what = (
            f"'{bad}' is not a JSON number"
            if bad in ("NaN", "Infinity", "-Infinity")
            else f"number {bad[:40]} is out of range"
        )
        raise FhirInputError(f"{prefix}invalid JSON at line {line} column {col}: {what}") from None
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Illegal trailing comma"):
            # Python 3.13+ reports trailing commas itself, at the comma; 3.12 reports the
            # closing bracket. Point at the bracket on every version, with one message.
            after = exc.pos + 1 + (len(text[exc.pos + 1 :]) - len(text[exc.pos + 1 :].lstrip()))
            closer = "Expecting property name" if "object" in exc.msg else "Expecting value"
            exc = json.JSONDecodeError(closer, text, after)
        raise FhirInputError(
            f"{prefix}invalid JSON at line {exc.lineno} column {exc.colno}: "
            f"{_describe_decode_error(text, exc)}"
        ) from None
    except RecursionError:
        raise FhirInputError(f"{prefix}invalid JSON: nested too deeply") from None
    except ValueError:  # int() digit limit (CVE-2020-10735 guard)
        pos = _find_token(text, lambda tok: len(tok) > 4000)
        line, col = _line_col(text, pos or 0)
        raise FhirInputError(
            f"{prefix}invalid JSON at line {line} column {col}: number has too many digits"
        ) from None
    # Escaped lone surrogates (e.g. "\ud800") parse in Python but are not Unicode text; they
    # would break any later UTF-8 encode (database, logs). Cheap pre-check on the raw text.
    if "\\u" in text and _SURROGATE_ESCAPE_RE.search(text):
        pos = _first_lone_surrogate(text)
        if pos is not None:
            line, col = _line_col(text, pos)
            raise FhirInputError(
                f"{prefix}invalid JSON at line {line} column {col}: \\u escape of an unpaired"
                " UTF-16 surrogate is not valid Unicode text"
            )
    return value


# ---------------------------------------------------------------------------------------
# Model metadata: one cached table per fhir.resources class
# ---------------------------------------------------------------------------------------

_PRIM = 1  # FHIR primitive value
_COMPLEX = 2  # datatype / backbone element (JSON object)
_EXT = 3  # the "_x" companion of a primitive (JSON object, null allowed inside arrays)
_RESOURCE = 4  # a nested resource (contained, Bundle.entry.resource, Parameters...)

_PRIM_EXT = "FHIRPrimitiveExtension"
_INTEGER = frozenset({"integer", "unsignedInt", "positiveInt", "integer64"})
# Types whose values may be a local "#id" pointing at a contained resource (dom-3).
_REFERENCE_LIKE = frozenset({"uri", "url", "canonical"})


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # the JSON property name
    kind: int
    is_list: bool
    prim: str | None = None
    model: type[FHIRAbstractModel] | None = None
    enum: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class _Info:
    type_name: str
    is_resource: bool
    fields: dict[str, _Field]
    required: tuple[str, ...]  # JSON names of elements with min cardinality 1
    choices: tuple[tuple[str, bool, tuple[str, ...]], ...]  # (prefix, required, names)
    primitive_lists: tuple[str, ...]  # names of repeating primitives (null alignment)
    coded: tuple[str, ...]  # codes with a complete enumerated (required) value set


def _classify(annotation: Any) -> tuple[bool, Any]:
    """Strip Optional/List from an annotation: (is_list, inner annotation)."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return is_list, None  # only fhir_comments (str | list[str]) is a real union
            annotation = args[0]
        elif origin is list:
            is_list = True
            annotation = typing.get_args(annotation)[0]
        else:
            return is_list, annotation


def _primitive_name(annotation: Any) -> str | None:
    if annotation is bool:
        return "boolean"
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        for item in meta:
            name = getattr(item, "__visit_name__", None)
            if name:
                return str(name)
        if base.__name__ == "UUID":
            return "uuid"
    return None


# The library derives ``enum_values`` from each element's short description. Where the
# description ends in "+" (more codes in the value set) or "etc." the list is incomplete,
# and CapabilityStatement.format ("xml | json | ttl | mime type") is prose, not codes.
# Those are skipped: a false "not in value set" would reject valid data.
_INCOMPLETE_ENUMS = frozenset({("CapabilityStatement", "format")})
# Required bindings the library does not enumerate (its parser skips non-word codes).
# Quantity.comparator matters clinically: "<" and "<<" must not both mean "less than".
_COMPARATORS = ["<", "<=", ">=", ">"]
_EXTRA_ENUMS: dict[tuple[str, str], list[str]] = {
    (quantity, "comparator"): _COMPARATORS
    for quantity in ("Quantity", "Age", "Count", "Distance", "Duration")
}


def _enum_is_complete(model_name: str, name: str, enum: list[str]) -> bool:
    return "+" not in enum and "etc." not in enum and (model_name, name) not in _INCOMPLETE_ENUMS


@functools.cache
def _info(model: type[FHIRAbstractModel]) -> _Info:
    fields: dict[str, _Field] = {}
    required: list[str] = []
    choice_map: dict[str, tuple[bool, list[str]]] = {}
    primitive_lists: list[str] = []
    for field_name, finfo in model.model_fields.items():
        if field_name == "fhir_comments":
            continue  # a DSTU2 leftover the library accepts; not part of R4 JSON
        name = finfo.alias or field_name
        is_list, inner = _classify(finfo.annotation)
        extra = finfo.json_schema_extra if isinstance(finfo.json_schema_extra, dict) else {}
        prim = _primitive_name(inner)
        if prim is not None:
            enum = extra.get("enum_values") or _EXTRA_ENUMS.get((model.__name__, name))
            if not enum or not _enum_is_complete(model.__name__, name, enum):
                enum = None
            fields[name] = _Field(
                name, _PRIM, is_list, prim=prim, enum=frozenset(enum) if enum else None
            )
            if is_list:
                primitive_lists.append(name)
        elif inspect.isclass(inner) and issubclass(inner, FhirBase):
            target = inner.get_model_klass()
            if issubclass(inner, FhirElementOrResourceBase):
                fields[name] = _Field(name, _RESOURCE, is_list, model=target)
            elif target.__name__ == _PRIM_EXT:
                fields[name] = _Field(name, _EXT, is_list, model=target)
            else:
                fields[name] = _Field(name, _COMPLEX, is_list, model=target)
        else:  # pragma: no cover - guards against a future library shape we do not know
            raise TypeError(f"cannot classify {model.__name__}.{field_name}: {finfo.annotation}")
        if finfo.is_required():
            required.append(name)
        prefix = extra.get("one_of_many")
        if prefix:
            entry = choice_map.setdefault(prefix, (bool(extra.get("one_of_many_required")), []))
            entry[1].append(name)
    # Required primitives are optional at pydantic level (a "_x" extension may stand in for
    # the value); the library lists them in get_required_fields().
    alias_of = {fname: (f.alias or fname) for fname, f in model.model_fields.items()}
    for field_name, _ext in model.model_construct().get_required_fields():
        name = alias_of.get(field_name, field_name)
        if name not in required:
            required.append(name)
    return _Info(
        type_name=model.get_resource_type(),
        is_resource=model.has_resource_base(),
        fields=fields,
        required=tuple(required),
        choices=tuple((p, req, tuple(names)) for p, (req, names) in choice_map.items()),
        primitive_lists=tuple(primitive_lists),
        coded=tuple(name for name, f in fields.items() if f.enum is not None),
    )


# Bounded: the key is sender-controlled text.
@functools.lru_cache(maxsize=1024)
def _resource_model(resource_type: str) -> type[FHIRAbstractModel] | None:
    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, ImportError, AttributeError):
        return None
    return model if model.has_resource_base() else None


# ---------------------------------------------------------------------------------------
# Narrative XHTML (txt-1) and markdown
# ---------------------------------------------------------------------------------------

_XHTML_NS = "http://www.w3.org/1999/xhtml"
_XML_NS = "http://www.w3.org/XML/1998/namespace"

# txt-1: "only the basic html formatting elements and attributes described in chapters 7-11
# (except section 4 of chapter 9) and 15 of the HTML 4.0 standard, <a> elements (either name
# or href), images and internally contained style attributes". Same list as the HL7 Java
# validator (InstanceValidator.checkInnerNames).
_ALLOWED_ELEMENTS = frozenset(
    {"p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i"}
    | {"strong", "small", "big", "tt", "dfn", "q", "var", "abbr", "acronym", "cite"}
    | {"blockquote", "hr", "address", "bdo", "kbd", "sub", "sup", "ul", "ol", "li", "dl"}
    | {"dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead", "tr", "tfoot"}
    | {"tbody", "th", "td", "code", "samp", "img", "map", "area"}
)
# Named separately to say *why* in the message: these can run code, load or submit
# elsewhere, or restyle/replace the host page.
_ACTIVE_ELEMENTS = frozenset(
    {"script", "noscript", "style", "link", "meta", "base", "head", "body", "html", "title"}
    | {"iframe", "frame", "frameset", "object", "embed", "applet", "param", "form", "input"}
    | {"button", "select", "option", "textarea", "label", "fieldset", "svg", "math"}
    | {"template", "slot", "portal", "audio", "video", "source", "track", "canvas"}
)
_GLOBAL_ATTRS = frozenset(
    {"id", "class", "style", "title", "lang", "xml:lang", "xml:space", "dir", "accesskey"}
    | {"tabindex"}
    # table attributes the Java validator accepts on any element
    | {"span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers"}
    | {"scope", "rowspan", "colspan"}
)
_ELEMENT_ATTRS: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "name", "rel", "rev", "type", "charset", "hreflang", "shape"})
    | {"coords"},
    "img": frozenset({"src", "alt", "longdesc", "height", "width", "usemap", "ismap"})
    | {"border", "hspace", "vspace"},
    "area": frozenset({"shape", "coords", "href", "nohref", "alt"}),
    "map": frozenset({"name"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "table": frozenset({"summary", "width", "border", "frame", "rules", "cellspacing"})
    | {"cellpadding", "bgcolor"},
    "td": frozenset({"nowrap", "height", "bgcolor"}),
    "th": frozenset({"nowrap", "height", "bgcolor"}),
    "tr": frozenset({"bgcolor"}),
    "pre": frozenset({"space"}),
    "ol": frozenset({"type", "start", "compact"}),
    "ul": frozenset({"type", "compact"}),
    "li": frozenset({"type", "value"}),
    "br": frozenset({"clear"}),
    "hr": frozenset({"noshade", "size"}),
    "dl": frozenset({"compact"}),
}
_URL_ATTRS = frozenset({"href", "src", "cite", "longdesc", "usemap"})
_DECLARATION_RE = re.compile(r"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_NAMED_ENTITY_RE = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
# Browsers ignore whitespace/control characters inside a URL scheme ("java\tscript:").
_URL_NOISE_RE = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_DATA_IMAGE_RE = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp|bmp)[;,]")
# CSS that executes code or binds behaviour (old IE / Firefox) or pulls in other sheets.
_UNSAFE_CSS_RE = re.compile(
    r"expression\s*\(|javascript:|vbscript:|-moz-binding|behaviou?r\s*:|@import"
)
_CSS_URL_RE = re.compile(r"url\s*\(\s*['\"]?\s*([^'\")\s]*)")


def _url_problem(value: str, *, image: bool) -> str | None:
    cleaned = _URL_NOISE_RE.sub("", value).lower()
    match = _SCHEME_RE.match(cleaned)
    if match is None:
        return None  # relative URL or #fragment
    scheme = match.group(1)
    if scheme in ("http", "https", "mailto", "tel", "urn"):
        return None
    if scheme == "data":
        if image and _DATA_IMAGE_RE.match(cleaned):
            return None
        return "a data: URL (only data:image/png|jpeg|gif|webp|bmp on <img src> is allowed)"
    if scheme in ("javascript", "vbscript", "livescript", "jscript"):
        return f"a {scheme}: URL (script)"
    return f"URL scheme '{scheme}:' (only http, https, mailto, tel, urn and relative URLs)"


def _attr_name(qname: str) -> str:
    if qname.startswith("{"):
        ns, _, local = qname[1:].partition("}")
        return f"xml:{local}" if ns == _XML_NS else f"{{{ns}}}{local}"
    return qname


def _check_xhtml(div: str) -> list[str]:
    """Problems with one Narrative.div value (empty list if none)."""
    if _DECLARATION_RE.search(div):
        # Entity expansion ("billion laughs") and external entities (XXE) need a DTD.
        return ["DOCTYPE/ENTITY declarations are not allowed in narrative XHTML"]
    stripped = div.lstrip()
    if not stripped.startswith("<div"):
        return ["narrative must be a single <div> element (no XML declaration or text before it)"]
    if "<?" in div:
        return ["processing instructions are not allowed in narrative XHTML"]
    if "<!--" in div and re.search(r"<!--\s*\[if|<!\[endif", div, re.IGNORECASE):
        return ["conditional comments are not allowed in narrative XHTML (legacy script vector)"]
    try:
        root: Element = DefusedET.fromstring(
            div, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        return [
            f"DOCTYPE/entity declarations are not allowed in narrative XHTML ({type(exc).__name__})"
        ]
    except ParseError as exc:
        bad = sorted({name for name in _NAMED_ENTITY_RE.findall(div) if name not in _XML_ENTITIES})
        if bad:
            names = ", ".join(f"&{name};" for name in bad[:5])
            return [
                f"invalid entity {names} in narrative XHTML (only &amp; &lt; &gt; &quot; &apos;"
                " and numeric character references are allowed)"
            ]
        return [f"narrative is not well-formed XHTML ({exc})"]
    problems: list[str] = []
    if root.tag != f"{{{_XHTML_NS}}}div":
        problems.append(f'root element must be <div xmlns="{_XHTML_NS}">')
    has_content = False
    for elem in root.iter():
        tag = elem.tag
        if not isinstance(tag, str):  # pragma: no cover - comments/PIs are not in the tree
            continue
        if tag.startswith(f"{{{_XHTML_NS}}}"):
            name = tag[len(_XHTML_NS) + 2 :]
        else:
            if elem is not root:  # the root was reported above
                ns, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
                where_ns = f"namespace {ns}" if ns else "no namespace"
                problems.append(f"element <{local}> in {where_ns} is not allowed (XHTML only)")
            continue
        if name in _ACTIVE_ELEMENTS:
            problems.append(f"element <{name}> is not allowed in narrative (active content)")
            continue
        if name not in _ALLOWED_ELEMENTS:
            problems.append(f"element <{name}> is not allowed in narrative (txt-1)")
            continue
        if name == "img":
            has_content = True
        allowed = _ELEMENT_ATTRS.get(name)
        for qname, value in elem.attrib.items():
            attr = _attr_name(qname)
            lower = attr.lower()
            if lower.startswith("on"):
                problems.append(f"event handler attribute '{attr}' on <{name}> is not allowed")
                continue
            if lower not in _GLOBAL_ATTRS and (allowed is None or lower not in allowed):
                problems.append(f"attribute '{attr}' on <{name}> is not allowed in narrative")
                continue
            if lower in _URL_ATTRS:
                why = _url_problem(value, image=(name == "img" and lower == "src"))
                if why:
                    problems.append(f"attribute '{attr}' on <{name}> contains {why}")
            elif lower == "style":
                css = _URL_NOISE_RE.sub(" ", value).lower()
                if _UNSAFE_CSS_RE.search(css):
                    problems.append(f"style attribute on <{name}> contains active CSS")
                for url in _CSS_URL_RE.findall(css):
                    if url and not url.startswith("#") and not _DATA_IMAGE_RE.match(url):
                        problems.append(
                            f"style attribute on <{name}> loads an external resource (url())"
                        )
        if not has_content and (
            (elem.text and elem.text.strip()) or (elem.tail and elem.tail.strip())
        ):
            has_content = True
    if not problems and not has_content:
        problems.append("narrative has no content (txt-2: SHALL have some non-whitespace content)")
    return problems


# What the HL7 validator flags as "embedded HTML tag" in markdown: '<' then a letter, '/'
# or '!'. CommonMark autolinks (<https://...>, <user@host>) are markdown, not HTML.
_MD_TAG_RE = re.compile(r"<(?:/?[A-Za-z]|!|\?)")
_MD_AUTOLINK_RE = re.compile(r"<(?:[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>]+)>")


def _markdown_problem(text: str) -> str | None:
    if "<" not in text:
        return None
    for match in _MD_TAG_RE.finditer(text):
        if _MD_AUTOLINK_RE.match(text, match.start()):
            continue
        snippet = text[match.start() : match.start() + 12].split(">")[0]
        return (
            f"markdown contains embedded HTML (starting at '{snippet}'); markdown must not"
            " carry HTML tags"
        )
    return None


# ---------------------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------------------

_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ID_CHARS_RE = re.compile(r"[A-Za-z0-9\-.]+")
# FHIR says strings SHOULD NOT contain control characters other than TAB/CR/LF; we make it
# a SHALL: NUL and friends break PostgreSQL text, terminals and log parsers.
_CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_B64_WS_RE = re.compile(r"[ \t\r\n]+")


def _id_problem(value: str) -> str | None:
    if _ID_RE.fullmatch(value):
        return None
    if _ID_CHARS_RE.fullmatch(value):
        return f"id is too long ({len(value)} characters, at most 64 allowed)"
    shown = value if len(value) <= 70 else value[:67] + "..."
    return f"invalid id '{shown}': only A-Z, a-z, 0-9, '-' and '.' are allowed (1-64 characters)"


def _b64decode(value: str) -> bytes | None:
    compact = _B64_WS_RE.sub("", value)
    if len(compact) % 4:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_type(value: Any) -> str:
    """JSON type name with its article, for messages ("must be ..., not a string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@dataclass(slots=True)
class _Scope:
    """One resource with its contained resources: where '#id' references resolve."""

    contained_ids: dict[str, str] = field(default_factory=dict)  # id -> path
    local_refs: list[tuple[str, str]] = field(default_factory=list)  # (path, '#id' reference)
    local_uris: set[str] = field(default_factory=set)  # any '#x' in reference/uri/canonical


class _Walker:
    """Single recursive pass over one resource's JSON, collecting problems."""

    __slots__ = ("depth", "problems", "skip_entry_resources", "uncertain")

    def __init__(self, *, skip_entry_resources: bool = False) -> None:
        self.problems: list[tuple[str, str]] = []  # (path, message)
        self.depth = 0
        # Set when the walk cannot show that fhir.resources would accept what it met
        # (fhir_lexical): then _validate asks the library after all.
        self.uncertain = False
        # validate_bundle treats entry[].resource as opaque (validated per entry instead).
        self.skip_entry_resources = skip_entry_resources

    def add(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    # -- resources --------------------------------------------------------------------

    def resource(self, obj: dict[str, Any], path: str, scope: _Scope | None) -> None:
        """Walk a resource. ``scope`` is the container's for contained resources."""
        rtype = obj.get("resourceType")
        rpath = f"{path}.resourceType" if path else "resourceType"
        if not isinstance(rtype, str):
            self.add(
                rpath,
                "resourceType is missing" if rtype is None else "resourceType must be a string",
            )
            return
        model = _resource_model(rtype)
        if model is None:
            self.add(rpath, f"unknown resourceType '{rtype[:60]}'")
            return
        contained = scope is not None
        own_scope = scope if contained else _Scope()
        self.element(obj, _info(model), path, own_scope)
        if contained:
            self._contained_rules(obj, path)
        else:
            self._scope_rules(own_scope, obj, path)

    def _contained_rules(self, obj: dict[str, Any], path: str) -> None:
        # R4 DomainResource invariants on contained resources.
        if "contained" in obj:
            self.add(path, "a contained resource SHALL NOT contain nested resources (dom-2)")
        meta = obj.get("meta")
        if isinstance(meta, dict):
            if "versionId" in meta or "lastUpdated" in meta:
                self.add(
                    path,
                    "a contained resource SHALL NOT have meta.versionId or meta.lastUpdated (dom-4)",
                )
            if "security" in meta:
                self.add(path, "a contained resource SHALL NOT have a security label (dom-5)")

    def _scope_rules(self, scope: _Scope, obj: dict[str, Any], path: str) -> None:
        for ref_path, ref in scope.local_refs:
            if ref != "#" and ref[1:] not in scope.contained_ids:
                self.add(
                    ref_path,
                    f"local reference '{ref[:70]}' does not match the id of any contained"
                    " resource (ref-1)",
                )
        if scope.contained_ids:
            refers_to_container = "#" in scope.local_uris
            for cid, cpath in scope.contained_ids.items():
                if f"#{cid}" not in scope.local_uris and not refers_to_container:
                    self.add(
                        cpath,
                        f"contained resource '{cid}' is not referenced from elsewhere in the"
                        " resource (dom-3)",
                    )

    # -- elements ---------------------------------------------------------------------

    def element(self, obj: dict[str, Any], info: _Info, path: str, scope: _Scope) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.add(path, "nested too deeply")
            self.depth -= 1
            return
        fields = info.fields
        is_resource = info.is_resource
        sep = "." if path else ""
        for key, value in obj.items():
            fdef = fields.get(key)
            if fdef is None:
                if key == "resourceType" and is_resource:
                    continue
                hint = " (JSON comments are not part of FHIR R4)" if key == "fhir_comments" else ""
                self.add(f"{path}{sep}{key}", f"unknown property '{key[:60]}'{hint}")
                continue
            if value is None:
                self.add(f"{path}{sep}{key}", "null is not allowed (omit the property instead)")
                continue
            if fdef.is_list:
                if value.__class__ is not list:
                    self.add(f"{path}{sep}{key}", f"must be a JSON array, not {_json_type(value)}")
                    continue
                if not value:
                    self.add(f"{path}{sep}{key}", "empty array is not allowed (omit the property)")
                    continue
                kind = fdef.kind
                nullable = kind == _EXT or (kind == _PRIM and f"_{key}" in obj)
                for index, item in enumerate(value):
                    if item is None:
                        if not nullable:
                            self.add(
                                f"{path}{sep}{key}[{index}]", "null is not allowed in this array"
                            )
                        continue
                    if kind == _PRIM:
                        self.primitive(fdef, item, path, f"{key}[{index}]", scope)
                    else:
                        self.value(fdef, item, path, f"{key}[{index}]", scope)
            else:
                if value.__class__ is list:
                    self.add(f"{path}{sep}{key}", "must be a single value, not a JSON array")
                    continue
                if fdef.kind == _PRIM:  # inlined dispatch: most values are primitives
                    self.primitive(fdef, value, path, key, scope)
                else:
                    self.value(fdef, value, path, key, scope)

        for name in info.required:
            if name not in obj:
                if f"_{name}" not in obj:
                    self.add(f"{path}{sep}{name}", "field required")
                else:  # the library wants extensions in '_x' then: let it judge
                    self.uncertain = True
        for prefix, required, names in info.choices:
            present = [n for n in names if n in obj or f"_{n}" in obj]
            if len(present) > 1:
                self.add(f"{path}{sep}{prefix}[x]", f"only one of {', '.join(present)} is allowed")
            elif required and not present:
                self.add(
                    f"{path}{sep}{prefix}[x]",
                    f"field required (one of {', '.join(names[:6])}{', ...' if len(names) > 6 else ''})",
                )
            elif required and present[0] not in obj:
                self.uncertain = True  # only '_valueX': the library counts values only
        for name in info.primitive_lists:
            ext_key = f"_{name}"
            if ext_key in obj and name in obj:
                self._aligned(obj[name], obj[ext_key], f"{path}{sep}{name}")
        if info.coded:
            self._codes_without_value(obj, info, path)
        if len(obj) == 1 and "id" in obj and not is_resource and info.type_name != _PRIM_EXT:
            # ('_x': {"id": ...} is legal: the value sits beside it in 'x')
            self.add(path, "element has only an id: it SHALL have a value or children (ele-1)")
        check = _ELEMENT_RULES.get(info.type_name)
        if check is not None:
            check(self, obj, path)
        self.depth -= 1

    def _codes_without_value(self, obj: dict[str, Any], info: _Info, path: str) -> None:
        """A code bound to a (complete, i.e. required) value set, sent as '_x' only.

        The HL7 validator rejects this ("No code provided, and a code is required from the
        value set"): an extension such as data-absent-reason does not replace the code.
        """
        sep = "." if path else ""
        for name in info.coded:
            ext = obj.get(f"_{name}")
            if ext is None:
                continue
            value = obj.get(name)
            if isinstance(ext, list):
                values = value if isinstance(value, list) else []
                for index in range(len(ext)):
                    if ext[index] is not None and (index >= len(values) or values[index] is None):
                        self.add(
                            f"{path}{sep}{name}[{index}]",
                            "no code provided, and a code is required from the value set",
                        )
            elif value is None:
                self.add(
                    f"{path}{sep}{name}",
                    "no code provided, and a code is required from the value set",
                )

    def _aligned(self, values: Any, exts: Any, path: str) -> None:
        if values.__class__ is not list or exts.__class__ is not list:
            return  # shape errors already reported
        if len(values) != len(exts):
            self.add(
                path,
                f"'{path.rsplit('.', 1)[-1]}' and its '_' extension array must have the same"
                f" length ({len(values)} vs {len(exts)})",
            )
            return
        for index, (val, ext) in enumerate(zip(values, exts, strict=True)):
            if val is None and ext is None:
                self.add(f"{path}[{index}]", "null in both the value and the '_' extension array")

    def value(self, fdef: _Field, value: Any, path: str, key: str, scope: _Scope) -> None:
        """A JSON object value: datatype, backbone element, '_x' extension or resource."""
        kind = fdef.kind
        child = f"{path}.{key}" if path else key
        if value.__class__ is not dict:
            self.add(child, f"must be a JSON object, not {_json_type(value)}")
            return
        if not value:
            if fdef.model is not None and fdef.model.__name__ == "Reference":
                # Tolerated: NHS England PDS returns RelatedPerson.patient as {} (the patient
                # is the one in the request URL). An empty Reference carries no data that
                # could be misread; every other empty object is rejected.
                return
            self.add(child, "empty object is not allowed (omit the property)")
            return
        if kind == _RESOURCE:
            if fdef.name == "contained":
                cid = value.get("id")
                if not isinstance(cid, str):
                    self.add(child, "a contained resource must have an id")
                elif cid in scope.contained_ids:
                    self.add(f"{child}.id", f"duplicate contained resource id '{cid[:70]}'")
                else:
                    scope.contained_ids[cid] = child
                self.resource(value, child, scope)
            elif self.skip_entry_resources and fdef.name == "resource" and self.depth == 2:
                # Bundle.entry[].resource (depth 1 = Bundle, 2 = entry): validated
                # separately, per entry, by validate_resource.
                return
            else:
                self.resource(value, child, None)
            return
        assert fdef.model is not None
        self.element(value, _info(fdef.model), child, scope)

    def primitive(self, fdef: _Field, value: Any, path: str, key: str, scope: _Scope) -> None:
        prim = fdef.prim
        cls = value.__class__
        if prim == "boolean":
            if cls is not bool:
                self._type_error(path, key, "a JSON boolean (true/false)", value)
            return
        if prim in _INTEGER:
            if cls is not int:
                self._type_error(path, key, "a JSON integer number", value)
            elif not self.uncertain and not fhir_lexical.certain_integer(prim, value):
                self.uncertain = True
            return
        if prim == "decimal":
            if cls is not int and cls is not float:
                self._type_error(path, key, "a JSON number", value)
            elif not self.uncertain and not fhir_lexical.certain_decimal(value):
                self.uncertain = True
            return
        if cls is not str:
            self._type_error(path, key, "a JSON string", value)
            return
        if not value:
            self.add(
                f"{path}.{key}" if path else key, "empty string is not allowed (omit the property)"
            )
            return
        if prim == "xhtml":
            for problem in _check_xhtml(value):
                self.add(f"{path}.{key}" if path else key, problem)
            return
        if prim == "base64Binary":
            if _b64decode(value) is None:
                self.add(f"{path}.{key}" if path else key, "not valid base64")
            return
        if len(value) > _MAX_STRING:
            self.add(f"{path}.{key}" if path else key, "string is longer than 1,048,576 characters")
            return
        if _CTRL_RE.search(value):
            self.add(
                f"{path}.{key}" if path else key, "control characters are not allowed in strings"
            )
        if not self.uncertain and not fhir_lexical.certain_string(prim, value):
            self.uncertain = True  # once unsure, the library judges all: no more checks
        if prim == "id":
            problem = _id_problem(value)
            if problem:
                self.add(f"{path}.{key}" if path else key, problem)
        elif prim == "markdown":
            problem = _markdown_problem(value)
            if problem:
                self.add(f"{path}.{key}" if path else key, problem)
        elif fdef.enum is not None:
            if value not in fdef.enum:
                allowed = sorted(fdef.enum)
                shown = ", ".join(allowed[:12]) + (", ..." if len(allowed) > 12 else "")
                self.add(
                    f"{path}.{key}" if path else key,
                    f"code '{value[:40]}' is not in the required value set ({shown})",
                )
        elif value[0] == "#" and (
            prim in _REFERENCE_LIKE or (prim == "string" and key == "reference")
        ):
            scope.local_uris.add(value)
            if key == "reference":
                scope.local_refs.append((f"{path}.{key}" if path else key, value))

    def _type_error(self, path: str, key: str, expected: str, value: Any) -> None:
        self.add(f"{path}.{key}" if path else key, f"must be {expected}, not {_json_type(value)}")


# ---------------------------------------------------------------------------------------
# Hand-written invariants and business rules (cheap, structural, high value)
# ---------------------------------------------------------------------------------------

_TZ_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _comparable(value: Any) -> tuple[int, Any] | None:
    """(precision, comparable) for a FHIR date/dateTime, or None if unparseable."""
    if not isinstance(value, str):
        return None
    if len(value) in (4, 7, 10) and "T" not in value:
        return len(value), value  # YYYY, YYYY-MM, YYYY-MM-DD compare as strings
    if _TZ_DATETIME_RE.fullmatch(value):
        try:
            return 99, dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _check_period(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    # per-1: start <= end. FHIRPath compares only equal precisions (else empty = pass).
    start, end = _comparable(obj.get("start")), _comparable(obj.get("end"))
    if start and end and start[0] == end[0] and start[1] > end[1]:
        walker.add(path, "Period start is after end (per-1)")


def _check_attachment(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    data = obj.get("data")
    if not isinstance(data, str) or not data:
        return
    sep = "." if path else ""
    if "contentType" not in obj:
        walker.add(path, "an Attachment with data SHALL have a contentType (att-1)")
    decoded = _b64decode(data)
    if decoded is None:
        return  # already reported as invalid base64
    size = obj.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size != len(decoded):
        walker.add(
            f"{path}{sep}size",
            f"stated Attachment size {size} does not match the actual size of data ({len(decoded)} bytes)",
        )
    digest = obj.get("hash")
    if isinstance(digest, str) and digest:
        stated = _b64decode(digest)
        if stated is None:
            return
        if len(stated) != 20:
            walker.add(
                f"{path}{sep}hash",
                f"hash must be a base64 SHA-1 digest (20 bytes, got {len(stated)})",
            )
        elif stated != hashlib.sha1(decoded).digest():  # noqa: S324 - FHIR R4 mandates SHA-1
            walker.add(f"{path}{sep}hash", "hash does not match the SHA-1 of data")


def _check_extension(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    # ext-1: either extensions or value[x], not both.
    has_value = any(key.startswith(("value", "_value")) for key in obj)
    if has_value and "extension" in obj:
        walker.add(path, "an extension must have either extensions or value[x], not both (ext-1)")
    elif not has_value and "extension" not in obj:
        walker.add(path, "an extension must have either extensions or value[x] (ext-1)")


def _check_quantity(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    if "code" in obj and "system" not in obj:
        walker.add(path, "if a unit code is present, the system SHALL also be present (qty-3)")


def _check_range(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    low, high = obj.get("low"), obj.get("high")
    if not (isinstance(low, dict) and isinstance(high, dict)):
        return
    lv, hv = low.get("value"), high.get("value")
    same_unit = low.get("code") == high.get("code") and low.get("unit") == high.get("unit")
    if isinstance(lv, int | float) and isinstance(hv, int | float) and same_unit and lv > hv:
        walker.add(path, "Range low is greater than high (rng-2)")


def _check_contact_point(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    if "value" in obj and "system" not in obj:
        walker.add(path, "a ContactPoint with a value SHALL have a system (cpt-2)")


def _check_observation(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    # obs-6 (and its component twin obs-7's first half): no dataAbsentReason with a value.
    if "dataAbsentReason" in obj and any(key.startswith(("value", "_value")) for key in obj):
        walker.add(path, "dataAbsentReason SHALL only be present if value[x] is not (obs-6)")


def _check_risk_prediction(walker: _Walker, obj: dict[str, Any], path: str) -> None:
    prob = obj.get("probabilityDecimal")
    if isinstance(prob, int | float) and not isinstance(prob, bool) and prob > 100:
        walker.add(f"{path}.probabilityDecimal", "probability must be <= 100 (ras-2)")
    rng = obj.get("probabilityRange")
    if isinstance(rng, dict):
        for end in ("low", "high"):
            q = rng.get(end)
            if isinstance(q, dict) and q.get("code") not in (None, "%"):
                walker.add(
                    f"{path}.probabilityRange.{end}", "probability range must be in % (ras-1)"
                )


_ELEMENT_RULES: dict[str, Callable[[_Walker, dict[str, Any], str], None]] = {
    "Period": _check_period,
    "Attachment": _check_attachment,
    "Extension": _check_extension,
    "Quantity": _check_quantity,
    "Age": _check_quantity,
    "Count": _check_quantity,
    "Distance": _check_quantity,
    "Duration": _check_quantity,
    "Range": _check_range,
    "ContactPoint": _check_contact_point,
    "Observation": _check_observation,
    "ObservationComponent": _check_observation,
    "RiskAssessmentPrediction": _check_risk_prediction,
}


# ---------------------------------------------------------------------------------------
# fhir.resources errors -> our format
# ---------------------------------------------------------------------------------------

_PROPERTY_RE = re.compile(r"_?[A-Za-z][A-Za-z0-9_]*")
_PYDANTIC_TAGS = frozenset({"str", "int", "bool", "float", "dict", "list", "bytes", "root"})


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _PYDANTIC_TAGS or not _PROPERTY_RE.fullmatch(part):
            continue  # union member / validator tags, not FHIR elements
        else:
            path = f"{path}.{part}" if path else part
    return path


def _pydantic_problems(exc: ValidationError, base: str) -> Iterator[tuple[str, str]]:
    for err in exc.errors(include_url=False, include_input=False):
        path = _loc_to_path(tuple(err.get("loc", ())))
        if base:
            path = f"{base}.{path}" if path else base
        kind = err.get("type", "")
        msg = "field required" if kind == "missing" else str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        yield path, " ".join(msg.split())


def _covered(path: str, own: list[str]) -> bool:
    """True if one of our own findings is at ``path`` or an ancestor of it."""
    return any(path == mine or (mine and path.startswith((f"{mine}.", f"{mine}["))) for mine in own)


def _merge(own: list[tuple[str, str]], library: list[tuple[str, str]]) -> list[str]:
    own_paths = [path for path, _ in own]
    merged = list(own)
    for path, msg in library:
        if _covered(path, own_paths):
            continue
        # After-model validators of fhir.resources (one-of-many, required primitives) report
        # at the parent; our walk reports the same thing at the element itself.
        if ("field value" in msg or "is required" in msg) and any(
            p.startswith(path) for p in own_paths
        ):
            continue
        merged.append((path, msg))
    return [f"{path}: {msg}" if path else msg for path, msg in merged]


def _label(resource: dict[str, Any]) -> str:
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    rtype_s = rtype if isinstance(rtype, str) else "(no resourceType)"
    if isinstance(rid, str) and rid:
        return f"{rtype_s[:60]}/{rid[:70]}"
    return rtype_s[:60]


# Spot check of the fast path in production: every Nth resource the walk is certain of is
# also given to the library (HEALTHSPACE_FHIR_LIBRARY_CHECK_EVERY, read once; 0 = never).
# A disagreement would be a bug in fhir_lexical: the resource is refused with the
# library's findings, and the resource type and element paths (never values) are logged.
_LIBRARY_CHECK_EVERY: int | None = None
_certain_seen = itertools.count(1)


def _library_check_every() -> int:
    global _LIBRARY_CHECK_EVERY
    if _LIBRARY_CHECK_EVERY is None:
        from django.conf import settings

        _LIBRARY_CHECK_EVERY = max(int(settings.HEALTHSPACE_FHIR_LIBRARY_CHECK_EVERY), 0)
    return _LIBRARY_CHECK_EVERY


def _validate(
    resource: Any, where: str, *, skip_entry_resources: bool, always_library: bool = False
) -> None:
    if not isinstance(resource, dict):
        prefix = f"{where}: " if where else ""
        raise FhirInputError(
            f"{prefix}expected a FHIR resource (JSON object), got {_json_type(resource)}"
        )
    label = _label(resource)
    walker = _Walker(skip_entry_resources=skip_entry_resources)
    walker.resource(resource, "", None)
    model = (
        _resource_model(resource["resourceType"])
        if isinstance(resource.get("resourceType"), str)
        else None
    )
    library: list[tuple[str, str]] = []
    # The library's verdict is needed where the walk found a problem (its findings are
    # merged into one message) or could not show the library would agree (fhir_lexical);
    # elsewhere it is certain to pass and is skipped, four fifths of the cost.
    ask_library = always_library or walker.uncertain or bool(walker.problems)
    spot_check = False
    if not ask_library:
        every = _library_check_every()
        spot_check = ask_library = every > 0 and next(_certain_seen) % every == 0
    if model is not None and ask_library:
        target = resource
        if skip_entry_resources and isinstance(resource.get("entry"), list):
            target = dict(resource)
            target["entry"] = [
                {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
                for e in resource["entry"]
            ]
        try:
            model.model_validate(target)
        except ValidationError as exc:
            library = list(_pydantic_problems(exc, ""))
        except (LookupError, AttributeError, ValueError, TypeError, RecursionError) as exc:
            # Library bugs on hostile input, e.g. KeyError for a contained resource with an
            # unknown resourceType. Our walk normally explains the cause; fail closed if not.
            if not walker.problems:
                rtype = resource["resourceType"]
                library = [("", f"could not be validated as {rtype} ({type(exc).__name__})")]
    if spot_check and library:
        logger.error(
            "FHIR validation fast path disagrees with fhir.resources on a %s at %s; refused",
            resource.get("resourceType"),
            ", ".join(sorted({path or "(resource)" for path, _ in library})[:10]),
        )
    problems = _merge(walker.problems, library)
    if problems:
        _raise(where, label, problems)


def validate_resource(resource: Any, *, where: str) -> None:
    """Validate one resource (any type) with fhir.resources R4B models
    (`from fhir.resources.R4B import get_fhir_model_class`; model_validate(resource)) PLUS our own
    checks below. Raise FhirInputError listing every problem found (element path + message),
    e.g. 'entry[3] Observation/abc: code: field required'. `where` prefixes the message.

    Own checks (one walk): unknown properties (incl. ``fhir_comments`` and Python field
    names the library would accept), JSON types of primitives (no ``"true"`` for booleans),
    no null/empty string/[]/{} (null only aligned with a ``_x`` extension array), ids
    ``[A-Za-z0-9-.]{1,64}``, cardinality and choice ``[x]`` rules, required-binding codes,
    strict base64, Attachment size/hash, narrative XHTML (txt-1/txt-2, active content,
    entities), no HTML in markdown, contained-resource rules (dom-2..5, ref-1) and a few
    invariants (per-1, rng-2, qty-3, ext-1, ele-1, att-1, cpt-2, obs-6, ras-1/2).

    ``model_validate`` runs only where the walk found a problem (its findings are merged)
    or cannot show the library would pass (records.fhir_lexical): the verdict is the same,
    at a fifth of the cost.

    A Bundle is validated together with all its entries; see the module docstring for the
    cheaper importer pattern (validate_bundle + validate_resource per entry).
    """
    _validate(resource, where, skip_entry_resources=False)


# ---------------------------------------------------------------------------------------
# Bundle rules
# ---------------------------------------------------------------------------------------

_BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
_ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_UUID_URN_RE = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A RESTful URL ends in Type/id (optionally /_history/v); group 1 is the base incl. '/'.
_RESTFUL_RE = re.compile(r"(.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([^/]+))?")
_SINGLE_LINKS = frozenset({"self", "first", "previous", "prev", "next", "last"})


@dataclass(slots=True)
class _Entry:
    index: int
    full_url: str | None
    resource: dict[str, Any] | None
    rtype: str | None
    rid: str | None
    version: str | None


def _restful(url: str) -> tuple[str, str, str, str | None] | None:
    """(base, type, id, version) if ``url`` is a RESTful resource URL of a known type."""
    match = _RESTFUL_RE.fullmatch(url)
    if match is None or _resource_model(match.group(2)) is None:
        return None
    return match.group(1) or "", match.group(2), match.group(3), match.group(4)


def _references(value: Any) -> Iterator[str]:
    """Every Reference.reference string inside a resource (plain JSON walk)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("reference")
            if isinstance(ref, str):
                yield ref
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))


def _ambiguous_references(entries: list[_Entry]) -> list[str]:
    """R4 bundle reference resolution; report references that match more than one entry.

    Only called when the Bundle holds two entries with the same fullUrl or Type/id, the
    only way a reference can become ambiguous, so normal Bundles never pay for it.
    """
    by_url: dict[str, list[_Entry]] = {}
    by_type_id: dict[tuple[str, str], list[_Entry]] = {}
    for entry in entries:
        if entry.full_url:
            by_url.setdefault(entry.full_url, []).append(entry)
        if entry.rtype and entry.rid:
            by_type_id.setdefault((entry.rtype, entry.rid), []).append(entry)
    problems: list[str] = []
    for entry in entries:
        if entry.resource is None:
            continue
        base = ""
        if entry.full_url and (rest := _restful(entry.full_url)):
            base = rest[0]
        for ref in dict.fromkeys(_references(entry.resource)):
            if ref.startswith("#"):
                continue
            target = _restful(ref)
            version = target[3] if target else None
            plain = ref.split("/_history/")[0]
            if _ABSOLUTE_URI_RE.fullmatch(ref):
                matches = by_url.get(plain, [])
            elif target is not None:
                matches = by_url.get(base + plain, []) if base else []
                if not matches:  # fall back to Type/id, as the HL7 validator does
                    matches = by_type_id.get((target[1], target[2]), [])
            else:
                continue
            if version is not None:
                matches = [m for m in matches if m.version == version]
            if len(matches) > 1:
                which = ", ".join(f"entry[{m.index}]" for m in matches)
                problems.append(
                    f"entry[{entry.index}].resource: reference '{ref[:80]}' is ambiguous: it"
                    f" matches {len(matches)} entries ({which})"
                )
    return problems


def _bundle_problems(bundle: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    btype = bundle.get("type")
    if btype is None:
        problems.append("type: field required (a Bundle must state its type)")
    elif not isinstance(btype, str) or btype not in _BUNDLE_TYPES:
        problems.append(
            f"type: '{str(btype)[:40]}' is not an R4 Bundle type"
            f" ({', '.join(sorted(_BUNDLE_TYPES))})"
        )
    if not isinstance(btype, str):
        btype = None  # reported above; the rules below need a hashable code
    history = btype == "history"

    links = bundle.get("link")
    if isinstance(links, list):
        seen_rel: set[str] = set()
        for i, link in enumerate(links):
            rel = link.get("relation") if isinstance(link, dict) else None
            if isinstance(rel, str) and rel in _SINGLE_LINKS:
                if rel in seen_rel:
                    problems.append(f"link[{i}]: the link relation '{rel}' can only occur once")
                seen_rel.add(rel)

    if "total" in bundle and btype not in ("searchset", "history"):
        problems.append("total: only allowed in a searchset or history Bundle (bdl-1)")

    raw_entries = bundle.get("entry")
    if raw_entries is None:
        raw_entries = []
    if not isinstance(raw_entries, list):
        problems.append(f"entry: must be a JSON array, not {_json_type(raw_entries)}")
        return problems

    needs_request = btype in ("batch", "transaction", "history")
    needs_response = btype in ("batch-response", "transaction-response", "history")
    entries: list[_Entry] = []
    for i, raw in enumerate(raw_entries):
        at = f"entry[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{at}: must be a JSON object, not {_json_type(raw)}")
            continue
        resource = raw.get("resource")
        request = raw.get("request")
        method = request.get("method") if isinstance(request, dict) else None
        if resource is None:
            # bdl-5: a resource, unless the entry is a request or response that has none.
            optional = ("response" in raw) or (
                needs_request and method in ("DELETE", "GET", "HEAD")
            )
            if not optional:
                problems.append(f"{at}: entry has no resource (bdl-5)")
        elif not isinstance(resource, dict):
            problems.append(f"{at}.resource: must be a JSON object, not {_json_type(resource)}")
            resource = None
        if btype in _BUNDLE_TYPES:
            if ("request" in raw) != needs_request:
                state = "required" if needs_request else "not allowed"
                problems.append(f"{at}.request: {state} in a {btype} Bundle (bdl-3)")
            if ("response" in raw) != needs_response:
                state = "required" if needs_response else "not allowed"
                problems.append(f"{at}.response: {state} in a {btype} Bundle (bdl-4)")
            if "search" in raw and btype != "searchset":
                problems.append(f"{at}.search: only allowed in a searchset Bundle (bdl-2)")

        rtype = resource.get("resourceType") if resource else None
        rid = resource.get("id") if resource else None
        meta = resource.get("meta") if resource else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        full_url = raw.get("fullUrl")
        if not isinstance(full_url, str) or not full_url:
            full_url = None  # shape problems are reported by the shell walk
        else:
            problems.extend(_full_url_problems(at, full_url, resource, rtype, rid))
        entries.append(
            _Entry(
                i,
                full_url,
                resource,
                rtype if isinstance(rtype, str) else None,
                rid if isinstance(rid, str) else None,
                version if isinstance(version, str) else None,
            )
        )

    if not history:
        problems.extend(_duplicate_problems(entries))

    if raw_entries and btype in ("document", "message"):
        first = raw_entries[0].get("resource") if isinstance(raw_entries[0], dict) else None
        want = "Composition" if btype == "document" else "MessageHeader"
        got = first.get("resourceType") if isinstance(first, dict) else None
        if got != want:
            rule = "bdl-11" if btype == "document" else "bdl-12"
            problems.append(
                f"entry[0]: the first resource of a {btype} Bundle must be a {want},"
                f" not {got} ({rule})"
            )
    elif btype in ("document", "message"):
        problems.append(f"entry: a {btype} Bundle must have entries")
    if btype == "document":
        ident = bundle.get("identifier")
        if not (isinstance(ident, dict) and ident.get("system") and ident.get("value")):
            problems.append(
                "identifier: a document must have an identifier with a system and a value (bdl-9)"
            )
        if not bundle.get("timestamp"):
            problems.append("timestamp: a document must have a date (bdl-10)")
    return problems


def _full_url_problems(
    at: str, full_url: str, resource: dict[str, Any] | None, rtype: Any, rid: Any
) -> list[str]:
    shown = full_url[:80]
    if full_url.startswith("urn:uuid:"):
        if not _UUID_URN_RE.fullmatch(full_url):
            return [f"{at}.fullUrl: '{shown}' is not a valid lower-case urn:uuid"]
        return []
    if "/_history/" in full_url:
        return [f"{at}.fullUrl: must not be a version-specific URL (bdl-8)"]
    rest = _restful(full_url)
    # R4 says absolute. Tolerated: a relative "Type/id" that agrees with the resource, as in
    # published NHS England / UK Core examples; it is unambiguous. Any other relative URL
    # cannot be resolved.
    if not _ABSOLUTE_URI_RE.fullmatch(full_url) and (rest is None or rest[0]):
        return [f"{at}.fullUrl: must be an absolute URL (not '{shown}')"]
    if rest is not None and resource is not None and (rest[1] != rtype or rest[2] != rid):
        # R4 Bundle.entry.fullUrl: "fullUrl SHALL NOT disagree with the id in the resource".
        # Two identities for one resource is how data gets filed against the wrong record.
        what = f"{rtype}/{rid}" if isinstance(rid, str) else f"{rtype} without id"
        return [
            f"{at}.fullUrl: RESTful fullUrl '{shown}' does not agree with the resource ({what})"
        ]
    return []


def _duplicate_problems(entries: list[_Entry]) -> list[str]:
    """bdl-7 and duplicate Type/id, for every Bundle type except history."""
    problems: list[str] = []
    by_url: dict[str, _Entry] = {}
    by_type_id: dict[tuple[str, str], _Entry] = {}
    suspicious = False
    for entry in entries:
        if entry.full_url:
            other = by_url.get(entry.full_url)
            if other is None:
                by_url[entry.full_url] = entry
            else:
                suspicious = True
                # bdl-7: the same fullUrl is allowed only for different meta.versionId.
                if entry.version is None or other.version is None or entry.version == other.version:
                    problems.append(
                        f"entry[{entry.index}].fullUrl: duplicate fullUrl '{entry.full_url[:80]}'"
                        f" (also entry[{other.index}]) without distinct meta.versionId (bdl-7)"
                    )
        if entry.rtype and entry.rid:
            key = (entry.rtype, entry.rid)
            other = by_type_id.get(key)
            if other is None:
                by_type_id[key] = entry
                continue
            suspicious = True
            same_url = entry.full_url is not None and entry.full_url == other.full_url
            different_servers = (
                entry.full_url is not None
                and other.full_url is not None
                and entry.full_url != other.full_url
                and _restful(entry.full_url) is not None
                and _restful(other.full_url) is not None
            )
            if not same_url and not different_servers:
                # Same Type/id without fullUrls that tell them apart (e.g. two urn:uuid):
                # one of them would silently overwrite the other on import.
                problems.append(
                    f"entry[{entry.index}].resource: duplicate resource"
                    f" {entry.rtype}/{entry.rid[:70]} (also entry[{other.index}])"
                )
    if suspicious:
        problems.extend(_ambiguous_references(entries))
    return problems


def validate_bundle(bundle: dict, *, where: str) -> None:  # type: ignore[type-arg]
    """Bundle-level rules (do NOT re-validate each entry resource with fhir.resources here; the
    importer calls validate_resource per entry): type present and one of the R4 codes; entry is a
    list; each entry has a resource (except where the type allows otherwise); no duplicate fullUrl;
    no two entries with the same resourceType/id (unless versioned history bundle); fullUrl and
    resource id agree when fullUrl is a RESTful URL; a document bundle's first entry is a
    Composition; duplicate 'self' links rejected; etc.

    Also validates the Bundle's own elements (meta, identifier, link, entry.request/response/
    search, ...) with the same checks as validate_resource, but with every
    ``entry[].resource`` left out, so that together with validate_resource per entry each
    element is validated exactly once.

    Duplicates follow R4 exactly rather than a blanket ban, because the published HL7
    example bundle-references.json is valid and contains both cases: the same fullUrl is
    allowed for different meta.versionId (bdl-7), and the same Type/id for RESTful fullUrls
    on different servers. What is rejected is what makes data unsafe to import: duplicates
    that nothing tells apart, and any reference that resolves to more than one entry.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        prefix = f"{where}: " if where else ""
        got = bundle.get("resourceType") if isinstance(bundle, dict) else _json_type(bundle)
        raise FhirInputError(f"{prefix}expected a Bundle, got {got}")
    problems = _bundle_problems(bundle)
    try:
        _validate(bundle, "", skip_entry_resources=True)
    except FhirInputError as exc:
        seen = set(problems)
        problems.extend(p for p in exc.problems if p not in seen and not _same_rule(p, problems))
    if problems:
        _raise(where, _label(bundle), problems)


def _same_rule(problem: str, bundle_problems: list[str]) -> bool:
    # The shell walk reports a missing Bundle.type as "type: field required"; keep one.
    return problem.startswith("type:") and any(p.startswith("type:") for p in bundle_problems)
