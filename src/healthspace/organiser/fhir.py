"""A shared reading as a FHIR R4 Observation, recorded by the patient.

status final; category vital-signs; LOINC code; UCUM units; subject and performer the
Patient; effectiveDateTime the time the reading was taken; the patient's note as
``note``. Blood pressure is the LOINC panel 85354-9 with systolic (8480-6) and diastolic
(8462-4) components, as the FHIR vital signs profile has it. A weight shared when a
height is known brings a BMI Observation (39156-5) with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from healthspace.organiser.measures import BMI_LOINC, INFO, Coding, Measure

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ],
    "text": "Vital signs",
}


def _code(coding: Coding, text: str) -> dict[str, Any]:
    return {
        "coding": [{"system": LOINC, "code": coding.code, "display": coding.display}],
        "text": text,
    }


def _quantity(value: float | int, unit: str, ucum: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": ucum}


def observation(
    *,
    patient_id: uuid.UUID,
    measure: Measure,
    values: dict[str, Any],
    taken_at: datetime,
    note: str,
) -> dict[str, Any]:
    spec = INFO[measure]
    patient = {"reference": f"Patient/{patient_id}"}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [CATEGORY],
        "code": _code(spec.loinc, spec.title),
        "subject": patient,
        "effectiveDateTime": taken_at.isoformat(timespec="seconds"),
        "performer": [dict(patient)],
    }
    if measure == Measure.BLOOD_PRESSURE:
        resource["component"] = [
            {
                "code": _code(coding, label),
                "valueQuantity": _quantity(values[key], "mmHg", "mm[Hg]"),
            }
            for key, label, coding in spec.components
            if coding is not None
        ]
    else:
        ((key, _label, _coding),) = spec.components
        resource["valueQuantity"] = _quantity(values[key], spec.canonical_unit, spec.ucum)
    if note:
        resource["note"] = [{"text": note}]
    return resource


def bmi_observation(*, patient_id: uuid.UUID, bmi: float, taken_at: datetime) -> dict[str, Any]:
    patient = {"reference": f"Patient/{patient_id}"}
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [CATEGORY],
        "code": _code(BMI_LOINC, "Body mass index (BMI)"),
        "subject": patient,
        "effectiveDateTime": taken_at.isoformat(timespec="seconds"),
        "performer": [dict(patient)],
        "valueQuantity": _quantity(bmi, "kg/m2", "kg/m2"),
        "note": [
            {
                "text": "Worked out by HealthSpace from the weight and the latest height the patient recorded."
            }
        ],
    }
