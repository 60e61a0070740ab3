"""The seam for Communication resources (the Communicator's messages).

The ``messaging`` app is built apart; until it registers a source here, Communication is
left out of the CapabilityStatement and its routes answer 404 (not supported).

What messaging provides (docs/fhir-api.md, "Communication"): a :class:`CommunicationSource`
whose methods take the caller's ``Actor`` and the patient id, ask ``access.decide``
(``Action.MESSAGE_VIEW``, with the ``AccessContext.token`` given) and audit in the read's
transaction, as every other read here does, returning served FHIR Communication dicts.
Register it in ``MessagingConfig.ready()`` with :func:`register`.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext


class CommunicationSource(Protocol):
    def search(
        self, *, actor: Actor, patient_id: uuid.UUID, context: AccessContext
    ) -> list[dict[str, Any]]: ...

    def read(
        self, *, actor: Actor, fhir_id: str, context: AccessContext
    ) -> dict[str, Any] | None: ...


_source: CommunicationSource | None = None


def register(source: CommunicationSource | None) -> None:
    global _source
    _source = source


def source() -> CommunicationSource | None:
    return _source


def enabled() -> bool:
    return _source is not None
