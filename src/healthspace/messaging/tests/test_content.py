"""Subjects and bodies are plain text: required, limited, tidied, never HTML."""

from __future__ import annotations

import pytest

from healthspace.core.errors import InvalidInput
from healthspace.messaging import content as c


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("  Repeat   prescription ", "Repeat prescription"),
        ("Line\nbreak", "Line break"),
        ("Test\u202eresults", "Testresults"),  # bidi override dropped
        ("Bell\x07", "Bell"),
        ("<b>bold</b>", "<b>bold</b>"),  # kept as text: pages escape it
        ("x" * c.SUBJECT_MAX, "x" * c.SUBJECT_MAX),
    ],
)
def test_a_subject_is_one_tidy_line(given, expected):
    assert c.subject_clean(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", c.SUBJECT_EMPTY),
        (" \n\t ", c.SUBJECT_EMPTY),
        ("\u202e", c.SUBJECT_EMPTY),
        ("x" * (c.SUBJECT_MAX + 1), c.SUBJECT_TOO_LONG),
    ],
)
def test_a_subject_must_say_something_briefly(given, message):
    with pytest.raises(InvalidInput, match=message):
        c.subject_clean(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Hello\r\nthere", "Hello\nthere"),
        ("\n\nHello   \n\n\n\n\nthere\n\n", "Hello\n\nthere"),
        ("Tab\there", "Tab    here"),
        ("Null\x00byte", "Nullbyte"),
        ("emoji \U0001f469\u200d\u2695\ufe0f kept", "emoji \U0001f469\u200d\u2695\ufe0f kept"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ],
)
def test_a_body_keeps_its_lines_and_drops_what_is_invisible(given, expected):
    assert c.body_clean(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", c.BODY_EMPTY),
        ("   \n \n", c.BODY_EMPTY),
        ("\x00\x01", c.BODY_EMPTY),
        ("x" * (c.BODY_MAX + 1), c.BODY_TOO_LONG),
    ],
)
def test_an_empty_or_too_long_body_is_refused(given, message):
    with pytest.raises(InvalidInput, match=message):
        c.body_clean(given)


def test_paragraphs_split_on_blank_lines_and_keep_line_breaks():
    assert c.paragraphs("One\ntwo\n\nThree") == [["One", "two"], ["Three"]]
