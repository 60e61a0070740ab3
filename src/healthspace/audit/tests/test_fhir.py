"""Audit events as FHIR AuditEvent resources: the BALP codes chosen, and nothing more.

Events are built unsaved (no database): the mapping is pure. Every resource is checked
against the R4B AuditEvent model, which R4 clients read unchanged.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from healthspace.audit import fhir
from healthspace.audit.fhir import ActorInfo, audit_event_resource
from healthspace.audit.models import AuditEvent

PATIENT = uuid.UUID("9b3f6a6e-0c1d-4e8a-9f2b-1a2b3c4d5e6f")
WHEN = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
HASH, PREV = "a" * 64, "b" * 64
CLINICIAN = ActorInfo(
    display="Dr Asha Patel",
    roles=("clinician",),
    organisation_ods="A81001",
    organisation_name="Riverside Surgery",
    user_ref="Practitioner/7f3c",
)


def event(
    action: str = "scr.view",
    *,
    outcome: str = "success",
    reason: str = "care-team",
    patient_id: uuid.UUID | None = PATIENT,
    actor: str = "staff:user:7",
    detail: dict[str, Any] | None = None,
    pk: int | None = 41,
) -> AuditEvent:
    chain_key = str(patient_id) if patient_id is not None else f"actor:{actor}"
    return AuditEvent(
        pk=pk,
        occurred_at=WHEN,
        patient_id=patient_id,
        actor=actor,
        action=action,
        outcome=outcome,
        reason=reason,
        detail=detail if detail is not None else {},
        chain_key=chain_key,
        seq=12,
        prev_hash=PREV,
        hash=HASH,
    )


def resource(e: AuditEvent, **kwargs: Any) -> dict[str, Any]:
    """The mapped resource, after checking that it is a valid FHIR AuditEvent."""
    r = audit_event_resource(e, **kwargs)
    FhirAuditEvent.model_validate(r)
    return r


def codes(concepts: list[dict[str, Any]], system: str) -> list[str]:
    return [c["code"] for cc in concepts for c in cc["coding"] if c["system"] == system]


def patient_entities(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in r["entity"] if e.get("role", {}).get("code") == "1"]


def entities_in(r: dict[str, Any], system: str) -> list[dict[str, Any]]:
    return [
        e for e in r["entity"] if e.get("what", {}).get("identifier", {}).get("system") == system
    ]


def requestor(r: dict[str, Any]) -> dict[str, Any]:
    (agent,) = [a for a in r["agent"] if a["requestor"]]
    return agent


DCM, REST = fhir.DCM, fhir.RESTFUL_INTERACTION

# action, outcome, reason, patient?, actor label -> type, subtype, action code, outcome,
# purposeOfEvent (v3-ActReason code or None)
CASES = [
    ("scr.view", "success", "care-team", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "0", "TREAT"),
    ("scr.view", "success", "permission-given", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "0", "TREAT"),
    ("scr.view", "success", "permission-given+self-claimed-relationship", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "0", "TREAT"),
    ("scr.view", "success", "patient-cannot-be-asked", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "0", "TREAT"),
    ("scr.view", "success", "emergency-access", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "0", "ETREAT"),
    ("scr.view", "success", "own-record", True, "patient:user:3",
     (DCM, "110110"), "read", "R", "0", "PATRQT"),
    ("scr.view", "success", "carer-grant", True, "patient:user:4",
     (DCM, "110110"), "read", "R", "0", "FAMRQT"),
    ("scr.view", "denied", "no-legitimate-relationship", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "4", None),
    ("scr.view", "denied", "record-hidden", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "4", None),
    ("demographics.view", "success", "care-team", True, "staff:user:8",
     (DCM, "110110"), "read", "R", "0", "TREAT"),
    ("consent.view", "success", "own-record", True, "patient:user:3",
     (DCM, "110110"), "read", "R", "0", "PATRQT"),
    ("consent.change", "allowed", "care-team:patient-request", True, "staff:user:7",
     (DCM, "110110"), "update", "U", "0", "TREAT"),
    ("consent.change", "allowed", "privacy-officer:privacy-officer", True, "staff:user:9",
     (DCM, "110110"), "update", "U", "0", "HOPERAT"),
    ("permission.record", "success", "care-team", True, "staff:user:7",
     (DCM, "110110"), "create", "C", "0", "TREAT"),
    ("relationship.claim", "success", "permission-given", True, "staff:user:7",
     (DCM, "110110"), "create", "C", "0", "TREAT"),
    ("emergency.access", "success", "emergency-access", True, "staff:user:7",
     (DCM, "110113"), "110127", "E", "0", "ETREAT"),
    ("record.export", "success", "own-record", True, "patient:user:3",
     (DCM, "110106"), None, "R", "0", "PATRQT"),
    ("record.export", "success", "operator-command:export", True, "system:cli:export",
     (DCM, "110106"), None, "R", "0", "HOPERAT"),
    ("record.import", "success", "operator-command:import", True, "system:cli:import",
     (DCM, "110107"), None, "C", "0", "HOPERAT"),
    ("record.import", "denied", "command-not-permitted", True, "system:cli:export",
     (DCM, "110107"), None, "C", "4", None),
    ("audit.view", "success", "own-record", True, "patient:user:3",
     (DCM, "110101"), "search-type", "E", "0", "PATRQT"),
    ("case.open", "success", "own-record", True, "patient:user:3",
     (DCM, "110113"), "create", "C", "0", "PATRQT"),
    ("case.decide", "success", "privacy-officer", True, "staff:user:9",
     (DCM, "110113"), "update", "U", "0", "HOPERAT"),
    ("patient.find", "success", "care-team", False, "staff:user:7",
     (fhir.AUDIT_EVENT_TYPE, "rest"), "search-type", "E", "0", "TREAT"),
    ("linkage.issue", "success", "care-team", True, "staff:user:8",
     (DCM, "110113"), "110137", "C", "0", "PATADMIN"),
    ("linkage.issue", "denied", "no-legitimate-relationship", True, "staff:user:8",
     (DCM, "110113"), "110137", "C", "4", None),
    ("linkage.lookup", "success", "care-team", True, "staff:user:8",
     (DCM, "110110"), "read", "R", "0", "PATADMIN"),
    ("linkage.verify", "success", "linkage-details-matched", True, "patient:user:3",
     (DCM, "110114"), None, "E", "0", "PATADMIN"),
    ("linkage.verify", "failed", "wrong-details", True, "patient:user:3",
     (DCM, "110114"), None, "E", "4", None),
    ("account.login", "success", "", False, "patient:user:3",
     (DCM, "110114"), "110122", "E", "0", None),
    ("account.login", "denied", "bad-credentials", False, "anonymous:anonymous",
     (DCM, "110114"), "110122", "E", "4", None),
    ("account.logout", "success", "", False, "staff:user:7",
     (DCM, "110114"), "110123", "E", "0", None),
    ("account.staff-create", "success", "operator-command", False, "system:cli:createstaff",
     (DCM, "110113"), "110136", "C", "0", "HOPERAT"),
    ("account.second-factor-changed", "success", "Your passkey was removed", False,
     "staff:user:7", (DCM, "110113"), "110137", "U", "0", None),
    ("account.compromise-reported", "case-opened", "reported-by-patient", True,
     "patient:user:3", (DCM, "110113"), None, "C", "0", "PATRQT"),
    ("account.password-reset", "success", "password-reset", False, "patient:user:3",
     (DCM, "110114"), None, "E", "0", None),
    ("scr.view", "error", "care-team", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "8", None),
    ("scr.view", "partially-done", "care-team", True, "staff:user:7",
     (DCM, "110110"), "read", "R", "4", None),
    ("something.new", "success", "care-team", True, "staff:user:7",
     (DCM, "110110"), None, "E", "0", "TREAT"),
    ("something.new", "success", "", False, "system:cli:demo",
     (DCM, "110100"), None, "E", "0", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "outcome", "reason", "has_patient", "actor", "type_", "subtype", "code",
     "outcome_code", "purpose"),
    CASES,
)  # fmt: skip
def test_codes_follow_balp(
    action, outcome, reason, has_patient, actor, type_, subtype, code, outcome_code, purpose
):
    e = event(
        action,
        outcome=outcome,
        reason=reason,
        patient_id=PATIENT if has_patient else None,
        actor=actor,
    )
    r = resource(e)

    assert (r["type"]["system"], r["type"]["code"]) == type_
    standard_subtypes = [s["code"] for s in r.get("subtype", []) if s["system"] != fhir.CS_ACTION]
    assert standard_subtypes == ([subtype] if subtype else [])
    # the HealthSpace action always travels as a subtype, so clients can filter on it
    assert {"system": fhir.CS_ACTION, "code": action} in r["subtype"]
    assert r["action"] == code
    assert r["outcome"] == outcome_code
    purposes = codes(r.get("purposeOfEvent", []), fhir.V3_ACT_REASON)
    assert purposes == ([purpose] if purpose else [])
    assert r["recorded"] == "2026-03-01T09:30:00.123456+00:00"

    patients = patient_entities(r)
    if has_patient:
        (p,) = patients
        assert p["what"] == {"reference": f"Patient/{PATIENT}"}
        assert p["type"] == {"system": fhir.AUDIT_ENTITY_TYPE, "code": "1", "display": "Person"}
    else:
        assert patients == []
        assert not any("Patient/" in json.dumps(ent) for ent in r["entity"])


@pytest.mark.parametrize(
    ("reason", "basis"),
    [
        ("care-team", ["care-team"]),
        ("operator-command:import", ["operator-command"]),
        ("permission-given+self-claimed-relationship",
         ["permission-given", "self-claimed-relationship"]),
        ("permission-given+made-up-suffix", ["permission-given"]),
        ("a reason somebody typed", []),
    ],
)  # fmt: skip
def test_only_known_reason_codes_are_published(reason, basis):
    r = resource(event(reason=reason))
    assert codes(r.get("purposeOfEvent", []), fhir.CS_ACCESS_BASIS) == basis


def test_a_refusal_publishes_no_purpose_and_no_reason():
    r = resource(event(outcome="denied", reason="patient-dissented"))
    assert "purposeOfEvent" not in r
    assert "patient-dissented" not in json.dumps(r)


def test_free_text_in_reason_or_detail_never_leaks():
    detail = {
        "note": "SECRET-NOTE patient typed this",
        "from": "SECRET-STATE-A",
        "to": "SECRET-STATE-B",
        "sections": ["allergies", "SECRET Section Name", 7, "medications"],
        "roles": ["clinician", "SECRET role with spaces"],
        "org": "SECRET org",
        "request_id": "SECRET request id with spaces",
        "items": "SECRET-ITEMS",
        "entries": 987654,
        "case_id": 123456789,
    }
    e = event(
        "account.second-factor-changed",
        reason="SECRET-SUBJECT your login changed",
        detail=detail,
    )
    text = json.dumps(resource(e))
    assert "SECRET" not in text
    assert "123456789" not in text
    assert "987654" not in text
    # what survives is the well-formed codes under known keys
    sections = entities_in(resource(e), fhir.CS_SCR_SECTION)
    assert [s["what"]["identifier"]["value"] for s in sections] == ["allergies", "medications"]


def test_only_known_detail_keys_appear():
    detail = {
        "sections": ["allergies"],
        "roles": ["clinician"],
        "org": "B82002",
        "request_id": "req-7f3c.1",
        "items": 5,
        "unknown_key": "kept-out",
    }
    r = resource(event(detail=detail))
    text = json.dumps(r)
    assert "kept-out" not in text
    assert "unknown_key" not in text
    for value in ("allergies", "clinician", "B82002", "req-7f3c.1"):
        assert value in text


def test_sections_become_system_object_entities():
    r = resource(event(detail={"sections": ["allergies", "medications", "allergies"]}))
    sections = entities_in(r, fhir.CS_SCR_SECTION)
    assert [s["what"]["identifier"]["value"] for s in sections] == ["allergies", "medications"]
    for s in sections:
        assert s["type"]["code"] == "2"
        assert s["type"]["system"] == fhir.AUDIT_ENTITY_TYPE


def test_a_single_section_key_is_read_too():
    r = resource(event(detail={"section": "problems"}))
    assert [s["what"]["identifier"]["value"] for s in entities_in(r, fhir.CS_SCR_SECTION)] == [
        "problems"
    ]


def test_chain_position_is_exposed():
    r = resource(event(), base_url="https://healthspace.example/fhir")
    (link,) = entities_in(r, fhir.ID_AUDIT_CHAIN)
    assert link["what"]["identifier"]["value"] == str(PATIENT)
    assert link["type"]["code"] == "2"
    assert {d["type"]: d["valueString"] for d in link["detail"]} == {
        "version": "hs-audit-v1",
        "seq": "12",
        "prev_hash": PREV,
        "hash": HASH,
    }


def test_chain_of_an_event_without_patient_is_the_actors():
    r = resource(event("account.login", patient_id=None))
    (link,) = entities_in(r, fhir.ID_AUDIT_CHAIN)
    assert link["what"]["identifier"]["value"] == "actor:staff:user:7"


def test_request_id_is_a_balp_transaction_entity():
    r = resource(event(detail={"request_id": "01HV7Z3-abc"}))
    (tx,) = [e for e in r["entity"] if e["type"]["system"] == fhir.BALP_ENTITY_TYPE]
    assert tx["type"]["code"] == "XrequestId"
    assert tx["what"]["identifier"]["value"] == "01HV7Z3-abc"


def test_no_request_id_no_transaction_entity():
    r = resource(event())
    assert not [e for e in r["entity"] if e["type"]["system"] == fhir.BALP_ENTITY_TYPE]


def test_items_are_counted_on_the_patient_entity():
    (p,) = patient_entities(resource(event(detail={"items": 4})))
    assert p["detail"] == [{"type": "items", "valueString": "4"}]


def test_a_patient_search_counts_results_without_the_query():
    r = resource(event("patient.find", patient_id=None, detail={"items": 2}))
    (query,) = [e for e in r["entity"] if e.get("role", {}).get("code") == "24"]
    assert query["detail"] == [{"type": "items", "valueString": "2"}]
    assert "query" not in query


def test_staff_requestor_and_organisation():
    r = resource(event(), actor=CLINICIAN, base_url="https://healthspace.example/fhir/")
    agent = requestor(r)
    assert agent["who"] == {
        "reference": "https://healthspace.example/fhir/Practitioner/7f3c",
        "display": "Dr Asha Patel",
    }
    assert codes(agent["role"], fhir.CS_ROLE) == ["clinician"]
    assert codes([agent["type"]], fhir.V3_PARTICIPATION_TYPE) == ["IRCP"]
    (org,) = [a for a in r["agent"] if not a["requestor"]]
    assert codes([org["type"]], fhir.V3_ROLE_CLASS) == ["PROV"]
    assert org["who"] == {
        "identifier": {"system": fhir.ODS_ORGANISATION, "value": "A81001"},
        "display": "Riverside Surgery",
    }
    assert r["entity"][0]["what"]["reference"] == (
        f"https://healthspace.example/fhir/Patient/{PATIENT}"
    )
    assert r["source"]["observer"]["display"] == "HealthSpace"
    assert r["source"]["type"][0]["code"] == "4"


def test_roles_and_organisation_at_the_time_win_over_todays():
    # The clinician has since moved practice: the audit shows where they worked then.
    r = resource(
        event(detail={"roles": ["clinician", "additional-information"], "org": "B82002"}),
        actor=CLINICIAN,
    )
    assert codes(requestor(r)["role"], fhir.CS_ROLE) == ["clinician", "additional-information"]
    (org,) = [a for a in r["agent"] if not a["requestor"]]
    # today's organisation name belongs to A81001, so it is not attached to B82002
    assert org["who"] == {"identifier": {"system": fhir.ODS_ORGANISATION, "value": "B82002"}}


def test_detail_roles_of_a_created_account_are_not_the_operators():
    r = resource(
        event(
            "account.staff-create",
            actor="system:cli:createstaff",
            patient_id=None,
            reason="operator-command",
            detail={"roles": ["privacy-officer"], "organisation": "A81001"},
        )
    )
    agent = requestor(r)
    assert "role" not in agent
    assert codes([agent["type"]], fhir.DCM) == ["110150"]
    assert agent["who"] == {"display": "HealthSpace operator command (createstaff)"}
    assert len(r["agent"]) == 1


def test_patient_on_their_own_record_is_typed_as_the_patient():
    me = ActorInfo(display="You", user_ref="acct-93a1")
    r = resource(event(actor="patient:user:3", reason="own-record"), actor=me)
    agent = requestor(r)
    assert codes([agent["type"]], fhir.V3_ROLE_CLASS) == ["PAT"]
    assert agent["who"] == {
        "identifier": {"system": fhir.ID_USER, "value": "acct-93a1"},
        "display": "You",
    }
    assert len(r["agent"]) == 1


def test_without_actor_info_the_requestor_is_described_neutrally():
    for label, display in [
        ("staff:user:7", "A member of staff"),
        ("patient:user:3", "A HealthSpace account holder"),
        ("anonymous:anonymous", "Anonymous"),
        ("system:cli:import", "HealthSpace operator command (import)"),
    ]:
        agent = requestor(resource(event(actor=label)))
        assert agent["who"] == {"display": display}
        # the internal label (and its user id) is not published as the agent
        assert label not in json.dumps(agent)


def test_a_change_is_made_by_an_agent():
    agent = requestor(resource(event("consent.change", reason="care-team:clinic")))
    assert codes([agent["type"]], fhir.V3_ROLE_CLASS) == ["AGNT"]


def test_resource_id_is_the_event_id_when_saved():
    assert resource(event(pk=77))["id"] == "77"
    assert "id" not in resource(event(pk=None))


def test_every_known_action_maps_to_a_valid_resource():
    for action in fhir.ACTIONS:
        for outcome in ("success", "denied"):
            r = resource(event(action, outcome=outcome))
            assert r["action"] == fhir.ACTIONS[action].action
