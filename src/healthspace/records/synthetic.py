"""A small synthetic population, for demos and tests on machines without Synthea data.

Deterministic for a seed. NHS numbers come from the test range; codes are SNOMED CT
and dm+d, as an English GP system would send them.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from healthspace.core import nhs_numbers

NS = uuid.UUID("0b8e3c1e-6a43-4f0e-9a38-1c8f3fcb1f55")
SNOMED = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"
SOURCE = "urn:healthspace:synthetic"

GIVEN = ["Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Priya", "Mohammed", "Grace", "Jack"]
FAMILY = [
    "Smith",
    "Jones",
    "Patel",
    "Williams",
    "Brown",
    "Khan",
    "Taylor",
    "Davies",
    "Evans",
    "Ali",
]
PRACTICES = [("Y00001", "Riverside Medical Practice"), ("Y00002", "Hillview Surgery")]
ALLERGIES = [
    ("91936005", "Allergy to penicillin", "247472004", "Hives", "allergy"),
    ("300916003", "Latex allergy", "271807003", "Rash", "allergy"),
    ("293586001", "Adverse reaction to aspirin", "422587007", "Nausea", "intolerance"),
]
MEDICINES = [
    ("39720311000001101", "Amlodipine 5mg tablets", "One tablet once a day", "continuous"),
    (
        "42206011000001101",
        "Metformin 500mg tablets",
        "One tablet twice a day with food",
        "continuous",
    ),
    (
        "39113611000001102",
        "Amoxicillin 500mg capsules",
        "One capsule three times a day for 7 days",
        "acute",
    ),
    ("322236009", "Paracetamol 500mg tablets", "Two tablets up to four times a day", "acute"),
]
PROBLEMS = [
    ("38341003", "Hypertension"),
    ("44054006", "Type 2 diabetes mellitus"),
    ("195967001", "Asthma"),
]
VACCINES = [
    ("1324681000000101", "COVID-19 vaccination"),
    ("822851000000102", "Seasonal influenza vaccination"),
]


def _id(*parts: object) -> str:
    return str(uuid.uuid5(NS, "/".join(str(p) for p in parts)))


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def patient_bundle(index: int, *, seed: int = 2026) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{index}")
    pid = _id(seed, index, "Patient")
    ods, practice_name = PRACTICES[index % len(PRACTICES)]
    org_id = _id("Organization", ods)
    gp_id = _id("Practitioner", ods)
    today = date(2026, 11, 1)
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 70))
    nhs = nhs_numbers.synthetic_for(f"synthetic:{seed}:{index}")
    patient_ref = {"reference": f"urn:uuid:{pid}"}
    gp_ref = {"reference": f"urn:uuid:{gp_id}"}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Organization",
            "id": org_id,
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}
            ],
            "name": practice_name,
        },
        {
            "resourceType": "Practitioner",
            "id": gp_id,
            "name": [
                {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "prefix": ["Dr"]}
            ],
        },
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": nhs_numbers.NHS_NUMBER_SYSTEM, "value": nhs}],
            "name": [
                {
                    "use": "official",
                    "family": FAMILY[index % 10],
                    "given": [GIVEN[(index * 3) % 10]],
                }
            ],
            "gender": rng.choice(["female", "male"]),
            "birthDate": birth.isoformat(),
            "generalPractitioner": [{"reference": f"urn:uuid:{org_id}"}],
        },
    ]
    for n, (code, text, r_code, r_text, kind) in enumerate(
        rng.sample(ALLERGIES, rng.randint(1, 2))
    ):
        resources.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": _id(pid, "allergy", n),
                "clinicalStatus": _concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "type": kind,
                "code": _concept(SNOMED, code, text),
                "patient": patient_ref,
                "recordedDate": (today - timedelta(days=rng.randrange(30, 3000))).isoformat(),
                "recorder": gp_ref,
                "reaction": [
                    {"manifestation": [_concept(SNOMED, r_code, r_text)], "severity": "moderate"}
                ],
            }
        )
    for n, (code, text, dose, course) in enumerate(rng.sample(MEDICINES, 3)):
        resources.append(
            {
                "resourceType": "MedicationRequest",
                "id": _id(pid, "med", n),
                "status": "active" if course == "continuous" or n == 0 else "completed",
                "intent": "order",
                "courseOfTherapyType": _concept(
                    "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                    course,
                    "Continuous long term therapy"
                    if course == "continuous"
                    else "Short course (acute) therapy",
                ),
                "medicationCodeableConcept": _concept(DMD, code, text),
                "subject": patient_ref,
                "authoredOn": (today - timedelta(days=rng.randrange(5, 700))).isoformat(),
                "requester": gp_ref,
                "dosageInstruction": [{"text": dose}],
            }
        )
    for n, (code, text) in enumerate(rng.sample(PROBLEMS, rng.randint(1, 2))):
        resources.append(
            {
                "resourceType": "Condition",
                "id": _id(pid, "problem", n),
                "clinicalStatus": _concept(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
                ),
                "code": _concept(SNOMED, code, text),
                "subject": patient_ref,
                "recordedDate": (today - timedelta(days=rng.randrange(100, 5000))).isoformat(),
                "recorder": gp_ref,
            }
        )
    for n in range(3):
        when = today - timedelta(days=90 * n + rng.randrange(0, 30))
        resources.append(
            {
                "resourceType": "Observation",
                "id": _id(pid, "bp", n),
                "status": "final",
                "code": _concept(SNOMED, "75367002", "Blood pressure"),
                "subject": patient_ref,
                "effectiveDateTime": when.isoformat(),
                "performer": [gp_ref],
                "component": [
                    {
                        "code": _concept(SNOMED, "72313002", "Systolic arterial pressure"),
                        "valueQuantity": {"value": rng.randint(110, 160), "unit": "mmHg"},
                    },
                    {
                        "code": _concept(SNOMED, "1091811000000102", "Diastolic arterial pressure"),
                        "valueQuantity": {"value": rng.randint(65, 100), "unit": "mmHg"},
                    },
                ],
            }
        )
    for n, (code, text) in enumerate(VACCINES):
        resources.append(
            {
                "resourceType": "Immunization",
                "id": _id(pid, "vaccine", n),
                "status": "completed",
                "vaccineCode": _concept(SNOMED, code, text),
                "patient": patient_ref,
                "occurrenceDateTime": (today - timedelta(days=rng.randrange(30, 400))).isoformat(),
                "performer": [{"actor": {"reference": f"urn:uuid:{org_id}"}}],
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
            for r in resources
        ],
    }


def population(count: int, *, seed: int = 2026) -> list[dict[str, Any]]:
    return [patient_bundle(i, seed=seed) for i in range(count)]
