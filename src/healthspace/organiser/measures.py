"""What the organiser measures: the readings a patient can enter, how each is typed in,
the plausible range of every value (with the clinical reason), the canonical unit it is
stored in, the targets drawn on the charts (with their sources) and the FHIR codes a
shared reading carries.

Everything about a measure is in this one module, so a reviewer (clinical safety officer,
integrator) reads one table. ``RANGES`` is the validation table: a value outside its row
is refused with the row's message, in the unit the patient typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

D = Decimal


class Measure(StrEnum):
    BLOOD_PRESSURE = "blood-pressure"
    WEIGHT = "weight"
    HEIGHT = "height"
    PEAK_FLOW = "peak-flow"
    BLOOD_GLUCOSE = "blood-glucose"
    HEART_RATE = "heart-rate"


# --- how each value is typed in -------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One number box of a reading form."""

    name: str  # the form field (and the key of the range table)
    label: str  # the label, also the start of every error message about it
    suffix: str  # shown after the box (the unit)
    example: str  # "must be a number, like 120"
    decimals: int = 0  # how many decimal places may be typed
    width: int = 3  # NHS.UK input width class (characters)


@dataclass(frozen=True)
class Scheme:
    """One way of entering a measure: a unit (or unit pair) and its boxes."""

    unit: str  # the unit entered, kept for display ("kg", "st", "lb", "mg/dL")
    label: str  # the radio's text when there is a choice of units
    fields: tuple[Field, ...]


SCHEMES: dict[Measure, tuple[Scheme, ...]] = {
    Measure.BLOOD_PRESSURE: (
        Scheme(
            "mmHg",
            "mmHg",
            (
                Field("systolic", "Systolic (top number)", "mmHg", "120"),
                Field("diastolic", "Diastolic (bottom number)", "mmHg", "80"),
            ),
        ),
    ),
    Measure.WEIGHT: (
        Scheme("kg", "Kilograms", (Field("weight_kg", "Weight", "kg", "70.5", 1, 4),)),
        Scheme(
            "st",
            "Stones and pounds",
            (
                Field("weight_st", "Stones", "st", "11", 0, 2),
                Field("weight_st_lb", "Pounds", "lb", "4", 1, 3),
            ),
        ),
        Scheme("lb", "Pounds", (Field("weight_lb", "Weight", "lb", "155", 1, 4),)),
    ),
    Measure.HEIGHT: (
        Scheme("cm", "Centimetres", (Field("height_cm", "Height", "cm", "172", 1, 4),)),
        Scheme(
            "ft",
            "Feet and inches",
            (
                Field("height_ft", "Feet", "ft", "5", 0, 2),
                Field("height_in", "Inches", "in", "8", 1, 3),
            ),
        ),
    ),
    Measure.PEAK_FLOW: (
        Scheme("L/min", "L/min", (Field("peak_flow", "Peak flow", "L/min", "450", 0, 4),)),
    ),
    Measure.BLOOD_GLUCOSE: (
        Scheme(
            "mmol/L", "mmol/L", (Field("glucose_mmol", "Blood glucose", "mmol/L", "5.8", 1, 4),)
        ),
        Scheme("mg/dL", "mg/dL", (Field("glucose_mgdl", "Blood glucose", "mg/dL", "105", 0, 4),)),
    ),
    Measure.HEART_RATE: (
        Scheme(
            "bpm",
            "beats per minute",
            (Field("heart_rate", "Heart rate", "beats per minute", "72", 0, 3),),
        ),
    ),
}


# --- plausible ranges -----------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    measure: Measure
    name: str  # a Field.name, or a combined value ("weight_st_total")
    low: Decimal
    high: Decimal
    message: str


