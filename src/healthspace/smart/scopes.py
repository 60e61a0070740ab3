"""SMART on FHIR scopes: parse them, narrow them to what a client may be granted, and say
in plain words what a patient is agreeing to. Pure: no ORM.

Forms accepted (SMART App Launch 2.x, with the 1.0 forms it keeps):

- ``patient/Observation.rs``, ``patient/*.cruds``, ``system/*.rs`` (v2: letters c r u d s,
  in that order);
- ``patient/*.read``, ``patient/Observation.write``, ``system/*.*`` (v1: read = rs,
  write = cud, * = cruds);
- ``openid``, ``fhirUser``, ``launch/patient``, ``offline_access``.

Not granted (left out of the token, as SMART lets a server do): ``user/`` scopes (a
clinician's app), granular scopes with a query (``patient/Observation.rs?category=...``),
``launch`` (EHR launch), ``online_access``, and anything unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from healthspace.access.context import Compartment

LETTERS = "cruds"
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_RESOURCE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]+)$")
IDENTITY_SCOPES = ("openid", "fhirUser")
PATIENT_CONTEXT = "launch/patient"
OFFLINE = "offline_access"
PATIENT_APP_EXTRAS = frozenset({*IDENTITY_SCOPES, PATIENT_CONTEXT, OFFLINE})
# The most a patient's app is ever granted: reading and searching, never writing.
PATIENT_APP_LETTERS = "rs"

Grant = tuple[str, str, str]  # (compartment, resource type or "*", letters)


def letters_of(permission: str) -> str | None:
    """``rs`` / ``read`` -> ``rs``; None when it is neither a v1 word nor v2 letters in order."""
    if permission in V1:
        return V1[permission]
    if permission and all(c in LETTERS for c in permission):
        ordered = "".join(c for c in LETTERS if c in permission)
        if ordered == permission:  # each letter once, in the order SMART requires
            return permission
    return None


def parse_resource_scope(scope: str) -> Grant | None:
    match = _RESOURCE.match(scope)
    if not match:
        return None
    compartment, rtype, permission = match.groups()
    letters = letters_of(permission)
    return (compartment, rtype, letters) if letters else None


def grants_of(scope_string: str) -> frozenset[Grant]:
    """The resource grants in a token's scope string (what ``access.decide`` checks)."""
    grants = set()
    for scope in scope_string.split():
        grant = parse_resource_scope(scope)
        if grant is not None and grant[0] in (Compartment.PATIENT, Compartment.SYSTEM):
            grants.add(grant)
    return frozenset(grants)


def _as_scope(compartment: str, rtype: str, letters: str, original: str) -> str:
    grant = parse_resource_scope(original)
    if grant is not None and grant[2] == letters:
        return original  # unchanged: keep the client's own spelling (v1 or v2)
    return f"{compartment}/{rtype}.{letters}"


def narrow_for_patient_app(requested: list[str]) -> list[str]:
    """What a patient app may be granted of what it asked: read and search of the
    patient's own record, who they are, the patient context and a refresh token."""
    out: list[str] = []
    for scope in requested:
        if scope in PATIENT_APP_EXTRAS:
            out.append(scope)
            continue
        grant = parse_resource_scope(scope)
        if grant is None or grant[0] != Compartment.PATIENT:
            continue
        letters = "".join(c for c in grant[2] if c in PATIENT_APP_LETTERS)
        if letters:
            out.append(_as_scope(grant[0], grant[1], letters, scope))
    return list(dict.fromkeys(out))


def narrow_for_system(requested: list[str], allowed: str) -> list[str]:
    """What a system client may be granted: the ``system/`` scopes it asked for, cut down
    to those its registration allows (an operator chose them)."""
    registered = [g for g in grants_of(allowed) if g[0] == Compartment.SYSTEM]
    out: list[str] = []
    for scope in requested:
        grant = parse_resource_scope(scope)
        if grant is None or grant[0] != Compartment.SYSTEM:
            continue
        _, rtype, letters = grant
        if rtype == "*":
            # a wildcard is granted only as far as a registered wildcard reaches; per-type
            # registrations are granted per type
            may = {c for _, t, ls in registered if t == "*" for c in ls}
            kept = "".join(c for c in letters if c in may)
            if kept:
                out.append(_as_scope("system", "*", kept, scope))
            for _, t, ls in registered:
                if t != "*":
                    extra = "".join(c for c in letters if c in ls and c not in kept)
                    if extra:
                        out.append(f"system/{t}.{extra}")
            continue
        may = {c for _, t, ls in registered if t in ("*", rtype) for c in ls}
        kept = "".join(c for c in letters if c in may)
        if kept:
            out.append(_as_scope("system", rtype, kept, scope))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Description:
    text: str
    hint: str = ""


# What each resource type is, as a patient reads it on the consent screen.
TYPE_WORDS: dict[str, str] = {
    "Patient": "Your name, date of birth, NHS number, address and contact details",
    "MedicationStatement": "Your medicines",
    "MedicationRequest": "Your prescriptions",
    "AllergyIntolerance": "Your allergies and bad reactions to medicines",
    "AdverseEvent": "Other bad reactions recorded about you",
    "Condition": "Your illnesses, conditions and diagnoses",
    "Observation": "Your test results and measurements, including readings you shared",
    "DiagnosticReport": "Your test reports",
    "Immunization": "Your vaccinations",
    "Procedure": "Operations and procedures you have had",
    "Encounter": "Your appointments and visits",
    "CarePlan": "Your care plans",
    "CareTeam": "Who is in your care team",
    "Practitioner": "The professionals involved in your care",
    "PractitionerRole": "The professionals involved in your care",
    "Consent": "Your choices about your Summary Care Record",
    "AuditEvent": "Who has looked at your record, and when",
    "Communication": "Your messages with your care team",
}


def describe(scopes: list[str]) -> list[Description]:
    """Plain words for a consent screen, one line per thing the app would get."""
    out: list[Description] = []
    types: list[str] = []
    everything = False
    for scope in scopes:
        grant = parse_resource_scope(scope)
        if grant is None:
            continue
        if grant[1] == "*":
            everything = True
        elif grant[1] not in types:
            types.append(grant[1])
    if everything:
        out.append(
            Description(
                "Everything in your record that apps can see",
                "Your medicines, allergies, illnesses, test results, vaccinations, "
                "your details, your choices about your record and who has looked at it.",
            )
        )
    else:
        out += [Description(TYPE_WORDS.get(t, t)) for t in types]
    if "openid" in scopes or "fhirUser" in scopes:
        out.append(Description("Who you are, so the app knows it is you"))
    if OFFLINE in scopes:
        out.append(
            Description(
                "Stay connected until you disconnect it",
                "The app can keep reading your record when you are not using it.",
            )
        )
    return out
