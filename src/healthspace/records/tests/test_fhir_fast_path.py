"""The validator's fast path (fhir_lexical): skipping fhir.resources never accepts more.

``fhir_checks._validate`` skips ``model_validate`` when its own walk found no problem and
calls itself certain that the library would pass the resource. These tests are the
evidence that the skip changes no verdict: on every resource of the shared FHIR data, on
every code point for the string and code patterns, and on many thousands of seeded
mutations of them (each primitive leaf replaced by values
chosen to hit the library's datatype checks, and structural edits), wherever the walk is
certain, the library accepts too. They also check that the skip happens for the data it
is meant for, since a fast path that is never taken would be a claim without a gain.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from healthspace.records import fhir_checks, fhir_lexical
from healthspace.records.tests.data import fhir_data_dir

pytestmark = pytest.mark.synthea

# Values aimed at every datatype check of the library: dates and times at and past their
# edges, integer bounds, whitespace the string and code patterns refuse, URLs, OIDs,
# UUIDs, base64, leap seconds, non-ASCII text, and values of the wrong JSON type.
PROBES: list[Any] = [
    "a",
    "x y",
    "a  b",
    " a",
    "a ",
    "a\nb",
    "\u00a0",
    "\u2003\u3000",
    "\u00a0x",
    "\u00e9",
    "\u738b",
    "\x85",
    "2020",
    "2020-02",
    "2020-13",
    "2020-02-29",
    "2021-02-29",
    "2020-02-30",
    "0000-01-01",
    "0001-01-01",
    "2020-01-01T10:00",
    "2020-01-01T10:00:00",
    "2020-01-01T10:00:00Z",
    "2020-01-01T10:00:00.123456789+01:00",
    "2020-01-01T24:00:00Z",
    "2016-12-31T23:59:60Z",
    "2020-01-01T10:00:00+14:01",
    "2020-01-01T10:00:00-13:59",
    "2021-02-29T10:00:00Z",
    "10:00:00",
    "23:59:60",
    "24:00:00",
    "10:00",
    "urn:oid:1.2.3",
    "urn:oid:3.1",
    "urn:oid:1.02",
    "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7",
    "53fefa32fcbb4ff88a9255ee120877b7",
    "http://example.org/fhir/Patient/1?x=a%20b#f",
    "https://example.org:99999/x",
    "http://",
    "http://a b",
    "ftp://x",
    "mailto:a@b.c",
    "Patient/1",
    "aGVsbG8=",
    "aGVsbG8",
    "aGVs bG8=",
    "1.5",
    "true",
    "final",
    "Final",
    0,
    -1,
    1,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**63,
    1.5,
    -0.0,
    1e-7,
    1e21,
    3.0,
    True,
    False,
    {},
    [],
    {"extension": [{"url": "http://example.org/x", "valueString": "y"}]},
    {"id": "x"},
]


def _resources(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return
    yield data
    if data["resourceType"] == "Bundle":
        for entry in data.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"]


def _corpus() -> list[dict[str, Any]]:
    base = fhir_data_dir()
    out: list[dict[str, Any]] = []
    for path in sorted(base.rglob("*.json")):
        if path.name == "MANIFEST.json":
            continue
        out.extend(_resources(path))
    return out


def _walk(resource: dict[str, Any]) -> fhir_checks._Walker:
    walker = fhir_checks._Walker()
    walker.resource(resource, "", None)
    return walker


def _library_accepts(resource: dict[str, Any]) -> bool:
    model = fhir_checks._resource_model(resource["resourceType"])
    assert model is not None
    try:
        model.model_validate(resource)
    except ValidationError:
        return False
    except (LookupError, AttributeError, ValueError, TypeError, RecursionError):
        return False  # _validate fails closed on these too
    return True


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key != "resourceType":
                yield (*path, key)
                yield from _leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*path, index)
            yield from _leaves(child, (*path, index))


def _get(root: Any, path: tuple) -> Any:
    for part in path:
        root = root[part]
    return root


def _mutants(resource: dict[str, Any], rng: random.Random, count: int) -> Iterator[dict]:
    paths = list(_leaves(resource))
    if not paths:
        return
    for _ in range(count):
        path = rng.choice(paths)
        mutant = copy.deepcopy(resource)
        parent = _get(mutant, path[:-1])
        key = path[-1]
        edit = rng.random()
        if edit < 0.75:
            parent[key] = rng.choice(PROBES)
        elif isinstance(parent, dict) and edit < 0.85:
            del parent[key]  # a required element or choice may go
        elif isinstance(parent, dict) and isinstance(key, str) and edit < 0.95:
            # the value replaced by its '_x' extension only
            value = parent.pop(key)
            parent[f"_{key}"] = rng.choice(PROBES[-2:]) if not isinstance(value, list) else [{}]
        else:
            value = parent[key]
            parent[key] = [value] if not isinstance(value, list) else value[0:1]
        yield mutant


def _check(resource: dict[str, Any]) -> bool:
    """Whether the walk is certain; certain implies the library accepts, or the fast path
    is wrong."""
    walker = _walk(resource)
    if walker.problems or walker.uncertain:
        return False
    assert _library_accepts(resource), (
        "the walk is certain but fhir.resources rejects: "
        + json.dumps(resource, sort_keys=True)[:2000]
    )
    return True


def test_every_resource_of_the_shared_data_gets_the_librarys_verdict():
    corpus = _corpus()
    assert len(corpus) > 8000
    certain = 0
    for resource in corpus:
        if fhir_checks._resource_model(resource["resourceType"]) is None:
            continue
        ok = _check(resource)
        certain += ok
    # the fast path is the normal path for real data, not a rare one
    assert certain / len(corpus) > 0.85, certain / len(corpus)


def test_seeded_mutations_never_pass_the_walk_where_the_library_refuses():
    corpus = [r for r in _corpus() if fhir_checks._resource_model(r["resourceType"]) is not None]
    # HS_FAST_PATH_MUTANTS raises the count for a long run by hand (docs/import.md)
    per_resource = int(os.environ.get("HS_FAST_PATH_MUTANTS", "60"))
    rng = random.Random(int(os.environ.get("HS_FAST_PATH_SEED", "20261203")))
    # every kind of resource, plus a sample of the many Synthea ones
    by_type: dict[str, list[dict]] = {}
    for resource in corpus:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    picked = [rng.choice(items) for items in by_type.values()]
    picked += rng.sample(corpus, 150)
    checked = certain = 0
    for resource in picked:
        if len(json.dumps(resource)) > 20_000:
            continue  # large documents: their parts are covered by the smaller ones
        for mutant in _mutants(resource, rng, per_resource):
            ok = _check(mutant)
            checked += 1
            certain += ok
    assert checked > 10_000
    print(f"{checked} mutants, {certain} certain")
    # the probes hit the library's checks: most mutants are refused or uncertain, but
    # enough stay certain to exercise the claim
    assert 0.05 < certain / checked < 0.9, certain / checked


@pytest.mark.parametrize(
    ("prim", "value", "certain"),
    [
        ("dateTime", "2020-01-01T10:00:00Z", True),
        ("dateTime", "2016-12-31T23:59:60Z", False),
        ("dateTime", "2021-02-29", False),
        ("date", "2020-02", True),
        ("instant", "2020-01-01", False),
        ("time", "23:59:60", False),
        ("string", "\u00a0", False),
        ("string", "\u738b", True),
        ("string", "\u3000\u00a0", False),
        ("code", "\u738b \u5c0f", True),
        ("code", "a\u3000\u3000b", False),
        ("string", "Smith", True),
        ("code", "a  b", False),
        ("code", "final", True),
        ("oid", "urn:oid:1.2.3", True),
        ("url", "https://example.org/x", True),
        ("url", "mailto:a@b.c", False),
        ("uuid", "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7", False),
        ("uri", "anything", True),
        ("newType", "anything", False),
    ],
)
def test_certain_string(prim, value, certain):
    assert fhir_lexical.certain_string(prim, value) is certain


def test_string_and_code_agree_with_the_library_on_every_code_point():
    """The library's patterns run in pydantic's Rust regex (Unicode White_Space for \\s):
    for each code point, alone, between letters, and doubled between letters, the fast
    path's verdict is the library's (fhir_core's own StringType and CodeType)."""
    from fhir_core.types import CodeType, StringType
    from pydantic import TypeAdapter

    string, code = TypeAdapter(StringType), TypeAdapter(CodeType)

    def accepts(adapter, value: str) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True

    disagree = []
    for point in range(0x110000):
        if 0xD800 <= point <= 0xDFFF:
            continue  # lone surrogates never leave the strict JSON parser
        ch = chr(point)
        for value in (ch, f"a{ch}b", f"a{ch}{ch}b"):
            if fhir_lexical.certain_string("string", value) != accepts(string, value):
                disagree.append(("string", hex(point), value))
            if fhir_lexical.certain_string("code", value) != accepts(code, value):
                disagree.append(("code", hex(point), value))
    assert not disagree, disagree[:20]


def test_integer_bounds_and_decimals():
    assert fhir_lexical.certain_integer("positiveInt", 1)
    assert not fhir_lexical.certain_integer("positiveInt", 0)
    assert not fhir_lexical.certain_integer("integer", 2**31)
    assert fhir_lexical.certain_decimal(1e-7)
    assert fhir_lexical.certain_decimal(-0.0)


def test_a_required_element_sent_only_as_its_extension_goes_to_the_library():
    # Extension.url is required; '_url' with only an id is refused by the library
    resource = {
        "resourceType": "Patient",
        "extension": [{"_url": {"id": "a"}, "valueString": "x"}],
    }
    walker = _walk(resource)
    assert walker.uncertain
    with pytest.raises(fhir_checks.FhirInputError, match="url"):
        fhir_checks.validate_resource(resource, where="t")


def test_library_still_judges_what_the_walk_is_unsure_of():
    resource = {"resourceType": "Patient", "birthDate": "2021-02-29"}
    assert _walk(resource).uncertain
    with pytest.raises(fhir_checks.FhirInputError, match="birthDate"):
        fhir_checks.validate_resource(resource, where="t")


@pytest.fixture
def spot_check_every(monkeypatch):
    def set_every(every: int) -> None:
        monkeypatch.setattr(fhir_checks, "_LIBRARY_CHECK_EVERY", every)

    return set_every


def test_the_spot_check_refuses_what_a_wrong_fast_path_would_let_through(
    monkeypatch, spot_check_every, caplog
):
    # A bug in fhir_lexical (here: every date called certain) would accept an impossible
    # birth date; the spot check hands the resource to the library, which refuses it.
    monkeypatch.setattr(fhir_lexical, "certain_string", lambda prim, value: True)
    resource = {"resourceType": "Patient", "birthDate": "2021-02-29"}
    spot_check_every(0)
    fhir_checks.validate_resource(resource, where="t")  # what the bug alone would do
    spot_check_every(1)
    with (
        caplog.at_level("ERROR", logger="healthspace.records.fhir_checks"),
        pytest.raises(fhir_checks.FhirInputError, match="birthDate"),
    ):
        fhir_checks.validate_resource(resource, where="t")
    assert "fast path disagrees with fhir.resources on a Patient at birthDate" in caplog.text
    assert "2021-02-29" not in caplog.text  # paths only, never values


def test_the_spot_check_takes_every_nth_certain_resource(monkeypatch, spot_check_every):
    asked = []
    model = fhir_checks._resource_model("Patient")
    original = model.model_validate
    monkeypatch.setattr(
        model, "model_validate", lambda data, **kw: asked.append(1) or original(data, **kw)
    )
    monkeypatch.setattr(fhir_checks, "_certain_seen", itertools.count(1))
    spot_check_every(3)
    for _ in range(9):
        fhir_checks.validate_resource({"resourceType": "Patient", "active": True}, where="t")
    assert len(asked) == 3
