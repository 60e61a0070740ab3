"""Reads of the FHIR API. Each asks ``access.decide`` (through ``audit.access_checked``,
which audits a refusal) and writes its audit event in the read's transaction, as the
pages do (``records.selectors.scr_for``): the API adds no second way in.

The facts decide() needs come from the token (``smart.tokens``) and, for a system
client, from the patient's row (registered practice: the client's organisation or not)
and their consent. A token's own limits (scopes, what kind of client it is) answer 403;
a refusal about a patient looks like absence: 404 for a read, nothing for a search.

Query counts are constant per request, whatever the number of items: the token (1),
the patient (1), consent (1, system clients), the data key (1), the items (1-2), the
references between items (1), the audit event (3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from healthspace.access.context import (
    AccessContext,
    ConsentState,
    Interaction,
    Relationship,
    TokenScope,
)
from healthspace.access.policy import Action, decide, token_refusal
from healthspace.audit.fhir import ActorInfo, audit_event_resource
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import organisation_names
from healthspace.audit.services import access_checked, audit_record
from healthspace.consent.models import ConsentRecord
from healthspace.consent.selectors import consent_state_for
from healthspace.core import sql
from healthspace.fhir_api import ids
from healthspace.fhir_api import resources as served
from healthspace.fhir_api.http import ApiError, not_found
from healthspace.fhir_api.search import LAST_UPDATED_BOUNDS, PATIENT_REFERENCE, Search, matches
from healthspace.records.importer import PATIENT_PURPOSE, item_purpose
from healthspace.records.models import Origin, Patient, PatientIdentifier, ScrItem, ScrItemVersion
from healthspace.records.models import Section as ScrSection
from healthspace.smart.tokens import TokenActor
from healthspace.vault import services as vault
from healthspace.vault.crypto import VaultError

DEMOGRAPHICS = "demographics"
ALL_SECTIONS: tuple[str, ...] = tuple(ScrSection.values)
ITEM_FIELDS = (
    "id",
    "patient_id",
    "section",
    "resource_type",
    "identity",
    "origin",
    "version",
    "recorded_at",
    "source_system",
    "payload",
    "updated_at",
    "created_at",
)


@dataclass
class Page:
    resources: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    included: list[dict[str, Any]] = field(default_factory=list)


def _scope(who: TokenActor, rtype: str, interaction: Interaction) -> TokenScope:
    return TokenScope(who.grants, rtype, interaction)


def token_allows(who: TokenActor, action: Action, rtype: str, interaction: Interaction) -> bool:
    context = AccessContext(token=_scope(who, rtype, interaction))
    return token_refusal(who.actor, action, context) is None


def require_token(who: TokenActor, action: Action, rtype: str, interaction: Interaction) -> None:
    """403 when the token may not do this at all (its scopes; what kind of client it is).
    The refusal is audited, in the patient's trail for a patient's app."""
    context = AccessContext(token=_scope(who, rtype, interaction))
    if token_refusal(who.actor, action, context) is None:
        return
    access_checked(actor=who.actor, action=action, patient_id=who.actor.patient_id, context=context)
    raise ApiError(
        403,
        "forbidden",
        f"This token does not allow {interaction.name.lower()} of {rtype}.",
    )


@dataclass(frozen=True)
class Facts:
    patient: Patient
    consent: ConsentState
    relationship: Relationship

    def context(self, who: TokenActor, rtype: str, interaction: Interaction) -> AccessContext:
        return AccessContext(
            consent=self.consent,
            relationship=self.relationship,
            token=_scope(who, rtype, interaction),
        )


def _facts(who: TokenActor, patient_id: uuid.UUID) -> Facts | None:
    """What decide() needs about this patient for this caller (1-2 indexed reads)."""
    found = sql.objects(  # plain SQL: every read asks it (docs/performance.md)
        Patient,
        (
            "id",
            "nhs_number",
            "birth_date",
            "resource",
            "version",
            "updated_at",
            "registered_practice",
        ),
        where={"pk": patient_id},
        related={"registered_practice": ("ods_code", "name")},
        prepared=True,
    )
    if not found:
        return None
    patient = found[0]
    if not who.is_system:
        # a patient's own record whatever its consent (hiding and dissent limit staff)
        return Facts(patient, ConsentState.IMPLIED, Relationship.NONE)
    practice = patient.registered_practice
    registered_here = (
        practice is not None
        and practice.ods_code is not None
        and practice.ods_code == who.actor.organisation
    )
    return Facts(
        patient,
        consent_state_for(patient_id=patient.id),
        Relationship.CARE_TEAM if registered_here else Relationship.NONE,
    )


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if len(text) in (32, 36) else None
    except (ValueError, TypeError, AttributeError):
        return None


def _detail(who: TokenActor, interaction: str, rtype: str, **more: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {"via": "fhir", "client": who.client_id, "interaction": interaction}
    detail["type"] = rtype
    if who.is_system and who.actor.organisation:
        detail["org"] = who.actor.organisation
    detail.update(more)
    return detail


def _cipher(patient_id: uuid.UUID):
    try:
        return vault.cipher_for(patient_id=patient_id)
    except VaultError:
        return None  # the record was crypto-shredded: nothing to serve


def _open(cipher, item) -> dict[str, Any]:
    content = cipher.open_json(item.payload, purpose=item_purpose(item.identity))
    return content


def _resolved(rows: list[tuple[Any, served.Copied]]) -> dict[int, dict[str, str]]:
    """For each item, its references to other items of the same record -> our ids."""
    wanted: dict[tuple[uuid.UUID, str], list[tuple[int, str]]] = {}
    for item, copy in rows:
        for rel in copy.relatives():
            if rel.startswith("Patient/"):
                continue
            key = (item.patient_id, served.identity_of(item.source_system, rel))
            wanted.setdefault(key, []).append((id(item), rel))
    out: dict[int, dict[str, str]] = {}
    if not wanted:
        return out
    found = sql.objects(  # plain SQL (core.sql.objects): every read that serves items
        ScrItem,
        ("id", "patient_id", "identity", "resource_type"),
        where={
            "patient_id__in": sorted({pid for pid, _ in wanted}),
            "identity__in": sorted({identity for _, identity in wanted}),
        },
    )
    for item in found:
        for holder, rel in wanted.get((item.patient_id, item.identity), []):
            if rel.split("/")[0] == item.resource_type:
                out.setdefault(holder, {})[rel] = f"{item.resource_type}/{ids.item_id(item.pk)}"
    return out


def _serve_rows(rows: list[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    copies = [(item, served.copied(resource)) for item, resource in rows]
    resolved = _resolved(copies)
    return [
        served.served_item(
            copy,
            item_pk=item.pk,
            patient_id=item.patient_id,
            version=item.version,
            last_updated=item.updated_at,
            patient_recorded=item.origin == Origin.PATIENT,
            resolved=resolved.get(id(item)),
        )
        for item, copy in copies
    ]


def _patient_resource(patient: Patient, cipher: Any = None) -> dict[str, Any] | None:
    """The patient as served; ``cipher``: the patient's, when the caller has it already
    (one key store read fewer)."""
    cipher = cipher or _cipher(patient.id)
    if cipher is None:
        return None
    resource = cipher.open_json(patient.resource, purpose=PATIENT_PURPOSE)
    return served.served_patient(resource, patient)


# --- which patient a search is about ---------------------------------------------------


def _target_patient(who: TokenActor, search: Search, action: Action) -> uuid.UUID | None:
    """The one patient a search may reach: a patient app's own (naming anyone else finds
    nothing; the attempt is audited in that patient's trail); the one patient a system
    client names (it must name one)."""
    if who.is_system:
        if len(search.patients) != 1:
            raise ApiError(
                400,
                "required",
                "A system client's search names one patient (patient=<id>); "
                "use $export for many patients.",
                expression=["patient"],
            )
        return _uuid(search.patients[0])
    own = who.actor.patient_id
    named = {p for p in search.patients}
    if not named or named == {str(own)}:
        return own
    for other in named - {str(own)}:
        pid = _uuid(other)
        if pid is not None and Patient.objects.filter(pk=pid).exists():
            access_checked(
                actor=who.actor,
                action=action,
                patient_id=pid,
                context=AccessContext(token=_scope(who, search.rtype, Interaction.SEARCH)),
            )
    return None


def _allowed_sections(who: TokenActor, patient_id: uuid.UUID, context: AccessContext) -> list[str]:
    return [
        s
        for s in ALL_SECTIONS
        if decide(who.actor, Action.VIEW_SCR, patient_id, s, context).allowed
    ]


_LOOKUPS = {">=": "gte", "<": "lt"}


def _last_updated_q(search: Search, column: str = "updated_at") -> Q:
    q = Q()
    for prefix, rng in search.last_updated:
        negate, bounds = LAST_UPDATED_BOUNDS[prefix]
        part = Q(**{f"{column}__{_LOOKUPS[op]}": getattr(rng, end) for op, end in bounds})
        q &= ~part if negate else part
    return q


def _order(search: Search) -> list[str]:
    column, descending = search.sort
    name = "recorded_at" if column == "date" else "updated_at"
    sign = "-" if descending else ""
    return [f"{sign}{name}", f"{sign}id"]


# --- item types ------------------------------------------------------------------------


def search_items(who: TokenActor, search: Search) -> Page:
    rtype = search.rtype
    require_token(who, Action.VIEW_SCR, rtype, Interaction.SEARCH)
    patient_id = _target_patient(who, search, Action.VIEW_SCR)
    if patient_id is None:
        return Page()
    facts = _facts(who, patient_id)
    if facts is None:
        return Page()
    context = facts.context(who, rtype, Interaction.SEARCH)
    decision = access_checked(
        actor=who.actor, action=Action.VIEW_SCR, patient_id=patient_id, context=context
    )
    if not decision.allowed:
        return Page()
    sections = _allowed_sections(who, patient_id, context)
    include = None
    if search.include_patient:
        include_context = facts.context(who, "Patient", Interaction.READ)
        if decide(
            who.actor, Action.VIEW_DEMOGRAPHICS, patient_id, DEMOGRAPHICS, include_context
        ).allowed:
            include = facts.patient
    cipher = _cipher(patient_id)
    if cipher is None:
        return Page()
    query = ScrItem.objects.filter(
        patient_id=patient_id, resource_type=rtype, section__in=sections
    ).filter(_last_updated_q(search))
    if search.ids is not None:
        query = query.filter(pk__in=[pk for i in search.ids if (pk := ids.item_pk(i))])
    query = query.only(*ITEM_FIELDS).order_by(*_order(search))
    with transaction.atomic():
        if search.content_filters:
            rows = [(item, _open(cipher, item)["resource"]) for item in query]
            rows = [(item, resource) for item, resource in rows if matches(search, resource)]
            total = len(rows)
            page_rows = (
                [] if search.summary_count else rows[search.offset : search.offset + search.count]
            )
        else:
            total = query.count()
            items = (
                []
                if search.summary_count or search.count == 0
                else list(query[search.offset : search.offset + search.count])
            )
            page_rows = [(item, _open(cipher, item)["resource"]) for item in items]
        seen = sorted(
            {item.section for item, _ in page_rows} | ({DEMOGRAPHICS} if include else set())
        )
        audit_record(
            actor=who.actor,
            action=Action.VIEW_SCR,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(who, "search-type", rtype, items=len(page_rows), sections=seen),
        )
    page = Page(resources=_serve_rows(page_rows), total=total)
    if include is not None and page_rows:
        patient_resource = _patient_resource(include)
        if patient_resource is not None:
            page.included.append(patient_resource)
    return page


def _item_for(who: TokenActor, rtype: str, fhir_id: str) -> tuple[ScrItem, Facts, Any]:
    pk = ids.item_pk(fhir_id)
    if pk is None:
        raise not_found(rtype)
    found = sql.objects(
        ScrItem, ITEM_FIELDS, where={"pk": pk, "resource_type": rtype}, prepared=True
    )
    if not found:
        raise not_found(rtype)
    item = found[0]
    facts = _facts(who, item.patient_id)
    if facts is None:
        raise not_found(rtype)
    return item, facts, facts.context(who, rtype, Interaction.READ)


def read_item(
    who: TokenActor, rtype: str, fhir_id: str, *, version: int | None = None
) -> dict[str, Any]:
    """One item (``GET [type]/[id]``), or one version of it (``_history/[vid]``)."""
    require_token(who, Action.VIEW_SCR, rtype, Interaction.READ)
    item, _, context = _item_for(who, rtype, fhir_id)
    decision = access_checked(
        actor=who.actor,
        action=Action.VIEW_SCR,
        patient_id=item.patient_id,
        section=item.section,
        context=context,
    )
    if not decision.allowed:
        raise not_found(rtype)
    cipher = _cipher(item.patient_id)
    if cipher is None:
        raise not_found(rtype)
    row: Any = item
    if version is not None and version != item.version:
        old = ScrItemVersion.objects.filter(item_id=item.pk, version=version).first()
        if old is None:
            raise not_found(f"{rtype} version")
        row = _VersionRow(item, old, _version_updated(item, version))
    with transaction.atomic():
        audit_record(
            actor=who.actor,
            action=Action.VIEW_SCR,
            patient_id=item.patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(
                who, "vread" if version else "read", rtype, items=1, sections=[item.section]
            ),
        )
    resource = _open(cipher, row)["resource"]
    return _serve_rows([(row, resource)])[0]


@dataclass
class _VersionRow:
    """A superseded version, shaped like the item for serving."""

    item: ScrItem
    old: ScrItemVersion
    updated: datetime

    def __getattr__(self, name: str) -> Any:
        if name in ("version", "payload", "recorded_at"):
            return getattr(self.old, name)
        if name == "updated_at":
            return self.updated
        return getattr(self.item, name)


def _version_updated(item: ScrItem, version: int) -> datetime:
    """When a version was made: when the one before it was superseded (or created)."""
    if version <= 1:
        return item.created_at
    before = (
        ScrItemVersion.objects.filter(item_id=item.pk, version=version - 1)
        .values_list("superseded_at", flat=True)
        .first()
    )
    return before or item.created_at


def item_history(who: TokenActor, rtype: str, fhir_id: str) -> list[dict[str, Any]]:
    """Every version of one item, newest first (``GET [type]/[id]/_history``)."""
    require_token(who, Action.VIEW_SCR, rtype, Interaction.READ)
    item, _, context = _item_for(who, rtype, fhir_id)
    decision = access_checked(
        actor=who.actor,
        action=Action.VIEW_SCR,
        patient_id=item.patient_id,
        section=item.section,
        context=context,
    )
    if not decision.allowed:
        raise not_found(rtype)
    cipher = _cipher(item.patient_id)
    if cipher is None:
        raise not_found(rtype)
    with transaction.atomic():
        olds = list(ScrItemVersion.objects.filter(item_id=item.pk).order_by("-version"))
        audit_record(
            actor=who.actor,
            action=Action.VIEW_SCR,
            patient_id=item.patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(
                who, "history-instance", rtype, items=1 + len(olds), sections=[item.section]
            ),
        )
    superseded = {o.version: o.superseded_at for o in olds}
    rows: list[tuple[Any, dict[str, Any]]] = [(item, _open(cipher, item)["resource"])]
    for old in olds:
        updated = superseded.get(old.version - 1) or item.created_at
        row = _VersionRow(item, old, updated)
        rows.append((row, _open(cipher, row)["resource"]))
    return _serve_rows(rows)


# --- Patient ---------------------------------------------------------------------------


def read_patient(who: TokenActor, fhir_id: str) -> dict[str, Any]:
    require_token(who, Action.VIEW_DEMOGRAPHICS, "Patient", Interaction.READ)
    patient_id = _uuid(fhir_id)
    facts = _facts(who, patient_id) if patient_id else None
    if facts is None:
        raise not_found("Patient")
    decision = access_checked(
        actor=who.actor,
        action=Action.VIEW_DEMOGRAPHICS,
        patient_id=patient_id,
        section=DEMOGRAPHICS,
        context=facts.context(who, "Patient", Interaction.READ),
    )
    if not decision.allowed:
        raise not_found("Patient")
    resource = _patient_resource(facts.patient)
    if resource is None:
        raise not_found("Patient")
    with transaction.atomic():
        audit_record(
            actor=who.actor,
            action=Action.VIEW_DEMOGRAPHICS,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(who, "read", "Patient", sections=[DEMOGRAPHICS]),
        )
    return resource


def _patients_named(who: TokenActor, search: Search) -> list[uuid.UUID]:
    """Candidates of a Patient search: the caller's own record (a patient's app), or the
    patients a system client names by ``_id`` or ``identifier`` (blind index lookups)."""
    if not who.is_system:
        return [who.actor.patient_id]
    identifiers = [f for f in search.filters if f.name == "identifier"]
    if search.ids is None and not identifiers:
        raise ApiError(
            400,
            "required",
            "A system client's Patient search names the patient (_id or identifier).",
            expression=["identifier"],
        )
    candidates: set[uuid.UUID] | None = None
    if search.ids is not None:
        candidates = {pid for i in search.ids if (pid := _uuid(i))}
    for f in identifiers:
        lookups, numbers = [], []
        for value in f.values:
            if value.system and value.code:
                lookups.append(vault.index("identifier", f"{value.system}|{value.code}"))
            elif value.system is None and value.code and value.code.isdigit():
                numbers.append(value.code)
        found = set(
            PatientIdentifier.objects.filter(lookup__in=lookups).values_list(
                "patient_id", flat=True
            )
        ) | set(Patient.objects.filter(nhs_number__in=numbers).values_list("id", flat=True))
        candidates = found if candidates is None else candidates & found
    return sorted(candidates or set())[:10]


def search_patients(who: TokenActor, search: Search) -> Page:
    require_token(who, Action.VIEW_DEMOGRAPHICS, "Patient", Interaction.SEARCH)
    page = Page()
    for patient_id in _patients_named(who, search):
        facts = _facts(who, patient_id)
        if facts is None:
            continue
        if search.ids is not None and str(patient_id) not in search.ids:
            continue
        if facts.patient.updated_at is not None and search.last_updated:
            moment = facts.patient.updated_at
            from healthspace.fhir_api.search import DateRange, date_matches

            if not all(
                date_matches(p, r, DateRange(moment, moment)) for p, r in search.last_updated
            ):
                continue
        decision = access_checked(
            actor=who.actor,
            action=Action.VIEW_DEMOGRAPHICS,
            patient_id=patient_id,
            section=DEMOGRAPHICS,
            context=facts.context(who, "Patient", Interaction.SEARCH),
        )
        if not decision.allowed:
            continue
        resource = _patient_resource(facts.patient)
        if resource is None or not matches(search, resource):
            continue
        with transaction.atomic():
            audit_record(
                actor=who.actor,
                action=Action.VIEW_DEMOGRAPHICS,
                patient_id=patient_id,
                outcome="success",
                reason=decision.reason,
                detail=_detail(who, "search-type", "Patient", sections=[DEMOGRAPHICS]),
            )
        page.resources.append(resource)
    page.total = len(page.resources)
    if search.summary_count:
        page.resources = []
    else:
        page.resources = page.resources[search.offset : search.offset + search.count]
    return page


# --- Consent ---------------------------------------------------------------------------


def _consent_versions(patient_id: uuid.UUID) -> list[dict[str, Any]]:
    records = sql.objects(  # plain SQL (core.sql): in every $everything
        ConsentRecord,
        ("id", "state", "version", "recorded_at"),
        where={"patient_id": patient_id},
        order_by=("-version",),
    )
    out = [
        served.served_consent(
            patient_id=patient_id,
            state=ConsentState(r.state),
            version=r.version,
            recorded_at=r.recorded_at,
        )
        for r in records
    ]
    out.append(
        served.served_consent(
            patient_id=patient_id, state=ConsentState.IMPLIED, version=0, recorded_at=None
        )
    )
    return out  # newest first; version 0 (implied) always last


def consent_for(
    who: TokenActor, patient_id: uuid.UUID | None, interaction: Interaction
) -> list[dict[str, Any]] | None:
    """Every version of the patient's SCR consent, newest first; None when not allowed."""
    require_token(who, Action.CONSENT_VIEW, "Consent", interaction)
    facts = _facts(who, patient_id) if patient_id else None
    if facts is None:
        return None
    decision = access_checked(
        actor=who.actor,
        action=Action.CONSENT_VIEW,
        patient_id=patient_id,
        context=facts.context(who, "Consent", interaction),
    )
    if not decision.allowed:
        return None
    with transaction.atomic():
        versions = _consent_versions(patient_id)
        audit_record(
            actor=who.actor,
            action=Action.CONSENT_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(who, interaction.name.lower(), "Consent", versions=len(versions)),
        )
    return versions


