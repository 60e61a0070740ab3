"""Reading values: typed in (strings, in the unit the patient chose) -> checked against the
ranges table -> canonical numbers; and back to words for display. Pure: no ORM.

Stored per reading (sealed): ``values`` in canonical units (blood pressure: systolic and
diastolic mmHg; weight kg; height cm; peak flow L/min; glucose mmol/L; heart rate beats
per minute) and ``entered``: the unit and the numbers as typed, for display.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from healthspace.organiser.measures import (
    CM_PER_INCH,
    GLUCOSE_MGDL_PER_MMOL,
    KG_PER_LB,
    RANGE_FOR,
    SCHEMES,
    Measure,
    Scheme,
)

NUMBER = re.compile(r"^\d+(\.\d+)?$")
# fields that may be left empty and count as 0 ("11 stone" means 11st 0lb)
OPTIONAL_PARTS = frozenset({"weight_st_lb", "height_in"})


@dataclass
class Parsed:
    values: dict[str, float | int] = field(default_factory=dict)
    entered: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def scheme_for(measure: Measure, unit: str) -> Scheme | None:
    return next((s for s in SCHEMES[measure] if s.unit == unit), None)


def _decimal(raw: str, name: str, measure: Measure, parsed: Parsed) -> Decimal | None:
    scheme_field = next(f for s in SCHEMES[measure] for f in s.fields if f.name == name)
    text = raw.strip().replace(" ", "")
    if not text:
        if name in OPTIONAL_PARTS:
            return Decimal(0)
        parsed.errors[name] = f"Enter {scheme_field.label[0].lower()}{scheme_field.label[1:]}"
        return None
    if not NUMBER.match(text):
        parsed.errors[name] = f"{scheme_field.label} must be a number, like {scheme_field.example}"
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already refused it
        parsed.errors[name] = f"{scheme_field.label} must be a number"
        return None
    places = len(text.split(".")[1]) if "." in text else 0
    if places > scheme_field.decimals:
        if scheme_field.decimals == 0:
            parsed.errors[name] = (
                f"{scheme_field.label} must be a whole number, like {scheme_field.example}"
            )
        else:
            word = "place" if scheme_field.decimals == 1 else "places"
            parsed.errors[name] = (
                f"{scheme_field.label} must have no more than {scheme_field.decimals} "
                f"decimal {word}"
            )
        return None
    return _in_range(value, measure, name, parsed)


def _in_range(value: Decimal, measure: Measure, name: str, parsed: Parsed) -> Decimal | None:
    limit = RANGE_FOR[(measure, name)]
    if not limit.low <= value <= limit.high:
        parsed.errors[name] = limit.message
        return None
    return value


def _round(value: Decimal, places: int) -> float | int:
    q = Decimal(1).scaleb(-places)
    rounded = value.quantize(q, rounding=ROUND_HALF_UP)
    return int(rounded) if places == 0 else float(rounded)


def parse(measure: Measure, unit: str, data: Mapping[str, Any]) -> Parsed:
    """Check the typed values of one reading; ``errors`` maps a field name to its message."""
    parsed = Parsed()
    scheme = scheme_for(measure, unit)
    if scheme is None:
        parsed.errors["unit"] = "Choose the unit you measured in"
        return parsed
    raw = {f.name: str(data.get(f.name) or "") for f in scheme.fields}
    numbers = {name: _decimal(text, name, measure, parsed) for name, text in raw.items()}
    parsed.entered = {"unit": unit, "fields": {k: v.strip() for k, v in raw.items()}}
    if parsed.errors:
        if (
            measure == Measure.BLOOD_GLUCOSE
            and unit == "mmol/L"
            and "glucose_mmol" in parsed.errors
        ):
            try:
                typed = Decimal(raw["glucose_mmol"].strip())
            except InvalidOperation:
                typed = None
            if typed is not None and Decimal("33.3") < typed <= Decimal(600):
                parsed.errors["glucose_mmol"] += (
                    ". If your meter shows mg/dL, choose mg/dL as the unit"
                )
        return parsed
    n = {k: v for k, v in numbers.items() if v is not None}
    if measure == Measure.BLOOD_PRESSURE:
        if n["systolic"] <= n["diastolic"]:
            parsed.errors["systolic"] = (
                "Systolic (top number) must be higher than diastolic (bottom number). "
                "Check you have not swapped them"
            )
            return parsed
        parsed.values = {"systolic": int(n["systolic"]), "diastolic": int(n["diastolic"])}
    elif measure == Measure.WEIGHT:
        if unit == "kg":
            kg = n["weight_kg"]
        elif unit == "lb":
            kg = n["weight_lb"] * KG_PER_LB
        else:
            total_lb = n["weight_st"] * 14 + n["weight_st_lb"]
            if _in_range(total_lb, measure, "weight_st_total", parsed) is None:
                parsed.errors["weight_st"] = parsed.errors.pop("weight_st_total")
                return parsed
            kg = total_lb * KG_PER_LB
        parsed.values = {"kg": _round(kg, 2)}
    elif measure == Measure.HEIGHT:
        if unit == "cm":
            cm = n["height_cm"]
        else:
            inches = n["height_ft"] * 12 + n["height_in"]
            if _in_range(inches, measure, "height_in_total", parsed) is None:
                parsed.errors["height_ft"] = parsed.errors.pop("height_in_total")
                return parsed
            cm = inches * CM_PER_INCH
        parsed.values = {"cm": _round(cm, 1)}
    elif measure == Measure.PEAK_FLOW:
        parsed.values = {"l_min": int(n["peak_flow"])}
    elif measure == Measure.BLOOD_GLUCOSE:
        mmol = n["glucose_mmol"] if unit == "mmol/L" else n["glucose_mgdl"] / GLUCOSE_MGDL_PER_MMOL
        parsed.values = {"mmol_l": _round(mmol, 2)}
    elif measure == Measure.HEART_RATE:
        parsed.values = {"bpm": int(n["heart_rate"])}
    return parsed


# --- back to words ----------------------------------------------------------------------


def _g(value: float | int | Decimal | str) -> str:
    number = Decimal(str(value))
    text = format(number.normalize(), "f")
    return text


def entered_text(measure: Measure, values: Mapping[str, Any], entered: Mapping[str, Any]) -> str:
    """The reading as the patient typed it: "128/82mmHg", "11st 4lb", "105mg/dL"."""
    unit = entered.get("unit")
    typed = entered.get("fields") or {}
    if measure == Measure.BLOOD_PRESSURE:
        return f"{values['systolic']}/{values['diastolic']}mmHg"
    if measure == Measure.WEIGHT:
        if unit == "st":
            return f"{_g(typed.get('weight_st') or 0)}st {_g(typed.get('weight_st_lb') or 0)}lb"
        if unit == "lb":
            return f"{_g(typed['weight_lb'])}lb"
        return f"{_g(values['kg'])}kg"
    if measure == Measure.HEIGHT:
        if unit == "ft":
            return f"{_g(typed.get('height_ft') or 0)}ft {_g(typed.get('height_in') or 0)}in"
        return f"{_g(values['cm'])}cm"
    if measure == Measure.PEAK_FLOW:
        return f"{values['l_min']}L/min"
    if measure == Measure.BLOOD_GLUCOSE:
        if unit == "mg/dL":
            return f"{_g(typed['glucose_mgdl'])}mg/dL"
        return f"{_g(_round(Decimal(str(values['mmol_l'])), 1))}mmol/L"
    return f"{values['bpm']} beats per minute"


def canonical_text(measure: Measure, values: Mapping[str, Any]) -> str:
    """In the stored unit: what the care team sees and the CSV holds."""
    if measure == Measure.BLOOD_PRESSURE:
        return f"{values['systolic']}/{values['diastolic']}mmHg"
    if measure == Measure.WEIGHT:
        return f"{_g(_round(Decimal(str(values['kg'])), 1))}kg"
    if measure == Measure.HEIGHT:
        return f"{_g(values['cm'])}cm"
    if measure == Measure.PEAK_FLOW:
        return f"{values['l_min']}L/min"
    if measure == Measure.BLOOD_GLUCOSE:
        return f"{_g(_round(Decimal(str(values['mmol_l'])), 1))}mmol/L"
    return f"{values['bpm']} beats per minute"


def bmi(kg: float, cm: float) -> float:
    """Body mass index, kg/m2, to 1 decimal place."""
    metres = Decimal(str(cm)) / 100
    return float(_round(Decimal(str(kg)) / (metres * metres), 1))


def form_initial(entered: Mapping[str, Any]) -> dict[str, str]:
    """The edit form's boxes, as the patient typed them."""
    return {"unit": entered.get("unit", ""), **(entered.get("fields") or {})}


