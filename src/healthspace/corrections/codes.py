"""HealthSpace's own code system for what patients add to their Summary Care Record:
communication preferences, access needs and preferences for care. All the codes, their
words and their limits live here, in one module.

Why a local code system and not SNOMED CT: these are the patient's own statements about
how to reach and care for them ("text me, do not leave voicemail"), not clinical findings.
A code that a clinician's system could mistake for a coded diagnosis ("wheelchair user"
as a disability finding) would say more than the patient did. The codes here are stable
and documented (docs/corrections.md), and ``code_system_resource()`` publishes them as a
FHIR CodeSystem, so an integrator can map them to a national scheme (for example the NHS
Reasonable Adjustment Flag) where one fits.

Each addition is one FHIR R4 ``Flag``: ``category`` says which of the three it is,
``code`` carries the option chosen (a coding from ``OPTION_SYSTEM``) and ``code.text``
the option in words with the patient's own words after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from healthspace.records.models import Section

BASE = "https://healthspace.example/fhir"
CATEGORY_SYSTEM = f"{BASE}/CodeSystem/patient-addition-category"
OPTION_SYSTEM = f"{BASE}/CodeSystem/patient-addition"
IDENTIFIER_SYSTEM = f"{BASE}/Id/patient-addition"
# Limits: the patient's own words, and how many additions of one kind a record holds
# (a summary for clinicians in a hurry, not a diary).
DETAILS_MAX = 500
PER_KIND_MAX = 25


class Kind(StrEnum):
    COMMUNICATION = "communication"
    ACCESS_NEEDS = "access-needs"
    CARE_PREFERENCES = "care-preferences"


@dataclass(frozen=True)
class KindText:
    section: str  # records.models.Section
    display: str  # the category's display in FHIR
    title: str  # page headings: "Communication preferences"
    one: str  # "a communication preference"
    question: str  # the legend of the options
    hint: str


KINDS: dict[Kind, KindText] = {
    Kind.COMMUNICATION: KindText(
        section=Section.COMMUNICATION,
        display="Communication preferences",
        title="Communication preferences",
        one="a communication preference",
        question="How would you like to be contacted?",
        hint="For example, the best way and time to reach you, or someone who can speak for you.",
    ),
    Kind.ACCESS_NEEDS: KindText(
        section=Section.ACCESS_NEEDS,
        display="Access needs and reasonable adjustments",
        title="Access needs",
        one="an access need",
        question="What do you need?",
        hint="Help or changes that make it easier for you to use health services.",
    ),
    Kind.CARE_PREFERENCES: KindText(
        section=Section.CARE_PREFERENCES,
        display="Preferences for care",
        title="Preferences for care",
        one="a preference for your care",
        question="What would you like the people caring for you to know?",
        hint="What matters to you, in your own words.",
    ),
}
SECTION_KIND: dict[str, Kind] = {text.section: kind for kind, text in KINDS.items()}


@dataclass(frozen=True)
class Option:
    code: str
    display: str  # what staff read: a statement about the patient, third person free
    label: str  # what the patient ticks ("I use a wheelchair")
    details: str = ""  # the question for their own words, when the option needs them
    details_required: bool = False


OPTIONS: dict[Kind, tuple[Option, ...]] = {
    Kind.COMMUNICATION: (
        Option("contact-phone", "Prefers a phone call", "Phone me"),
        Option("contact-text", "Prefers a text message", "Send me a text message"),
        Option("contact-email", "Prefers email", "Email me"),
        Option("contact-letter", "Prefers a letter", "Write to me by post"),
        Option(
            "best-times",
            "Best times to contact",
            "Contact me at certain times",
            "When is best?",
            True,
        ),
        Option("no-voicemail", "Do not leave voicemail messages", "Do not leave voicemail"),
        Option(
            "speak-on-behalf",
            "Someone can speak on their behalf",
            "Someone can speak to you for me",
            "Who are they, and how can staff reach them?",
            True,
        ),
        Option(
            "language",
            "Main language is not English",
            "My main language is not English",
            "What is your main language?",
            True,
        ),
        Option(
            "interpreter",
            "Needs an interpreter",
            "I need an interpreter",
            "For which language?",
            True,
        ),
        Option("other", "Other communication preference", "Something else", "Tell us", True),
    ),
    Kind.ACCESS_NEEDS: (
        Option("wheelchair", "Wheelchair user", "I use a wheelchair"),
        Option("step-free", "Needs step-free access", "I need step-free access"),
        Option(
            "bsl-interpreter",
            "Needs a British Sign Language (BSL) interpreter",
            "I need a British Sign Language (BSL) interpreter",
        ),
        Option(
            "interpreter",
            "Needs an interpreter for a spoken language",
            "I need an interpreter for a spoken language",
            "For which language?",
            True,
        ),
        Option("large-print", "Needs information in large print", "I need large print"),
        Option("easy-read", "Needs information in easy read", "I need easy read information"),
        Option("braille", "Needs information in braille", "I need braille"),
        Option("hearing-loop", "Needs a hearing loop", "I need a hearing loop"),
        Option(
            "someone-with-me",
            "Needs someone with them",
            "I need someone with me at appointments",
            "Who, or what help do they give? (optional)",
        ),
        Option(
            "assistance-dog",
            "Has a guide dog or assistance dog",
            "I have a guide dog or assistance dog",
        ),
        Option("other", "Other access need", "Something else", "Tell us what you need", True),
    ),
    Kind.CARE_PREFERENCES: (
        Option(
            "what-matters",
            "What matters to them",
            "What matters to me",
            "Tell us what matters to you",
            True,
        ),
        Option(
            "place-of-care",
            "Where they would prefer to be cared for",
            "Where I would prefer to be cared for",
            "Where, and anything staff should know",
            True,
        ),
        Option(
            "beliefs",
            "Religious, spiritual or cultural needs",
            "My religious, spiritual or cultural needs",
            "What should staff know?",
            True,
        ),
        Option(
            "other",
            "Other preference for care",
            "Something else about my care",
            "Tell us",
            True,
        ),
    ),
}


def option_for(kind: Kind, code: str) -> Option | None:
    return next((o for o in OPTIONS[kind] if o.code == code), None)


def code_text(option: Option, details: str) -> str:
    """``code.text``: the option in words, then the patient's own words."""
    return f"{option.display}: {details}" if details else option.display


