"""Who is asking. Built from the session (or the CLI), never from request parameters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

ActorKind = Literal["anonymous", "patient", "staff", "system", "client", "share-code"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    # For a patient: the one record that is theirs (set only for verified accounts).
    patient_id: uuid.UUID | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    # Staff: the ODS code of the organisation they work for, recorded with every event
    # (their organisation at the time, not whatever it is when someone reads the trail).
    organisation: str | None = None
    # Set when the request came with an OAuth access token: the registered client (app or
    # system) acting. decide() then also needs the token's scopes (AccessContext.token),
    # so a token can never do more than its scopes, whoever it acts for.
    client_id: str | None = None

    @classmethod
    def anonymous(cls) -> Actor:
        return cls("anonymous", "anonymous")

    @classmethod
    def system(cls, purpose: str) -> Actor:
        """A command run by an operator on the server (import, export, demo set-up)."""
        return cls("system", f"cli:{purpose}", roles=frozenset({f"system:{purpose}"}))

    @classmethod
    def client(cls, client_id: str, *, organisation: str | None) -> Actor:
        """A system client (SMART Backend Services): a GP system or clinical system
        registered by an operator for one organisation (its ODS code), with no user."""
        return cls(
            "client",
            client_id,
            roles=frozenset({"system-client"}),
            organisation=organisation,
            client_id=client_id,
        )

    @classmethod
    def share_code(cls, code_id: uuid.UUID) -> Actor:
        """A professional without a HealthSpace account who typed a patient's one-time
        share code (and their name and organisation) at /share/: they see that one
        patient's summary, read-only, for the code's minutes (consent.sharing)."""
        return cls("share-code", f"code:{code_id}", roles=frozenset({"share-code"}))

    def audit_label(self) -> str:
        return f"{self.kind}:{self.id}"