def search_consent(who: TokenActor, search: Search) -> Page:
    patient_id = _target_patient(who, search, Action.CONSENT_VIEW)
    versions = consent_for(who, patient_id, Interaction.SEARCH) if patient_id else None
    current = versions[:1] if versions else []
    if search.ids is not None:
        current = [c for c in current if c["id"] in search.ids]
    current = [c for c in current if matches(search, c)]
    page = Page(total=len(current))
    if not search.summary_count:
        page.resources = current[search.offset : search.offset + search.count]
    return page


# --- AuditEvent ------------------------------------------------------------------------


def _audit_resources(events: list[AuditEvent]) -> list[dict[str, Any]]:
    codes = {
        d["org"]
        for e in events
        if isinstance(d := e.detail, dict) and isinstance(d.get("org"), str)
    }
    names = organisation_names(codes)
    out = []
    for event in events:
        detail = event.detail if isinstance(event.detail, dict) else {}
        ods = detail.get("org") if isinstance(detail.get("org"), str) else None
        info = (
            ActorInfo(
                display="",
                organisation_ods=ods,
                organisation_name=names.get(ods),
            )
            if ods
            else None
        )
        out.append(audit_event_resource(event, actor=info, base_url=served.base()))
    return out


def search_audit_events(who: TokenActor, search: Search) -> Page:
    require_token(who, Action.ACCESS_LOG_VIEW, "AuditEvent", Interaction.SEARCH)
    patient_id = _target_patient(who, search, Action.ACCESS_LOG_VIEW)
    facts = _facts(who, patient_id) if patient_id else None
    if facts is None:
        return Page()
    decision = access_checked(
        actor=who.actor,
        action=Action.ACCESS_LOG_VIEW,
        patient_id=patient_id,
        context=facts.context(who, "AuditEvent", Interaction.SEARCH),
    )
    if not decision.allowed:
        return Page()
    query = AuditEvent.objects.filter(patient_id=patient_id).filter(
        _last_updated_q(search, "occurred_at")
    )
    for f in search.filters:  # "date" (recorded): a column, so in SQL
        alternatives = Q()
        for prefix, rng in f.values:
            alternatives |= _last_updated_q(
                Search("AuditEvent", last_updated=[(prefix, rng)]), "occurred_at"
            )
        query = query.filter(alternatives)
    if search.ids is not None:
        query = query.filter(pk__in=[int(i) for i in search.ids if i.isdigit() and len(i) < 19])
    descending = search.sort[1]
    query = query.order_by(*(("-occurred_at", "-pk") if descending else ("occurred_at", "pk")))
    with transaction.atomic():
        total = query.count()
        events = (
            []
            if search.summary_count
            else list(query[search.offset : search.offset + search.count])
        )
        audit_record(
            actor=who.actor,
            action=Action.ACCESS_LOG_VIEW,
            patient_id=patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(who, "search-type", "AuditEvent", entries=len(events)),
        )
    return Page(resources=_audit_resources(events), total=total)


