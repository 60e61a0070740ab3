"""The range and unit validation table: what a patient types, in the unit they chose, is
accepted (and stored in canonical units) or refused with a clear, specific message."""

from __future__ import annotations

import pytest

from healthspace.organiser import values as V
from healthspace.organiser.measures import RANGES, SCHEMES, Measure

BP, WEIGHT, HEIGHT = Measure.BLOOD_PRESSURE, Measure.WEIGHT, Measure.HEIGHT
PEAK, GLUCOSE, HR = Measure.PEAK_FLOW, Measure.BLOOD_GLUCOSE, Measure.HEART_RATE

# (measure, unit, typed, stored values or None, {field: start of the message})
ACCEPTED = [
    (BP, "mmHg", {"systolic": "128", "diastolic": "82"}, {"systolic": 128, "diastolic": 82}),
    (BP, "mmHg", {"systolic": " 300 ", "diastolic": "200"}, {"systolic": 300, "diastolic": 200}),
    (BP, "mmHg", {"systolic": "50", "diastolic": "30"}, {"systolic": 50, "diastolic": 30}),
    (WEIGHT, "kg", {"weight_kg": "70.5"}, {"kg": 70.5}),
    (WEIGHT, "kg", {"weight_kg": "0.5"}, {"kg": 0.5}),
    (WEIGHT, "st", {"weight_st": "11", "weight_st_lb": "4"}, {"kg": 71.67}),
    (WEIGHT, "st", {"weight_st": "11", "weight_st_lb": ""}, {"kg": 69.85}),  # 11st 0lb
    (WEIGHT, "lb", {"weight_lb": "154"}, {"kg": 69.85}),
    (HEIGHT, "cm", {"height_cm": "172.5"}, {"cm": 172.5}),
    (HEIGHT, "ft", {"height_ft": "5", "height_in": "8"}, {"cm": 172.7}),
    (HEIGHT, "ft", {"height_ft": "6", "height_in": ""}, {"cm": 182.9}),
    (PEAK, "L/min", {"peak_flow": "450"}, {"l_min": 450}),
    (GLUCOSE, "mmol/L", {"glucose_mmol": "5.8"}, {"mmol_l": 5.8}),
    (GLUCOSE, "mmol/L", {"glucose_mmol": "0.6"}, {"mmol_l": 0.6}),
    (GLUCOSE, "mg/dL", {"glucose_mgdl": "105"}, {"mmol_l": 5.83}),
    (GLUCOSE, "mg/dL", {"glucose_mgdl": "600"}, {"mmol_l": 33.3}),
    (HR, "bpm", {"heart_rate": "72"}, {"bpm": 72}),
]

