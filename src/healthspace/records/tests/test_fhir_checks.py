"""Strict FHIR input validation (``healthspace.records.fhir_checks``). No database.

Three layers:

* the 35 deliberately invalid inputs of the HL7 validator test suite, each with the
  distinctive part of the message we must produce (so catching the *wrong* thing fails);
* every valid example in the shared data folders must pass (the few published examples
  that genuinely break an identity/integrity rule are listed with the reason);
* small hand-made inputs for each of our own checks.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from healthspace.records.fhir_checks import (
    FhirInputError,
    parse_json_bytes,
    validate_bundle,
    validate_resource,
)
from healthspace.records.tests.data import fhir_data_dir

XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">'


def problems_of(data: bytes, where: str = "test.json") -> list[str]:
    """Validate a file the way the importer does; return every error message (empty = valid).

    Parse strictly; for a Bundle run the Bundle rules, then each entry resource once.
    """
    try:
        document = parse_json_bytes(data, where=where)
    except FhirInputError as exc:
        return [str(exc)]
    errors: list[str] = []
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        try:
            validate_bundle(document, where=where)
        except FhirInputError as exc:
            errors.append(str(exc))
        for index, entry in enumerate(document.get("entry") or []):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                try:
                    validate_resource(entry["resource"], where=f"{where} entry[{index}]")
                except FhirInputError as exc:
                    errors.append(str(exc))
    else:
        try:
            validate_resource(document, where=where)
        except FhirInputError as exc:
            errors.append(str(exc))
    return errors


def resource_error(resource: Any, where: str = "t") -> str:
    with pytest.raises(FhirInputError) as info:
        validate_resource(resource, where=where)
    return str(info.value)


def bundle_error(bundle: Any, where: str = "t") -> str:
    with pytest.raises(FhirInputError) as info:
        validate_bundle(bundle, where=where)
    return str(info.value)


def json_error(data: bytes) -> str:
    with pytest.raises(FhirInputError) as info:
        parse_json_bytes(data, where="in.json")
    return str(info.value)


# ---------------------------------------------------------------------------------------
# The 35 invalid cases
# ---------------------------------------------------------------------------------------

# file -> substrings that must ALL appear in the errors (distinctive: the right problem).
CAUGHT: dict[str, tuple[str, ...]] = {
    # json-syntax
    "json-comments-1.json": ("line 1 column 1: comments are not allowed in JSON",),
    "json-comments-2.json": ("line 3 column 3: comments are not allowed in JSON",),
    "json-comma-bad-1.json": ("line 7 column 7: a comma is missing",),
    "json-no-quotes-1.json": ("line 2 column 3: property name is not in double quotes",),
    "json-no-quotes-2.json": ("line 8 column 9: unquoted text 'Sarah'",),
    "bad-json-close-1.json": ("line 15 column 11: unexpected ']'",),
    "bad-json-close-3.json": ("line 16 column 9: unexpected '}'",),
    # structure
    "synthea.json": ("reasonCode: must be a JSON array, not an object",),
    "empty-array.json": ("category[0].coding: empty array is not allowed",),
    "ai3.json": ("unknownElement: unknown property 'unknownElement'",),
    "json-comments.json": ("fhir_comments: unknown property 'fhir_comments'",),
    # datatype
    "patient-id-bad-1.json": ("id: invalid id 'bad-id_1'",),
    "patient-id-bad-3.json": ("id: id is too long (115 characters",),
    "resource-invalid-id-1.json": ("id: invalid id '/foobar=='",),
    "resource-invalid-id-2.json": ("id: id is too long (90 characters",),
    "resource-invalid-id-3.json": ("contained[0].id: invalid id 'org_1'",),
    "contained-resource.json": ("contained[0].id: id is too long (65 characters",),
    "attachment-with-invalid-binary.json": ("content.data: not valid base64",),
    "parameters-attachment.json": ("parameter[0].valueAttachment.data: not valid base64",),
    # business
    "attachment-with-wrong-size.json": (
        "content.size: stated Attachment size 100 does not match the actual size of data"
        " (14 bytes)",
    ),
    # cardinality
    "obs-quantity.json": ("code: field required",),
    "Observation-ex-pain.json": ("code: field required", "_valueInteger.value: unknown property"),
    "hakan-se.json": (
        "medication[x]: field required",
        "requester.reference: local reference '#1505724e",
        "authoredOn: DateTime value string does not match",
    ),
    "obs-vs-2.json": ("text.div: field required",),
    "bundle-with-no-type.json": ("Bundle: type: field required",),
    # version mismatch (STU3 Consent sent as R4)
    "myconsent-resource.json": (
        "period: unknown property 'period'",
        "category: field required",
        "scope: field required",
    ),
    # security
    "pat-security-bad-xhtml.json": ("text.div: element <script> is not allowed",),
    "bad-markdown.json": ("note[0].text: markdown contains embedded HTML",),
    # xhtml
    "xml-bad-entities.json": ("text.div: invalid entity &reg;",),
    # invariant
    "risk-assessment-probability-range.json": (
        "prediction[0].probabilityDecimal: probability must be <= 100 (ras-2)",
    ),
    # bundle
    "bundle-id-search-2.json": (
        "link[1]: the link relation 'self' can only occur once",
        "link[3]: the link relation 'first' can only occur once",
    ),
    "bundle-document-versioned-references-bad.json": (
        "reference 'Observation/ObservationExample' is ambiguous: it matches 2 entries",
    ),
    # terminology: the required value set is enumerated in the model, so no server needed
    "allergy.json": ("category[0]: no code provided, and a code is required",),
}

# file -> why we accept it. The test asserts they still pass: if one starts failing,
# someone improved the checks; move it to CAUGHT (and update docs/fhir-input-validation.md).
NOT_CAUGHT: dict[str, str] = {
    "bundle-duplicate-id.json": (
        "relative fullUrl 'Patient/1': R4 requires absolute fullUrls, but published NHS"
        " England / UK Core examples use relative Type/id fullUrls that agree with the"
        " resource; they are unambiguous, so we accept them (the ids are unique per type)"
    ),
    "pat-example-ext.json": (
        "unknown extension http://example.org/...: resolving extension URLs needs the"
        " StructureDefinitions (package registry), and HL7's own valid examples use"
        " example.org extension URLs, so 'example URL' cannot be a rule either"
    ),
}


def _invalid_dir() -> Path:
    return fhir_data_dir() / "invalid-fhir-test-cases"


def test_the_case_tables_cover_exactly_the_35_invalid_inputs() -> None:
    files = {p.name for p in _invalid_dir().glob("*.json")}
    assert len(files) == 35
    assert set(CAUGHT) | set(NOT_CAUGHT) == files
    assert not set(CAUGHT) & set(NOT_CAUGHT)


@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_invalid_case_is_rejected_for_the_right_reason(name: str) -> None:
    errors = problems_of((_invalid_dir() / name).read_bytes(), where=name)
    assert errors, f"{name} was accepted"
    text = "\n".join(errors)
    for expected in CAUGHT[name]:
        assert expected in text, f"{name}: expected {expected!r} in:\n{text}"
    assert all(error.startswith(name) for error in errors)  # 'where' prefixes every message


@pytest.mark.parametrize("name", sorted(NOT_CAUGHT))
def test_invalid_case_we_knowingly_accept(name: str) -> None:
    errors = problems_of((_invalid_dir() / name).read_bytes(), where=name)
    assert errors == [], f"{name} is now rejected: move it to CAUGHT ({NOT_CAUGHT[name]})"


# ---------------------------------------------------------------------------------------
# Valid data: zero false positives
# ---------------------------------------------------------------------------------------

VALID_FOLDERS = (
    "hl7-r4-examples-fhir-models",
    "hl7-r4-examples-fhir-test-cases",
    "ukcore-r4-staging-main/json-converted",
    "nhs-immunisation-fhir-api",
    "nhs-pds-fhir-api",
    "ips-hl7-fhir-ips",
    "ips-connectathon-jddamore",
    "synthea-jddamore-ips-server",
    "synthea-smart-generated-sample-data",
)

# Published examples that genuinely break a rule we keep because the violation could file
# data against the wrong record or show altered content (see docs/fhir-input-validation.md).
# Every error of these files must be of the stated kind.
KNOWN_INVALID_EXAMPLES: dict[str, str] = {
    # fullUrl .../Observation/lri-gramstain1 for id gramstain1 (and 16 more); the report's
    # relative references then do not resolve by the R4 rules.
    "hl7-r4-examples-fhir-models/diagnosticreport-example-lri.json": "does not agree with the resource",
    # fullUrl .../Patient/pat12 on the Patient with id pat2: a link request between two
    # patient records where one record has two identities.
    "hl7-r4-examples-fhir-models/message-request-link.json": "does not agree with the resource",
    "hl7-r4-examples-fhir-models/message-response-link.json": "does not agree with the resource",
    # fullUrl Practitioner/2 on the Practitioner with id 1 (references say Practitioner/1).
    "ips-connectathon-jddamore/UK_NHSx_IPS_Example_01-modified.json": (
        "does not agree with the resource"
    ),
    # hash '571ef9c5...' is neither base64 nor the SHA-1 of the data (810e8372... in hex).
    "hl7-r4-examples-fhir-models/diagnosticreport-example-pgx.json": (
        "hash must be a base64 SHA-1 digest"
    ),
}


def _folder_param(folder: str) -> Any:
    marks = [pytest.mark.synthea] if folder.startswith("synthea") else []
    return pytest.param(folder, marks=marks, id=folder)


@pytest.mark.parametrize("folder", [_folder_param(f) for f in VALID_FOLDERS])
def test_every_valid_example_passes(folder: str) -> None:
    base = fhir_data_dir()
    files = sorted((base / folder).glob("*.json"))
    assert files, f"no JSON files in {folder}"
    unexpected: dict[str, list[str]] = {}
    for path in files:
        key = path.relative_to(base).as_posix()
        errors = problems_of(path.read_bytes(), where=path.name)
        known = KNOWN_INVALID_EXAMPLES.get(key)
        if known is None:
            if errors:
                unexpected[key] = errors
        else:
            problems = [p for e in errors for p in e.split("; ")]
            assert errors, f"{key} is listed as invalid but passes: remove it from the list"
            assert all(known in p for p in problems), f"{key}: {errors}"
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in unexpected.items())


# ---------------------------------------------------------------------------------------
# Strict JSON
# ---------------------------------------------------------------------------------------


def test_valid_json_parses_and_a_byte_order_mark_is_tolerated() -> None:
    assert parse_json_bytes(b'{"a": [1, 2.5, "x", true, null]}', where="w") == {
        "a": [1, 2.5, "x", True, None]
    }
    assert parse_json_bytes('\ufeff{"a": 1}'.encode(), where="w") == {"a": 1}


def test_duplicate_keys_are_rejected_with_the_position_of_the_object() -> None:
    message = json_error(
        b'{\n  "resourceType": "Patient",\n  "name": [{"family": "A",\n    "family": "B"}]\n}'
    )
    assert "duplicate property 'family'" in message
    assert "line 3 column 12" in message
    assert message.startswith("in.json: ")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"value": NaN}', "line 1 column 11: 'NaN' is not a JSON number"),
        (b'{"value": Infinity}', "'Infinity' is not a JSON number"),
        (b'{"value": -Infinity}', "'-Infinity' is not a JSON number"),
        (b'{"value": 1e999}', "number 1e999 is out of range"),
        (b'{"a": 1,}', "line 1 column 9: trailing comma before '}'"),
        (b'{"a": [1,]}', "trailing comma before ']'"),
        (b"{a: 1}", "property name is not in double quotes"),
        (b"{'a': 1}", "single quotes"),
        (b'{"a": 1} {"b": 2}', "unexpected data after the end"),
        (b'{"a": 1} // note', "line 1 column 10: comments are not allowed"),
        (b'/* c */ {"a": 1}', "comments are not allowed"),
        (b'{"a": [1, 2', "the input ends unexpectedly"),
        (b'{"a": "abc', "a string is not terminated (truncated input"),
        (b"", "the input ends unexpectedly"),
        (b'{"a": "\xff"}', "invalid UTF-8 at line 1 column 8"),
        (b'{"a": "\xed\xa0\x80"}', "invalid UTF-8"),  # an encoded surrogate
        (b'{"a": "x\\ud800y"}', "unpaired UTF-16 surrogate"),
        (b'{"a": "x\tb"}', "raw control character"),
    ],
)
def test_non_json_is_rejected_with_line_and_column(data: bytes, expected: str) -> None:
    assert expected in json_error(data)


def test_a_valid_surrogate_pair_and_an_escaped_backslash_u_are_fine() -> None:
    assert parse_json_bytes(b'{"a": "\\ud83d\\ude00"}', where="w") == {"a": "\U0001f600"}
    assert parse_json_bytes(b'{"a": "\\\\ud800"}', where="w") == {"a": "\\ud800"}


def test_deep_nesting_is_an_input_error_not_a_crash() -> None:
    assert "nested too deeply" in json_error(b"[" * 100_000 + b"]" * 100_000)


# ---------------------------------------------------------------------------------------
# Resource checks
# ---------------------------------------------------------------------------------------


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", **extra}


def test_a_clean_resource_passes_and_the_input_is_not_modified() -> None:
    resource = patient(
        name=[{"id": "name_1", "family": "Smith", "given": ["Ann"]}],  # element ids are strings
        gender="female",
        birthDate="1980-01-01",
        active=True,
        text={"status": "generated", "div": XHTML + "<p>Ann <b>Smith</b></p></div>"},
    )
    before = copy.deepcopy(resource)
    validate_resource(resource, where="t")
    assert resource == before


def test_message_names_where_resource_path_and_problem() -> None:
    obs = {"resourceType": "Observation", "id": "abc", "status": "final"}
    assert resource_error(obs, where="entry[3]") == "entry[3] Observation/abc: code: field required"
    # the importer already puts Type/id into 'where': not repeated
    assert resource_error(obs, where="f.json Observation/abc") == (
        "f.json Observation/abc: code: field required"
    )


def test_every_problem_is_listed_in_one_message() -> None:
    message = resource_error(patient(gender="", active="true", unknown=1, name=[]))
    assert "gender: empty string is not allowed" in message
    assert "active: must be a JSON boolean (true/false), not a string" in message
    assert "unknown: unknown property 'unknown'" in message
    assert "name: empty array is not allowed" in message
    with pytest.raises(FhirInputError) as info:
        validate_resource(patient(gender="", active="true"), where="t")
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    ("rid", "ok"),
    [
        ("a" * 64, True),
        ("A-z.0", True),
        ("a" * 65, False),
        ("bad_id", False),
        ("a b", False),
        ("ä", False),
    ],
)
def test_resource_id_pattern_and_length(rid: str, ok: bool) -> None:
    resource = {"resourceType": "Patient", "id": rid}
    if ok:
        validate_resource(resource, where="t")
    else:
        assert "id: " in resource_error(resource)


def test_65_character_id_on_resource_and_contained_resource() -> None:
    long_id = "x" * 65
    assert "id: id is too long (65 characters, at most 64 allowed)" in resource_error(
        {"resourceType": "Patient", "id": long_id}
    )
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "t"},
        "subject": {"reference": f"#{long_id}"},
        "contained": [{"resourceType": "Patient", "id": long_id}],
    }
    assert "contained[0].id: id is too long (65" in resource_error(obs)


def test_element_ids_are_strings_not_resource_ids() -> None:
    validate_resource(patient(name=[{"id": "name_1 with spaces", "family": "X"}]), where="t")
    validate_resource(patient(birthDate="1970", _birthDate={"id": "b_1"}), where="t")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"name": []}, "name: empty array is not allowed"),
        ({"maritalStatus": {}}, "maritalStatus: empty object is not allowed"),
        ({"gender": ""}, "gender: empty string is not allowed"),
        ({"active": None}, "active: null is not allowed"),
        ({"name": [None]}, "name[0]: null is not allowed in this array"),
        ({"name": [{"given": ["A", None]}]}, "name[0].given[1]: null is not allowed"),
        ({"name": {"family": "A"}}, "name: must be a JSON array, not an object"),
        ({"gender": ["female"]}, "gender: must be a single value, not a JSON array"),
        ({"maritalStatus": "M"}, "maritalStatus: must be a JSON object, not a string"),
        ({"active": "true"}, "active: must be a JSON boolean"),
        ({"multipleBirthInteger": "3"}, "multipleBirthInteger: must be a JSON integer"),
        ({"multipleBirthInteger": 3.0}, "multipleBirthInteger: must be a JSON integer"),
        ({"gender": 1}, "gender: must be a JSON string, not a number"),
        ({"gender": "mail"}, "gender: code 'mail' is not in the required value set"),
        ({"fhir_comments": "a comment"}, "fhir_comments: unknown property"),
        ({"birthDate__ext": {"extension": []}}, "birthDate__ext: unknown property"),
        ({"resource_type": "Patient"}, "resource_type: unknown property"),
        ({"name": [{"family": "A\u0000"}]}, "name[0].family: control characters"),
        ({"deceasedBoolean": True, "deceasedDateTime": "2020"}, "deceased[x]: only one of"),
    ],
)
def test_json_shape_rules_the_library_does_not_enforce(
    extra: dict[str, Any], expected: str
) -> None:
    assert expected in resource_error(patient(**extra))


def test_null_is_allowed_only_aligned_with_a_primitive_extension() -> None:
    ext = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    validate_resource(patient(name=[{"given": ["A", None], "_given": [None, ext]}]), where="t")
    mismatch = patient(name=[{"given": ["A", None], "_given": [None]}])
    assert "must have the same length" in resource_error(mismatch)
    both_null = patient(name=[{"given": ["A", None], "_given": [None, None]}])
    assert "name[0].given[1]: null in both" in resource_error(both_null)


def test_stu3_shaped_resource_is_rejected_as_r4() -> None:
    stu3 = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
        "requester": {"agent": {"reference": "Practitioner/1"}},  # STU3 requester.agent
    }
    assert "requester.agent: unknown property 'agent'" in resource_error(stu3)


# -- narrative XHTML ----------------------------------------------------------------------


def narrative(div: str) -> dict[str, Any]:
    return patient(text={"status": "generated", "div": div})


@pytest.mark.parametrize(
    "div",
    [
        XHTML + "<p>plain</p></div>",
        XHTML + '<p style="color: red; font-weight: bold">styled</p></div>',
        XHTML + '<a href="https://www.nhs.uk">link</a> <a name="x">anchor</a></div>',
        XHTML + '<table border="1"><tr><td colspan="2">cell</td></tr></table></div>',
        XHTML + '<img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/></div>',
        XHTML + "&#160;&amp;&lt;&gt;&quot;&apos; text</div>",
    ],
)
def test_harmless_narrative_passes(div: str) -> None:
    validate_resource(narrative(div), where="t")


@pytest.mark.parametrize(
    ("div", "expected"),
    [
        (XHTML + "<script>alert(1)</script>x</div>", "element <script> is not allowed"),
        (XHTML + "<p>x</p><style>p{}</style></div>", "element <style> is not allowed"),
        (XHTML + '<iframe src="https://evil.example"/>x</div>', "element <iframe>"),
        (XHTML + '<form action="https://evil.example"><input/></form>x</div>', "element <form>"),
        (XHTML + '<object data="x.swf"/>x</div>', "element <object>"),
        (
            XHTML + '<a href="javascript:alert(1)">x</a></div>',
            "'href' on <a> contains a javascript:",
        ),
        (XHTML + '<a href=" JaVa&#x09;Script:alert(1)">x</a></div>', "a javascript: URL"),
        (XHTML + '<a href="vbscript:x">x</a></div>', "a vbscript: URL"),
        (XHTML + '<a href="data:text/html,&lt;script&gt;">x</a></div>', "a data: URL"),
        (XHTML + '<img src="data:image/svg+xml;base64,PHN2Zz4="/></div>', "a data: URL"),
        (XHTML.replace(">", ' onload="alert(1)">') + "x</div>", "'onload' on <div>"),
        (XHTML + '<img src="x.png" onerror="alert(1)"/></div>', "'onerror' on <img>"),
        (XHTML + '<p style="width: expression(alert(1))">x</p></div>', "active CSS"),
        (XHTML + '<p style="background:url(https://t.example/p.gif)">x</p></div>', "url()"),
        (XHTML + "<svg xmlns='http://www.w3.org/2000/svg'/>x</div>", "element <svg> in namespace"),
        (XHTML + '<a href="x" target="_blank">x</a></div>', "attribute 'target' on <a>"),
        (XHTML + "<!--[if IE]><script>x</script><![endif]-->x</div>", "conditional comments"),
        (XHTML + "&nbsp;x</div>", "invalid entity &nbsp;"),
        (XHTML + "<p>unclosed</div>", "not well-formed XHTML"),
        ("<div>no namespace</div>", 'root element must be <div xmlns="http://www.w3.org/1999'),
        ("<p>not a div</p>", "narrative must be a single <div> element"),
        (XHTML + "  </div>", "txt-2"),
    ],
)
def test_active_or_invalid_narrative_is_rejected(div: str, expected: str) -> None:
    message = resource_error(narrative(div))
    assert "text.div: " in message
    assert expected in message


def test_billion_laughs_and_external_entities_are_refused_before_expansion() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    laughs = f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY l0 "lol">{lol}]>{XHTML}&l9;</div>'
    xxe = f'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>{XHTML}&x;</div>'
    for div in (laughs, xxe):
        assert "DOCTYPE/ENTITY declarations are not allowed" in resource_error(narrative(div))


def test_contained_resource_narrative_is_checked_too() -> None:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "t"},
        "subject": {"reference": "#p"},
        "contained": [narrative(XHTML + "<script>x</script>y</div>") | {"id": "p"}],
    }
    assert "contained[0].text.div: element <script>" in resource_error(obs)


# -- markdown -----------------------------------------------------------------------------


def communication(text: str) -> dict[str, Any]:
    return {"resourceType": "Communication", "status": "completed", "note": [{"text": text}]}


@pytest.mark.parametrize(
    "text", ["**bold** and _it_", "a < b, 5<6 and x <= 3", "see <https://www.nhs.uk>", "<a@b.uk>"]
)
def test_markdown_without_html_passes(text: str) -> None:
    validate_resource(communication(text), where="t")


@pytest.mark.parametrize(
    "text", ["<b>bold</b>", "x <img src=x onerror=alert(1)>", "a</p>", "<!-- hidden -->"]
)
def test_html_in_markdown_is_rejected(text: str) -> None:
    assert "note[0].text: markdown contains embedded HTML" in resource_error(communication(text))


def test_markdown_fields_are_found_by_type_not_by_name() -> None:
    # HumanName.text is a plain string: "<" is just a character there.
    validate_resource(patient(name=[{"text": "<b>Ann</b>"}]), where="t")
    # Condition.note is Annotation.text: markdown.
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "note": [{"text": "<i>x</i>"}],
    }
    assert "note[0].text: markdown contains embedded HTML" in resource_error(condition)


# -- base64 and Attachment ------------------------------------------------------------------


def media(**attachment: Any) -> dict[str, Any]:
    return {
        "resourceType": "Media",
        "status": "completed",
        "content": {"contentType": "text/plain", **attachment},
    }


def test_attachment_with_matching_size_and_hash_passes() -> None:
    data = b"hello world"
    validate_resource(
        media(
            data=base64.b64encode(data).decode(),
            size=len(data),
            hash=base64.b64encode(hashlib.sha1(data).digest()).decode(),  # noqa: S324 - FHIR R4 Attachment.hash is SHA-1
        ),
        where="t",
    )
    # XML-style line breaks inside base64 are allowed
    validate_resource(media(data="aGVsbG8g\nd29ybGQ="), where="t")


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        ({"data": "abc"}, "content.data: not valid base64"),
        ({"data": "aGVsbG8=!"}, "not valid base64"),
        ({"data": "..."}, "not valid base64"),
        ({"data": "aGVsbG8=", "size": 3}, "content.size: stated Attachment size 3 does not match"),
        (
            {"data": "aGVsbG8=", "hash": base64.b64encode(b"\0" * 20).decode()},
            "content.hash: hash does not match the SHA-1 of data",
        ),
        ({"data": "aGVsbG8=", "hash": "aGVsbG8="}, "hash must be a base64 SHA-1 digest"),
    ],
)
def test_base64_and_attachment_mismatches_are_rejected(
    attachment: dict[str, Any], expected: str
) -> None:
    assert expected in resource_error(media(**attachment))


def test_attachment_data_needs_a_content_type() -> None:
    resource = media(data="aGVsbG8=")
    del resource["content"]["contentType"]
    assert "att-1" in resource_error(resource)


# -- contained resources and invariants ---------------------------------------------------


def test_local_references_must_resolve_and_contained_must_be_referenced() -> None:
    base = {"resourceType": "Observation", "status": "final", "code": {"text": "t"}}
    validate_resource(
        base
        | {"subject": {"reference": "#p"}, "contained": [{"resourceType": "Patient", "id": "p"}]},
        where="t",
    )
    assert "ref-1" in resource_error(base | {"subject": {"reference": "#nope"}})
    assert "dom-3" in resource_error(base | {"contained": [{"resourceType": "Patient", "id": "p"}]})
    twice = base | {
        "subject": {"reference": "#p"},
        "contained": [{"resourceType": "Patient", "id": "p"}] * 2,
    }
    assert "duplicate contained resource id 'p'" in resource_error(twice)
    nested = base | {
        "subject": {"reference": "#p"},
        "contained": [
            {
                "resourceType": "Patient",
                "id": "p",
                "meta": {"versionId": "1"},
                "contained": [{"resourceType": "Patient", "id": "q"}],
            }
        ],
    }
    message = resource_error(nested)
    assert "dom-2" in message
    assert "dom-4" in message


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (patient(period={"start": "2020-02-01", "end": "2020-01-01"}), None),  # no Patient.period
        (
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "period": {"start": "2020-02-01", "end": "2020-01-01"},
            },
            "period: Period start is after end (per-1)",
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "t"},
                "valueQuantity": {"value": 1, "code": "mg"},
            },
            "valueQuantity: if a unit code is present, the system SHALL also be present (qty-3)",
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "t"},
                "valueString": "x",
                "dataAbsentReason": {"text": "n/a"},
            },
            "obs-6",
        ),
        (patient(extension=[{"url": "http://example.org/x"}]), "extension[0]: an extension must"),
        (patient(telecom=[{"value": "01234"}]), "telecom[0]: a ContactPoint with a value"),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "t"},
                "valueQuantity": {"value": 1, "comparator": "<<"},
            },
            "valueQuantity.comparator: code '<<' is not in the required value set",
        ),
        (patient(identifier=[{"id": "only-an-id"}]), "identifier[0]: element has only an id"),
    ],
)
def test_structural_invariants(resource: dict[str, Any], expected: str | None) -> None:
    message = resource_error(resource)
    if expected is None:
        assert "period: unknown property" in message
    else:
        assert expected in message


@pytest.mark.parametrize(
    "resource",
    [
        # fhir.resources itself raises KeyError for these; we must answer FhirInputError
        {"resourceType": "Patient", "contained": [{"resourceType": "urn:uuid:x", "id": "a"}]},
        {"resourceType": "Bundle", "type": ["collection"]},
        {"resourceType": "Bundle", "type": "collection", "entry": [1, None, "x", []]},
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {}}]},
        {"resourceType": "Patient", "name": [{"given": [[]]}], "_name": {}},
        {"resourceType": "Patient", "text": {"status": "generated", "div": "<div" * 5000}},
    ],
)
def test_hostile_shapes_are_input_errors_not_crashes(resource: dict[str, Any]) -> None:
    with pytest.raises(FhirInputError):
        validate_resource(resource, where="t")
    if resource["resourceType"] == "Bundle":
        with pytest.raises(FhirInputError):
            validate_bundle(resource, where="t")


def test_not_a_resource() -> None:
    assert resource_error([1], where="w") == (
        "w: expected a FHIR resource (JSON object), got an array"
    )
    assert "resourceType is missing" in resource_error({"id": "x"})
    assert "unknown resourceType 'Patiant'" in resource_error({"resourceType": "Patiant"})
    assert "unknown resourceType 'HumanName'" in resource_error({"resourceType": "HumanName"})


# ---------------------------------------------------------------------------------------
# Bundle rules
# ---------------------------------------------------------------------------------------


def entry(resource: dict[str, Any], full_url: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"resource": resource, **extra}
    if full_url is not None:
        out["fullUrl"] = full_url
    return out


def bundle(*entries: dict[str, Any], btype: str = "collection", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": btype, "entry": list(entries), **extra}


UUID1 = "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"
UUID2 = "urn:uuid:7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_a_good_bundle_passes_and_entry_resources_are_left_to_validate_resource() -> None:
    bad_entry = {"resourceType": "Patient", "id": "bad_id"}
    good = bundle(entry(patient(), "http://x.org/fhir/Patient/p1"), entry(bad_entry, UUID1))
    validate_bundle(good, where="b")  # entry resources are not validated here...
    assert "invalid id 'bad_id'" in resource_error(good)  # ...but validate_resource is full


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"resourceType": "Bundle"}, "type: field required"),
        (bundle(btype="batchy"), "type: 'batchy' is not an R4 Bundle type"),
        (bundle(btype="subscription-notification"), "is not an R4 Bundle type"),
        (bundle() | {"entry": {}}, "entry: must be a JSON array"),
        (bundle({"fullUrl": UUID1}), "entry[0]: entry has no resource (bdl-5)"),
        (bundle(entry(patient(), "Patient")), "must be an absolute URL (not 'Patient')"),
        (bundle(entry(patient(), "urn:uuid:NOT-A-UUID")), "is not a valid lower-case urn:uuid"),
        (bundle(entry(patient(), "http://x/Patient/p1/_history/1")), "bdl-8"),
        (bundle(entry(patient(), "http://x/Patient/p2")), "does not agree with the resource"),
        (bundle(entry(patient(), "Patient/p2")), "does not agree with the resource"),
        (
            bundle(entry(patient(), UUID1), entry(patient(), UUID1)),
            "duplicate fullUrl 'urn:uuid:0f8fad5b",
        ),
        (
            bundle(entry(patient(), UUID1), entry(patient(), UUID2)),
            "entry[1].resource: duplicate resource Patient/p1 (also entry[0])",
        ),
        (bundle(entry(patient()), btype="document"), "first resource of a document Bundle"),
        (bundle(entry(patient()), btype="document"), "bdl-9"),
        (bundle(entry(patient()), btype="transaction"), "entry[0].request: required"),
        (bundle(entry(patient(), search={"mode": "match"})), "only allowed in a searchset"),
        (bundle(total=1), "total: only allowed in a searchset or history Bundle"),
        (
            bundle(btype="searchset", link=[{"relation": "self", "url": "http://x"}] * 2),
            "link[1]: the link relation 'self' can only occur once",
        ),
        (bundle(meta={"lastUpdated": "yesterday"}), "meta.lastUpdated"),  # the shell is checked
        (bundle(entry(patient(), "", search=None)), "null is not allowed"),
    ],
)
def test_bundle_rules(doc: dict[str, Any], expected: str) -> None:
    assert expected in bundle_error(doc)


def test_versions_and_servers_tell_duplicates_apart_but_references_must_be_unambiguous() -> None:
    def versioned(v: str) -> dict[str, Any]:
        return patient(meta={"versionId": v})

    url = "http://x.org/fhir/Patient/p1"
    two_versions = bundle(entry(versioned("1"), url), entry(versioned("2"), url))
    validate_bundle(two_versions, where="b")  # bdl-7 allows it
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "t"},
        "subject": {"reference": "Patient/p1"},
    }
    ambiguous = copy.deepcopy(two_versions)
    ambiguous["entry"].append(entry(obs, "http://x.org/fhir/Observation/o1"))
    assert "reference 'Patient/p1' is ambiguous: it matches 2 entries" in bundle_error(ambiguous)
    pinned = copy.deepcopy(ambiguous)
    pinned["entry"][2]["resource"]["subject"]["reference"] = "Patient/p1/_history/2"
    validate_bundle(pinned, where="b")
    # the same Type/id on two servers is two resources
    validate_bundle(
        bundle(entry(patient(), url), entry(patient(), "http://other.org/fhir/Patient/p1")),
        where="b",
    )
    # history bundles may repeat anything
    history = bundle(
        entry(
            patient(),
            url,
            request={"method": "PUT", "url": "Patient/p1"},
            response={"status": "200"},
        ),
        entry(
            patient(),
            url,
            request={"method": "PUT", "url": "Patient/p1"},
            response={"status": "200"},
        ),
        btype="history",
    )
    validate_bundle(history, where="b")


def test_entries_without_resource_where_the_type_allows_it() -> None:
    delete = {"fullUrl": UUID1, "request": {"method": "DELETE", "url": "Patient/p1"}}
    validate_bundle(bundle(delete, btype="transaction"), where="b")
    response = {"response": {"status": "204"}}
    validate_bundle(bundle(response, btype="transaction-response"), where="b")


def test_relative_type_id_full_url_that_agrees_is_tolerated() -> None:
    validate_bundle(bundle(entry(patient(), "Patient/p1")), where="b")


def test_bundle_message_names_the_file_and_bundle() -> None:
    message = bundle_error(bundle(entry(patient(), "Patient"), id="b1"), where="feed.json")
    assert message.startswith("feed.json Bundle/b1: entry[0].fullUrl: must be an absolute URL")


def test_validate_bundle_rejects_non_bundles() -> None:
    assert bundle_error(patient(), where="w") == "w: expected a Bundle, got Patient"


def test_the_shared_data_location_can_be_overridden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HEALTHSPACE_TEST_DATA", str(tmp_path))
    assert fhir_data_dir() == tmp_path
    monkeypatch.setenv("HEALTHSPACE_TEST_DATA", str(tmp_path / "absent"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="shared FHIR test data not found"):
        fhir_data_dir()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="set HEALTHSPACE_TEST_DATA"):
        fhir_data_dir()


def test_problems_helper_agrees_with_json_module_on_valid_input() -> None:
    data = json.dumps(patient(name=[{"family": "Ü"}])).encode()
    assert problems_of(data) == []