def read_audit_event(who: TokenActor, fhir_id: str) -> dict[str, Any]:
    require_token(who, Action.ACCESS_LOG_VIEW, "AuditEvent", Interaction.READ)
    if not fhir_id.isdigit() or len(fhir_id) > 18:
        raise not_found("AuditEvent")
    event = AuditEvent.objects.filter(pk=int(fhir_id), patient_id__isnull=False).first()
    facts = _facts(who, event.patient_id) if event is not None else None
    if event is None or facts is None:
        raise not_found("AuditEvent")
    decision = access_checked(
        actor=who.actor,
        action=Action.ACCESS_LOG_VIEW,
        patient_id=event.patient_id,
        context=facts.context(who, "AuditEvent", Interaction.READ),
    )
    if not decision.allowed:
        raise not_found("AuditEvent")
    with transaction.atomic():
        audit_record(
            actor=who.actor,
            action=Action.ACCESS_LOG_VIEW,
            patient_id=event.patient_id,
            outcome="success",
            reason=decision.reason,
            detail=_detail(who, "read", "AuditEvent", entries=1),
        )
    return _audit_resources([event])[0]


# --- the whole record: $everything, $summary, and bulk export --------------------------


@dataclass
class Record:
    patient: dict[str, Any]
    items: list[tuple[str, dict[str, Any]]]  # (section, served resource)
    consent: list[dict[str, Any]]
    withheld: dict[str, str]  # section -> reason