REFUSED = [
    # blood pressure: out of range, swapped, not a number, missing, not whole
    (BP, "mmHg", {"systolic": "400", "diastolic": "20"}, {
        "systolic": "Systolic (top number) must be between 50mmHg and 300mmHg",
        "diastolic": "Diastolic (bottom number) must be between 30mmHg and 200mmHg",
    }),
    (BP, "mmHg", {"systolic": "80", "diastolic": "120"}, {
        "systolic": "Systolic (top number) must be higher than diastolic (bottom number)",
    }),
    (BP, "mmHg", {"systolic": "120", "diastolic": "120"}, {
        "systolic": "Systolic (top number) must be higher than diastolic",
    }),
    (BP, "mmHg", {"systolic": "abc", "diastolic": "80"}, {
        "systolic": "Systolic (top number) must be a number, like 120",
    }),
    (BP, "mmHg", {"systolic": "-120", "diastolic": "80"}, {"systolic": "Systolic (top number) must be a number"}),
    (BP, "mmHg", {"systolic": "120.5", "diastolic": "80"}, {
        "systolic": "Systolic (top number) must be a whole number, like 120",
    }),
    (BP, "mmHg", {"systolic": "", "diastolic": "80"}, {"systolic": "Enter systolic (top number)"}),
    (BP, "mmHg", {"systolic": "120/80", "diastolic": ""}, {
        "systolic": "Systolic (top number) must be a number",
        "diastolic": "Enter diastolic (bottom number)",
    }),
    # weight: 0, too heavy, too many decimals, impossible pounds, in every unit
    (WEIGHT, "kg", {"weight_kg": "0"}, {"weight_kg": "Weight must be between 0.5kg and 400kg"}),
    (WEIGHT, "kg", {"weight_kg": "401"}, {"weight_kg": "Weight must be between 0.5kg and 400kg"}),
    (WEIGHT, "kg", {"weight_kg": "70.55"}, {"weight_kg": "Weight must have no more than 1 decimal place"}),
    (WEIGHT, "kg", {"weight_kg": "seventy"}, {"weight_kg": "Weight must be a number, like 70.5"}),
    (WEIGHT, "lb", {"weight_lb": "0"}, {"weight_lb": "Weight must be between 1lb and 882lb"}),
    (WEIGHT, "st", {"weight_st": "11", "weight_st_lb": "15"}, {
        "weight_st_lb": "Pounds must be between 0 and 13.9 (there are 14 pounds in a stone)",
    }),
    (WEIGHT, "st", {"weight_st": "0", "weight_st_lb": "0"}, {
        "weight_st": "Weight must be between 1 pound and 63 stone",
    }),
    (WEIGHT, "st", {"weight_st": "64", "weight_st_lb": "0"}, {"weight_st": "Stones must be between 0 and 63"}),
    (WEIGHT, "stone", {"weight_st": "11"}, {"unit": "Choose the unit you measured in"}),
    # height
    (HEIGHT, "cm", {"height_cm": "17"}, {"height_cm": "Height must be between 30cm and 260cm"}),
    (HEIGHT, "cm", {"height_cm": "1720"}, {"height_cm": "Height must be between 30cm and 260cm"}),
    (HEIGHT, "ft", {"height_ft": "5", "height_in": "12"}, {
        "height_in": "Inches must be between 0 and 11.9 (there are 12 inches in a foot)",
    }),
    (HEIGHT, "ft", {"height_ft": "0", "height_in": "6"}, {"height_ft": "Feet must be between 1 and 8"}),
    (HEIGHT, "ft", {"height_ft": "8", "height_in": "7"}, {
        "height_ft": "Height must be between 1 foot and 8 feet 6 inches",
    }),
    # peak flow
    (PEAK, "L/min", {"peak_flow": "0"}, {"peak_flow": "Peak flow must be between 30 and 900L/min"}),
    (PEAK, "L/min", {"peak_flow": "4500"}, {"peak_flow": "Peak flow must be between 30 and 900L/min"}),
    # blood glucose: 0, 200 mmol/L (a mg/dL reading in the wrong unit), too high in mg/dL
    (GLUCOSE, "mmol/L", {"glucose_mmol": "0"}, {
        "glucose_mmol": "Blood glucose must be between 0.6 and 33.3mmol/L",
    }),
    (GLUCOSE, "mmol/L", {"glucose_mmol": "200"}, {
        "glucose_mmol": "Blood glucose must be between 0.6 and 33.3mmol/L. If your meter shows "
        "mg/dL, choose mg/dL as the unit",
    }),
    (GLUCOSE, "mmol/L", {"glucose_mmol": "5.85"}, {
        "glucose_mmol": "Blood glucose must have no more than 1 decimal place",
    }),
    (GLUCOSE, "mg/dL", {"glucose_mgdl": "5.8"}, {
        "glucose_mgdl": "Blood glucose must be a whole number, like 105",
    }),
    (GLUCOSE, "mg/dL", {"glucose_mgdl": "700"}, {
        "glucose_mgdl": "Blood glucose must be between 10 and 600mg/dL",
    }),
    # heart rate
    (HR, "bpm", {"heart_rate": "0"}, {"heart_rate": "Heart rate must be between 25 and 250 beats per minute"}),
    (HR, "bpm", {"heart_rate": "720"}, {"heart_rate": "Heart rate must be between 25 and 250 beats per minute"}),
]  # fmt: skip


@pytest.mark.parametrize(("measure", "unit", "typed", "stored"), ACCEPTED)
def test_range_and_unit_validation_table_accepts(measure, unit, typed, stored):
    parsed = V.parse(measure, unit, typed)
    assert parsed.errors == {}
    assert parsed.values == stored
    assert parsed.entered["unit"] == unit


