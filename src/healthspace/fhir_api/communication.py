"""The seam for Communication resources (the Communicator's messages).

The ``messaging`` app registers a :class:`CommunicationSource` here in
``MessagingConfig.ready()`` (``messaging.fhir``); without one, Communication is left out of
the CapabilityStatement and its routes answer 404 (not supported).

The source's methods take the caller's ``Actor``, the patient id and the
``AccessContext`` (with the token's scope), ask ``access.decide``
(``Action.MESSAGE_VIEW``) and audit in the read's transaction, as every other read here
does, returning served FHIR Communication dicts. This module is the API's side: the
token's own limits (403), which patient a search is about, ``_include`` of the Patient,
and the Bundle page (docs/fhir-api.md, "Communication").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from healthspace.access.actors import Actor
from healthspace.access.context import AccessContext, Interaction, TokenScope
from healthspace.access.policy import Action
from healthspace.fhir_api.http import not_found
from healthspace.fhir_api.search import Search

RTYPE = "Communication"


@dataclass
class Found:
    """One page of a patient's Communications, and how many match in all."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


class CommunicationSource(Protocol):
    def search(
        self, *, actor: Actor, patient_id: uuid.UUID, context: AccessContext, search: Search
    ) -> Found:
        """The page ``search`` asks for (``_lastUpdated``, ``_id``, parameters, sort,
        ``_offset``/``_count``; ``_summary=count`` gives only the total), or nothing when
        decide() refuses (the refusal audited)."""
        ...

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


# --- the API's side -----------------------------------------------------------------------


def _context(who, interaction: Interaction) -> AccessContext:
    return AccessContext(token=TokenScope(who.grants, RTYPE, interaction))


def search(who, search: Search):
    """``GET Communication?...``: the one patient the search is about (a patient's app:
    their own; naming anyone else finds nothing, audited in that patient's trail)."""
    from healthspace.fhir_api import selectors as reads

    reads.require_token(who, Action.MESSAGE_VIEW, RTYPE, Interaction.SEARCH)
    page = reads.Page()
    patient_id = reads._target_patient(who, search, Action.MESSAGE_VIEW)
    if patient_id is None or _source is None:
        return page
    found = _source.search(
        actor=who.actor,
        patient_id=patient_id,
        context=_context(who, Interaction.SEARCH),
        search=search,
    )
    page.resources, page.total = found.resources, found.total
    if search.include_patient and page.resources:
        included = _patient_for_include(who, patient_id)
        if included is not None:
            page.included.append(included)
    return page


def _patient_for_include(who, patient_id: uuid.UUID) -> dict[str, Any] | None:
    """The Patient for ``_include=Communication:patient`` when the token may read it (it is
    read, decided and audited as a Patient read)."""
    from healthspace.fhir_api import selectors as reads
    from healthspace.fhir_api.http import ApiError

    if not reads.token_allows(who, Action.VIEW_DEMOGRAPHICS, "Patient", Interaction.READ):
        return None
    try:
        return reads.read_patient(who, str(patient_id))
    except ApiError:
        return None


def read(who, fhir_id: str) -> dict[str, Any]:
    from healthspace.fhir_api import selectors as reads

    reads.require_token(who, Action.MESSAGE_VIEW, RTYPE, Interaction.READ)
    resource = (
        _source.read(actor=who.actor, fhir_id=fhir_id, context=_context(who, Interaction.READ))
        if _source is not None
        else None
    )
    if resource is None:
        raise not_found(RTYPE)
    return resource


def for_everything(who, patient_id: uuid.UUID, since) -> list[dict[str, Any]]:
    """The patient's Communications for ``$everything`` when the token's scopes include
    them (``_since`` narrows them); nothing otherwise."""
    from healthspace.fhir_api import selectors as reads
    from healthspace.fhir_api.search import MAX, DateRange

    if _source is None or not reads.token_allows(who, Action.MESSAGE_VIEW, RTYPE, Interaction.READ):
        return []
    everything = Search(RTYPE, count=10**9, sort=("updated", False))
    if since is not None:
        everything.last_updated = [("ge", DateRange(since, MAX))]
    return _source.search(
        actor=who.actor,
        patient_id=patient_id,
        context=_context(who, Interaction.READ),
        search=everything,
    ).resources
