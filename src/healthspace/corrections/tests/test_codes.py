"""The HealthSpace code system for patients' additions, and the Flag made of each option."""

from __future__ import annotations

import uuid

import pytest

from healthspace.core.clock import now
from healthspace.corrections import codes
from healthspace.corrections.additions import flag_resource
from healthspace.corrections.codes import KINDS, OPTIONS, Kind
from healthspace.records import fhir_map
from healthspace.records.fhir_checks import validate_resource
from healthspace.records.models import ADDITIONAL_SECTIONS

ALL = [(kind, option) for kind in Kind for option in OPTIONS[kind]]


def test_each_kind_is_an_additional_section_of_the_scr():
    assert {text.section for text in KINDS.values()} <= set(ADDITIONAL_SECTIONS)


def test_codes_are_unique_within_a_kind_and_across_kinds():
    for kind in Kind:
        assert len({o.code for o in OPTIONS[kind]}) == len(OPTIONS[kind])
    sent = [codes.option_code(kind, o) for kind, o in ALL]
    assert len(set(sent)) == len(sent)  # "interpreter" is two codes, one per kind


def test_the_code_systems_are_valid_fhir_and_list_every_option():
    for resource in (codes.code_system_resource(), codes.category_system_resource()):
        validate_resource(resource, where="code system")
    published = {
        c["code"]: c["display"]
        for group in codes.code_system_resource()["concept"]
        for c in group["concept"]
    }
    assert published == {codes.option_code(k, o): o.display for k, o in ALL}
    categories = {c["code"] for c in codes.category_system_resource()["concept"]}
    assert categories == {k.value for k in Kind}


@pytest.mark.parametrize(("kind", "option"), ALL, ids=[f"{k}.{o.code}" for k, o in ALL])
def test_every_option_makes_a_valid_flag_that_reads_well(kind, option):
    resource = flag_resource(
        patient_id=uuid.uuid4(),
        addition_id=uuid.uuid4(),
        kind=kind,
        option=option,
        details="after 5pm" if option.details_required else "",
        since=now(),
    )
    validate_resource({**resource, "id": "x"}, where="flag")
    assert resource["status"] == "active"
    assert resource["category"][0]["coding"][0]["code"] == kind.value
    view = fhir_map.describe(resource)
    assert view.title.startswith(option.display)
    assert view.code is None  # HealthSpace's own codes are shown in words only
    assert fhir_map.recorded_at(resource) is not None
