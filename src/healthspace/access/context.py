"""What decide() needs to know besides who asks: the facts a guard gathers (consent state,
relationship, permission to view) before asking. Names live here, in one module."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ConsentState(StrEnum):
    IMPLIED = "implied"  # default: core SCR exists (implied consent)
    CORE_AND_ADDITIONAL = "core-and-additional"  # express consent to core + additional
    CORE_ONLY = "core-only"  # express consent to core only
    DISSENT = "dissent"  # express dissent before creation: no SCR
    HIDDEN = "hidden"  # staff see only that the record is hidden
    DELETION_REQUESTED = "deletion-requested"
    DELETED = "deleted"


class Relationship(StrEnum):
    CARE_TEAM = "care-team"  # the patient's registered practice (or a team treating them)
    SELF_CLAIMED = "self-claimed"  # claimed with a reason: expires, alerts the privacy officer
    NONE = "none"


class Permission(StrEnum):
    """Permission to view, asked every time (per patient per session)."""

    NOT_ASKED = "not-asked"
    GIVEN = "given"
    REFUSED = "refused"
    CANNOT_BE_ASKED = "cannot-be-asked"  # e.g. unconscious: best interest, recorded
    EMERGENCY = "emergency"  # emergency access with a reason: overrides, alerts


class Interaction(StrEnum):
    """What an API request does, in SMART v2's letters (scopes such as patient/*.rs)."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


class Compartment(StrEnum):
    """Whose data a SMART scope reaches: the token's own patient, or what a system client
    may see. (``user/`` scopes, a clinician's app, are not offered.)"""

    PATIENT = "patient"
    SYSTEM = "system"


@dataclass(frozen=True)
class TokenScope:
    """An OAuth access token's SMART scopes, and what the request in hand does.

    ``grants`` are (compartment, resource type or "*", interaction letters), parsed from the
    scope strings by ``smart.scopes``; decide() allows the request only when one grant of
    the actor's compartment covers ``resource_type`` and ``interaction``.
    """

    grants: frozenset[tuple[str, str, str]]
    resource_type: str
    interaction: Interaction

    def permits(self, compartment: Compartment) -> bool:
        return any(
            c == compartment and t in ("*", self.resource_type) and self.interaction in letters
            for c, t, letters in self.grants
        )


@dataclass(frozen=True)
class AccessContext:
    consent: ConsentState = ConsentState.IMPLIED
    relationship: Relationship = Relationship.NONE
    permission: Permission = Permission.NOT_ASKED
    # a carer's grant or a proxy's approval: the sections shared with them (SCR section
    # names, and "organiser" / "messages" for the account's own spaces); the guard
    # gathers only a live grant (accepted, unexpired, unrevoked) of this grantee
    granted_sections: frozenset[str] = field(default_factory=frozenset)
    # the patient paused all sharing ("I'm being pressured"): no grant, proxy or share
    # code opens anything, and no new one can be made
    sharing_frozen: bool = False
    # a share-code viewer: the guard found the code used by this viewer's session, not
    # cancelled, within its viewing minutes
    share_code_live: bool = False
    # Portal data (health organiser) belongs to an account, verified or not: the audit
    # label of the account that owns the rows asked about ("user:<pk>"). A selector
    # scopes its query by the owner and says so here; decide() compares it to the actor.
    portal_owner: str | None = None
    # Staff: the member of staff works at the organisation the thing asked about belongs
    # to (a message thread's care team, the practice a correction request went to).
    team_member: bool = False
    # The request came with an OAuth access token (FHIR API): its scopes and what it does.
    token: TokenScope | None = None
