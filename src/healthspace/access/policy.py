"""The one policy decision point. Pure: no I/O, no ORM, no clock.

Every page, API route and command asks ``decide`` before touching patient data and
records the outcome with ``audit``. The clinician rules (legitimate relationship,
permission to view, consent) arrive with the access issue and extend this function;
nothing outside it decides access.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from healthspace.access.actors import Actor


class Action(StrEnum):
    VIEW_SCR = "scr.view"
    EXPORT_RECORD = "record.export"
    IMPORT_RECORDS = "record.import"
    # identity (accounts): decided in accounts.linkage.services.linkage_decision until the
    # access issue folds staff organisations into decide()
    LINKAGE_ISSUE = "linkage.issue"
    LINKAGE_VERIFY = "linkage.verify"
    LINKAGE_LOOKUP = "linkage.lookup"
    ACCOUNT_LINK_IN_PERSON = "account.link-in-person"
    ACCOUNT_STAFF_CREATE = "account.staff-create"
    ACCOUNT_STAFF_SETUP = "account.staff-setup"
    ACCOUNT_COMPROMISE_REPORTED = "account.compromise-reported"
    ACCOUNT_SECOND_FACTOR_CHANGED = "account.second-factor-changed"
    ACCOUNT_STAFF_PASSKEYS_RESET = "account.staff-passkeys-reset"


# Commands an operator runs on the server, and what each may do.
SYSTEM_PURPOSES: dict[str, frozenset[Action]] = {
    "import": frozenset({Action.IMPORT_RECORDS}),
    "export": frozenset({Action.EXPORT_RECORD}),
    "demo": frozenset({Action.IMPORT_RECORDS, Action.EXPORT_RECORD}),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    obligations: tuple[str, ...] = ()


DENY_NO_RELATIONSHIP = Decision(False, "no-legitimate-relationship")


def decide(
    actor: Actor,
    action: Action,
    patient_id: uuid.UUID | None,
    section: str | None = None,
) -> Decision:
    if actor.kind == "system":
        purpose = actor.id.removeprefix("cli:")
        if action in SYSTEM_PURPOSES.get(purpose, frozenset()):
            return Decision(True, f"operator-command:{purpose}", ("audit",))
        return Decision(False, "command-not-permitted")
    if actor.kind == "patient":
        if action in (Action.VIEW_SCR, Action.EXPORT_RECORD):
            if actor.patient_id is not None and patient_id == actor.patient_id:
                return Decision(True, "own-record", ("audit",))
            return DENY_NO_RELATIONSHIP
        return Decision(False, "not-permitted-for-patients")
    # Staff rules (relationship, permission to view, consent) come with the access issue:
    # until then staff and anonymous callers see nothing.
    return DENY_NO_RELATIONSHIP