def category_system_resource() -> dict[str, Any]:
    """The three kinds, as a FHIR R4 CodeSystem (Flag.category)."""
    return {
        "resourceType": "CodeSystem",
        "id": "patient-addition-category",
        "url": CATEGORY_SYSTEM,
        "name": "HealthSpacePatientAdditionCategory",
        "title": "Kinds of what patients add to their Summary Care Record",
        "status": "active",
        "content": "complete",
        "caseSensitive": True,
        "concept": [{"code": kind.value, "display": KINDS[kind].display} for kind in Kind],
    }


def code_system_resource() -> dict[str, Any]:
    """The options, as a FHIR R4 CodeSystem (Flag.code), grouped by kind: the kinds are
    the top-level concepts (the codes of the category system), their options under them."""
    return {
        "resourceType": "CodeSystem",
        "id": "patient-addition",
        "url": OPTION_SYSTEM,
        "name": "HealthSpacePatientAddition",
        "title": "What patients add to their Summary Care Record",
        "status": "active",
        "content": "complete",
        "caseSensitive": True,
        "hierarchyMeaning": "grouped-by",
        "description": (
            "Communication preferences, access needs and preferences for care, stated by "
            "the patient in HealthSpace. Each is sent as a Flag with one of these codes in "
            f"Flag.code and its kind in Flag.category ({CATEGORY_SYSTEM})."
        ),
        "concept": [
            {
                "code": kind.value,
                "display": KINDS[kind].display,
                "concept": [
                    {"code": option_code(kind, o), "display": o.display} for o in OPTIONS[kind]
                ],
            }
            for kind in Kind
        ],
    }


def option_code(kind: Kind, option: Option) -> str:
    """The code sent in Flag.code: kind and option (``access-needs.wheelchair``), so an
    option that exists in two kinds ("interpreter") stays two codes."""
    return f"{kind.value}.{option.code}"