def _readable_types(who: TokenActor, types: list[str] | None, action: Action) -> list[str]:
    wanted = (
        types if types is not None else [*PATIENT_REFERENCE, "Practitioner", "PractitionerRole"]
    )
    return [t for t in wanted if token_allows(who, action, t, Interaction.READ)]


def load_record(
    who: TokenActor,
    patient_id: uuid.UUID | None,
    *,
    operation: str,
    action: Action = Action.VIEW_SCR,
    types: list[str] | None = None,
    since: datetime | None = None,
    audit: bool = True,
) -> Record:
    """Everything of one patient this caller may see, audited as one event. Raises
    not_found when nothing may be seen; sections the policy withholds are named."""
    facts = _facts(who, patient_id) if patient_id else None
    if facts is None:
        raise not_found("Patient")
    context = facts.context(who, "Patient", Interaction.READ)
    decision = access_checked(
        actor=who.actor, action=action, patient_id=patient_id, context=context
    )
    if not decision.allowed:
        raise not_found("Patient")
    per_section = {s: decide(who.actor, action, patient_id, s, context) for s in ALL_SECTIONS}
    sections = [s for s, d in per_section.items() if d.allowed]
    withheld = {s: d.reason for s, d in per_section.items() if not d.allowed}
    readable = _readable_types(who, types, action)
    show_patient = decide(
        who.actor,
        Action.VIEW_DEMOGRAPHICS if action == Action.VIEW_SCR else action,
        patient_id,
        DEMOGRAPHICS,
        context,
    ).allowed
    cipher = _cipher(patient_id)
    if cipher is None or not show_patient:
        raise not_found("Patient")
    where: dict[str, Any] = {
        "patient_id": patient_id,
        "section__in": sorted(sections),
        "resource_type__in": sorted(readable),
    }
    if since is not None:
        where["updated_at__gte"] = since
    consent_readable = (
        action == Action.VIEW_SCR
        and (types is None or "Consent" in types)
        and token_allows(who, Action.CONSENT_VIEW, "Consent", Interaction.READ)
        and decide(
            who.actor,
            Action.CONSENT_VIEW,
            patient_id,
            None,
            facts.context(who, "Consent", Interaction.READ),
        ).allowed
    )
    with transaction.atomic():
        # plain SQL (core.sql.objects): $summary, $everything and the patient's exports
        items = sql.objects(
            ScrItem, ITEM_FIELDS, where=where, order_by=("section", "-recorded_at", "id")
        )
        consent = _consent_versions(patient_id)[:1] if consent_readable else []
        if audit:
            audit_record(
                actor=who.actor,
                action=action,
                patient_id=patient_id,
                outcome="success",
                reason=decision.reason,
                detail=_detail(
                    who,
                    operation,
                    "Patient",
                    items=len(items),
                    sections=sorted({DEMOGRAPHICS, *(i.section for i in items)}),
                    **({"withheld": sorted(withheld)} if withheld else {}),
                ),
            )
    rows = [(item, _open(cipher, item)["resource"]) for item in items]
    resources = _serve_rows(rows)
    patient_resource = _patient_resource(facts.patient, cipher)
    if patient_resource is None:
        raise not_found("Patient")
    return Record(
        patient=patient_resource,
        items=[(item.section, r) for (item, _), r in zip(rows, resources, strict=True)],
        consent=consent,
        withheld=withheld,
    )


# Used by the patient's own exports (portability), so its resources are the ones served here.
consent_versions = _consent_versions
open_item = _open
serve_rows = _serve_rows
patient_resource = _patient_resource
audit_resources = _audit_resources