@pytest.mark.parametrize(("measure", "unit", "typed", "messages"), REFUSED)
def test_range_and_unit_validation_table_refuses(measure, unit, typed, messages):
    parsed = V.parse(measure, unit, typed)
    assert set(parsed.errors) == set(messages), parsed.errors
    for name, start in messages.items():
        assert parsed.errors[name].startswith(start), parsed.errors[name]
    assert parsed.values == {}


def test_every_range_row_is_tested_at_both_bounds_and_just_outside():
    """Each row of the ranges table accepts its bounds and refuses what lies just beyond."""
    for r in RANGES:
        for value, ok in ((r.low, True), (r.high, True), (r.high + 1, False)):
            typed = _typed_for(r.measure, r.name, value)
            if typed is None:
                continue  # a combined value: tested in the table above
            unit, data = typed
            parsed = V.parse(r.measure, unit, data)
            assert (r.name not in parsed.errors) is ok, (r, value, parsed.errors)


def _typed_for(measure: Measure, name: str, value):
    for scheme in SCHEMES[measure]:
        names = [f.name for f in scheme.fields]
        if name in names:
            data = {n: "0" for n in names}
            if measure == Measure.BLOOD_PRESSURE:
                data = {"systolic": "300", "diastolic": "30"}
            data[name] = str(value)
            if name == "weight_st":
                data["weight_st_lb"] = "0" if value else "1"  # 0st 1lb is still a weight
            if name in ("weight_st_lb",):
                data["weight_st"] = "10"
            if name == "height_ft":
                data["height_in"] = "0"
            if name == "height_in":
                data["height_ft"] = "5"
            return scheme.unit, data
    return None


@pytest.mark.parametrize(
    ("measure", "values", "entered", "text"),
    [
        (BP, {"systolic": 128, "diastolic": 82}, {"unit": "mmHg"}, "128/82mmHg"),
        (WEIGHT, {"kg": 71.67}, {"unit": "st", "fields": {"weight_st": "11", "weight_st_lb": "4"}}, "11st 4lb"),
        (WEIGHT, {"kg": 69.85}, {"unit": "lb", "fields": {"weight_lb": "154"}}, "154lb"),
        (WEIGHT, {"kg": 70.5}, {"unit": "kg", "fields": {"weight_kg": "70.5"}}, "70.5kg"),
        (HEIGHT, {"cm": 172.7}, {"unit": "ft", "fields": {"height_ft": "5", "height_in": "8"}}, "5ft 8in"),
        (GLUCOSE, {"mmol_l": 5.83}, {"unit": "mg/dL", "fields": {"glucose_mgdl": "105"}}, "105mg/dL"),
        (GLUCOSE, {"mmol_l": 5.8}, {"unit": "mmol/L", "fields": {"glucose_mmol": "5.8"}}, "5.8mmol/L"),
        (HR, {"bpm": 72}, {"unit": "bpm"}, "72 beats per minute"),
        (PEAK, {"l_min": 450}, {"unit": "L/min"}, "450L/min"),
    ],
)  # fmt: skip
def test_a_reading_is_shown_as_the_patient_typed_it(measure, values, entered, text):
    assert V.entered_text(measure, values, entered) == text


@pytest.mark.parametrize(
    ("kg", "cm", "bmi"), [(70, 175, 22.9), (95.5, 170, 33.0), (50, 180, 15.4), (70.0, 175.0, 22.9)]
)
def test_bmi_is_weight_over_height_squared_to_one_decimal(kg, cm, bmi):
    assert V.bmi(kg, cm) == bmi


def test_weight_is_charted_in_the_unit_of_the_latest_reading():
    assert V.chart_unit(WEIGHT, "st") == "stone"
    assert V.in_chart_unit(WEIGHT, {"kg": 71.67}, "stone") == {"kg": 11.29}
    assert V.in_chart_unit(WEIGHT, {"kg": 69.85}, "lb") == {"kg": 154.0}
    assert V.in_chart_unit(GLUCOSE, {"mmol_l": 5.83}, "mg/dL") == {"mmol_l": 105.0}
    assert V.target_in_chart_unit(GLUCOSE, 7, "mg/dL") == 126.0
