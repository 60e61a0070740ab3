"""The privacy officer reads the patient's words for events in the third person."""

from __future__ import annotations

import pytest

from healthspace.audit.selectors import ACTION_WORDS, REASON_WORDS, third_person


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        ("You gave permission", "The patient gave permission"),
        ("Viewed your Summary Care Record", "Viewed the patient's Summary Care Record"),
        ("They work at your GP practice", "They work at the patient's GP practice"),
        ("You shared your record with them", "The patient shared the patient's record with them"),
        ("You could not be asked at the time", "The patient could not be asked at the time"),
        ("Emergency access", "Emergency access"),
    ],
)
def test_third_person(mine, theirs):
    assert third_person(mine) == theirs


@pytest.mark.parametrize("words", [*ACTION_WORDS.values(), *REASON_WORDS.values()])
def test_no_word_list_entry_keeps_a_second_person_word(words):
    out = f" {third_person(words)} ".lower()
    assert " you " not in out and " your " not in out and " you," not in out, out