# The plausible ranges. They are not clinical thresholds: they catch typing mistakes
# (an extra digit, the wrong unit, two numbers swapped) while accepting every reading a
# person could really have, ill or well, adult or child (parents keep organisers for
# children). Bounds are inclusive, in the unit typed.
RANGES: tuple[Range, ...] = (
    # Blood pressure. Home monitors measure cuff pressures up to about 300mmHg. A systolic
    # above 180 or a diastolic above 120 is a very high, urgent reading (NHS: "High blood
    # pressure", nhs.uk/conditions/high-blood-pressure/): it is accepted and the page tells
    # the patient what to do. Below 50/30 a person would be in shock and not taking a home
    # reading; a 400 or a 20 is a typing mistake.
    Range(
        Measure.BLOOD_PRESSURE,
        "systolic",
        D(50),
        D(300),
        "Systolic (top number) must be between 50mmHg and 300mmHg",
    ),
    Range(
        Measure.BLOOD_PRESSURE,
        "diastolic",
        D(30),
        D(200),
        "Diastolic (bottom number) must be between 30mmHg and 200mmHg",
    ),
    # Weight. From a premature baby (0.5kg) to the upper limit of bariatric scales (400kg,
    # 63 stone); 0 is never a weight.
    Range(Measure.WEIGHT, "weight_kg", D("0.5"), D(400), "Weight must be between 0.5kg and 400kg"),
    Range(Measure.WEIGHT, "weight_lb", D(1), D(882), "Weight must be between 1lb and 882lb"),
    Range(Measure.WEIGHT, "weight_st", D(0), D(63), "Stones must be between 0 and 63"),
    # there are 14 pounds in a stone: 11st 15lb is a typing mistake for 12st 1lb
    Range(
        Measure.WEIGHT,
        "weight_st_lb",
        D(0),
        D("13.9"),
        "Pounds must be between 0 and 13.9 (there are 14 pounds in a stone)",
    ),
    Range(
        Measure.WEIGHT,
        "weight_st_total",
        D(1),
        D(882),
        "Weight must be between 1 pound and 63 stone",
    ),
    # Height. From a premature baby (30cm) to just below the tallest person recorded
    # (272cm): 260cm, 8 feet 6 inches.
    Range(Measure.HEIGHT, "height_cm", D(30), D(260), "Height must be between 30cm and 260cm"),
    Range(Measure.HEIGHT, "height_ft", D(1), D(8), "Feet must be between 1 and 8"),
    Range(
        Measure.HEIGHT,
        "height_in",
        D(0),
        D("11.9"),
        "Inches must be between 0 and 11.9 (there are 12 inches in a foot)",
    ),
    Range(
        Measure.HEIGHT,
        "height_in_total",
        D(12),
        D(102),
        "Height must be between 1 foot and 8 feet 6 inches",
    ),
    # Peak flow. Standard meters read 60 to 800L/min and low-range meters (children,
    # severe COPD) from 30; a few adults blow above 800 on a 900 scale (NHS: "Peak flow
    # test", nhs.uk/tests-and-treatments/peak-flow-test/).
    Range(
        Measure.PEAK_FLOW, "peak_flow", D(30), D(900), "Peak flow must be between 30 and 900L/min"
    ),
    # Blood glucose. Home meters show values from about 0.6 to 33.3mmol/L (10 to 600mg/dL)
    # and "LO" or "HI" outside them. 200mmol/L is not a possible blood glucose: it is
    # nearly always a mg/dL reading typed as mmol/L, and the error says so.
    Range(
        Measure.BLOOD_GLUCOSE,
        "glucose_mmol",
        D("0.6"),
        D("33.3"),
        "Blood glucose must be between 0.6 and 33.3mmol/L",
    ),
    Range(
        Measure.BLOOD_GLUCOSE,
        "glucose_mgdl",
        D(10),
        D(600),
        "Blood glucose must be between 10 and 600mg/dL",
    ),
    # Heart rate. Below 25 a person is not able to take their own pulse; above 250 is
    # beyond what a heart sustains (a baby's rate can be 160 to 180).
    Range(
        Measure.HEART_RATE,
        "heart_rate",
        D(25),
        D(250),
        "Heart rate must be between 25 and 250 beats per minute",
    ),
)
RANGE_FOR: dict[tuple[Measure, str], Range] = {(r.measure, r.name): r for r in RANGES}

# mmol/L to mg/dL for glucose (molar mass of glucose 180.16g/mol)
GLUCOSE_MGDL_PER_MMOL = D("18.016")
KG_PER_LB = D("0.45359237")
CM_PER_INCH = D("2.54")


# --- how each measure is shown, charted, shared ---------------------------------------


@dataclass(frozen=True)
class Coding:
    code: str
    display: str


@dataclass(frozen=True)
class Target:
    """A band drawn on a chart: a general target, never the patient's own."""

    low: float
    high: float
    label: str  # the legend's words


@dataclass(frozen=True)
class MeasureInfo:
    measure: Measure
    title: str  # "Blood pressure"
    lower: str  # "blood pressure" (inside a sentence)
    canonical_unit: str  # display unit of the stored value
    ucum: str  # UCUM code of the stored value
    loinc: Coding
    # the values stored, in canonical units (BP: systolic and diastolic)
    components: tuple[tuple[str, str, Coding | None], ...]  # (key, label, LOINC)
    targets: tuple[Target, ...] = ()
    sources: tuple[str, ...] = ()  # plain words, shown under the chart