# Chart units: a measure is drawn in the unit of the patient's latest reading, so someone
# who weighs themselves in stones sees stones.
def chart_unit(measure: Measure, latest_unit: str | None) -> str:
    if measure == Measure.WEIGHT:
        return {"st": "stone", "lb": "lb"}.get(latest_unit or "", "kg")
    if measure == Measure.BLOOD_GLUCOSE:
        return "mg/dL" if latest_unit == "mg/dL" else "mmol/L"
    if measure == Measure.HEIGHT:
        return "cm"
    if measure == Measure.PEAK_FLOW:
        return "L/min"
    if measure == Measure.HEART_RATE:
        return "beats per minute"
    return "mmHg"


def in_chart_unit(measure: Measure, values: Mapping[str, Any], unit: str) -> dict[str, float]:
    """The reading's values (BP: two) in the chart's unit."""
    if measure == Measure.BLOOD_PRESSURE:
        return {"systolic": float(values["systolic"]), "diastolic": float(values["diastolic"])}
    if measure == Measure.WEIGHT:
        kg = Decimal(str(values["kg"]))
        if unit == "stone":
            return {"kg": float(_round(kg / KG_PER_LB / 14, 2))}
        if unit == "lb":
            return {"kg": float(_round(kg / KG_PER_LB, 1))}
        return {"kg": float(kg)}
    if measure == Measure.BLOOD_GLUCOSE:
        mmol = Decimal(str(values["mmol_l"]))
        if unit == "mg/dL":
            return {"mmol_l": float(_round(mmol * GLUCOSE_MGDL_PER_MMOL, 0))}
        return {"mmol_l": float(_round(mmol, 1))}
    return {k: float(v) for k, v in values.items()}


def target_in_chart_unit(measure: Measure, value: float, unit: str) -> float:
    if measure == Measure.BLOOD_GLUCOSE and unit == "mg/dL":
        return float(_round(Decimal(str(value)) * GLUCOSE_MGDL_PER_MMOL, 0))
    return value