BP_SYSTOLIC = Coding("8480-6", "Systolic blood pressure")
BP_DIASTOLIC = Coding("8462-4", "Diastolic blood pressure")
BMI_LOINC = Coding("39156-5", "Body mass index (BMI) [Ratio]")

INFO: dict[Measure, MeasureInfo] = {
    Measure.BLOOD_PRESSURE: MeasureInfo(
        Measure.BLOOD_PRESSURE,
        "Blood pressure",
        "blood pressure",
        "mmHg",
        "mm[Hg]",
        Coding("85354-9", "Blood pressure panel with all children optional"),
        (("systolic", "Systolic", BP_SYSTOLIC), ("diastolic", "Diastolic", BP_DIASTOLIC)),
        targets=(
            Target(90, 135, "Systolic target: 90 to 135mmHg"),
            Target(60, 85, "Diastolic target: 60 to 85mmHg"),
        ),
        sources=(
            "For home readings, NICE recommends a target below 135/85mmHg for adults under "
            "80, and below 145/85mmHg for adults aged 80 and over (NICE guideline NG136, "
            "Hypertension in adults).",
            "The NHS says ideal blood pressure is between 90/60mmHg and 120/80mmHg, and that "
            "below 90/60mmHg is low blood pressure (NHS website: High blood pressure; Low "
            "blood pressure).",
        ),
    ),
    Measure.WEIGHT: MeasureInfo(
        Measure.WEIGHT,
        "Weight",
        "weight",
        "kg",
        "kg",
        Coding("29463-7", "Body weight"),
        (("kg", "Weight", None),),
    ),
    Measure.HEIGHT: MeasureInfo(
        Measure.HEIGHT,
        "Height",
        "height",
        "cm",
        "cm",
        Coding("8302-2", "Body height"),
        (("cm", "Height", None),),
    ),
    Measure.PEAK_FLOW: MeasureInfo(
        Measure.PEAK_FLOW,
        "Peak flow",
        "peak flow",
        "L/min",
        "L/min",
        Coding(
            "19935-6", "Maximum expiratory gas flow Respiratory system airway by Peak flow meter"
        ),
        (("l_min", "Peak flow", None),),
        sources=(
            "There is no general target for peak flow: it depends on your age, height and "
            "sex, and your asthma action plan compares your readings with your own best "
            "reading (NHS website: Peak flow test).",
        ),
    ),
    Measure.BLOOD_GLUCOSE: MeasureInfo(
        Measure.BLOOD_GLUCOSE,
        "Blood glucose",
        "blood glucose",
        "mmol/L",
        "mmol/L",
        Coding("15074-8", "Glucose [Moles/volume] in Blood"),
        (("mmol_l", "Blood glucose", None),),
        targets=(Target(4, 7, "Target before meals: 4 to 7mmol/L"),),
        sources=(
            "NICE recommends that adults with type 1 diabetes aim for 4 to 7mmol/L before "
            "meals (5 to 7mmol/L on waking, 5 to 9mmol/L at least 90 minutes after eating) "
            "(NICE guideline NG17, Type 1 diabetes in adults).",
        ),
    ),
    Measure.HEART_RATE: MeasureInfo(
        Measure.HEART_RATE,
        "Heart rate",
        "heart rate",
        "beats per minute",
        "/min",
        Coding("8867-4", "Heart rate"),
        (("bpm", "Heart rate", None),),
        targets=(Target(60, 100, "Usual resting range: 60 to 100 beats per minute"),),
        sources=(
            "The NHS says a normal resting heart rate for adults is between 60 and 100 beats "
            "per minute; it can be lower if you are very fit (NHS website: How do I check my "
            "pulse?).",
        ),
    ),
}

# BMI is derived from each weight and the latest height: shown, never entered.
BMI_TARGET = Target(18.5, 24.9, "Healthy weight range: BMI 18.5 to 24.9")
BMI_SOURCES = (
    "For most adults a BMI of 18.5 to 24.9 is in the healthy weight range (NHS website: "
    "What is the body mass index (BMI)?). It is worked out from your weight and your latest "
    "height. BMI is not used in the same way for children and young people, or during "
    "pregnancy.",
)

# Below every chart with targets: they are general, the patient's own come from their team.
GENERAL_TARGETS_NOTE = (
    "These are general targets. Your own targets may be different: your GP, nurse or care "
    "team will tell you what they are for you."
)


def info(measure: str) -> MeasureInfo:
    return INFO[Measure(measure)]
