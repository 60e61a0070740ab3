"""Bulk import on PostgreSQL: worker processes validate and seal, one writer COPYs.

Same rules as ``records.importer`` (docs/import.md): every resource validated with
fhir.resources (R4B) and our own checks, one unit (file) all-or-nothing in one
transaction, idempotent on source identifiers, sealed per patient, one chained audit
event per patient. What differs is how the work is done:

- an NDJSON file is streamed, never loaded: the writer only scans it for the lines that
  start a patient, and hands byte ranges (pieces of about ``PIECE_RESOURCES`` resources, cut
  before a Patient line) to worker processes, which read, parse, validate, plan and seal
  them; the lines before the first Patient (practices, practitioners) are read by every
  worker once per file, so references to them resolve in every piece;
- a piece whose patients are all new is written with ``COPY`` (patients, identifiers,
  items), its data keys in one insert into the key store and its audit events (each the
  first link of its new patient's chain) in one insert;
- a piece that touches a patient already in the database (re-imports, updates) or that
  refers to a patient outside the file is planned again in the writer and written by the
  ordinary code (``importer._write_unit``), inside the same file transaction, so
  versions, amendments and matching behave exactly as in a plain import.

A Bundle or single resource file is one piece. References inside an NDJSON file resolve
backwards (to lines before the one referring), as a stream can; the plain importer also
resolves forwards. On SQLite ``import_paths(..., bulk=True)`` uses the plain importer.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from psycopg import IntegrityError as DatabaseIntegrityError

from healthspace.access.actors import Actor
from healthspace.access.policy import Action, decide
from healthspace.core import nhs_numbers
from healthspace.records import bulk_worker, fhir_map, importer
from healthspace.records.fhir_checks import FhirInputError, parse_json_bytes
from healthspace.records.importer import (
    MAX_FILE_BYTES,
    PATIENT_NOT_FOUND,
    PATIENT_PURPOSE,
    SYSTEM_IMPORTER,
    ImportReport,
    Unit,
    _birth_date,
    _canonical,
    _entries_of,
    _normalise,
    _with_nhs_number,
    item_purpose,
    iter_files,
    plan_unit,
)
from healthspace.records.models import Organisation, Patient, PatientIdentifier, ScrItem

PIECE_RESOURCES = 500  # ~20 patients: a worker stays near 115 MB (2,000: ~145 MB)
PREAMBLE_MAX_LINES = 20_000
_PATIENT_MARK = b'"Patient"'


# ---------------------------------------------------------------- pieces of a file


@dataclass(frozen=True)
class Piece:
    path: str
    where: str
    ndjson: bool
    start: int = 0  # byte range of the piece (NDJSON)
    end: int = 0
    first_line: int = 1
    preamble_end: int = 0  # bytes [0, preamble_end) are the file's preamble
    with_preamble: bool = False  # the preamble is part of this piece (the first one)
    one_patient: bool | None = None
    source: str | None = None
    assign: bool = False


def _starts_patient(line: bytes) -> bool:
    if _PATIENT_MARK not in line:
        return False
    try:
        value = json.loads(line)  # a look only: the worker parses strictly
    except ValueError:
        return False  # the worker reports it, with its line number
    return isinstance(value, dict) and value.get("resourceType") == "Patient"


def ndjson_pieces(
    path: Path, *, source: str | None, assign: bool, piece_resources: int = PIECE_RESOURCES
) -> Iterator[Piece]:
    """Cut an NDJSON file into pieces, streaming: before a Patient line once a piece holds
    ``piece_resources`` lines and at least two patients (so a piece is never taken for a
    one-patient file when the file holds more)."""
    where = path.name
    preamble_end = 0
    start = 0
    start_line = 1
    lines = patients = total_patients = 0
    offset = 0
    emitted = False
    with path.open("rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip() and _starts_patient(line):
                if total_patients == 0:
                    preamble_end = offset
                    if lineno - 1 > PREAMBLE_MAX_LINES:
                        preamble_end = 0  # too long to hand to every piece: plain resources
                elif lines >= piece_resources and patients >= 2:
                    yield Piece(
                        str(path), where, True, start, offset, start_line, preamble_end,
                        not emitted, False, source, assign,
                    )  # fmt: skip
                    emitted = True
                    start, start_line, lines, patients = offset, lineno, 0, 0
                patients += 1
                total_patients += 1
            lines += 1
            offset += len(line)
    if total_patients == 0:
        preamble_end = 0
    if offset > start or not emitted:
        one = None if not emitted else False
        yield Piece(
            str(path), where, True, start, offset, start_line, preamble_end,
            not emitted, one, source, assign,
        )  # fmt: skip


def file_pieces(
    paths: Iterable[Path], *, source: str | None, assign: bool, failed: set[str] | None = None
) -> Iterator[Piece]:
    """Every file's pieces; a file named in ``failed`` (by the writer, as it fails) is
    read no further, so the workers do not validate the rest of a refused 2 GB file."""
    failed = failed if failed is not None else set()
    for path in paths:
        if path.suffix == ".ndjson":
            for piece in ndjson_pieces(path, source=source, assign=assign):
                if piece.path in failed:
                    break
                yield piece
        else:
            yield Piece(str(path), path.name, False, source=source, assign=assign)


# ---------------------------------------------------------------- worker side (no database)


class NeedsWriter(Exception):
    """The piece refers to a patient outside the file: only the writer can look it up."""


def _refuse_lookup(*args: Any) -> None:
    raise NeedsWriter


_preamble_cache: dict[tuple[str, int, int], list[tuple[str | None, dict[str, Any]]]] = {}


def _read_lines(path: str, start: int, end: int, first_line: int, where: str) -> list:
    entries = []
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    for lineno, line in enumerate(data.splitlines(), first_line):
        if line.strip():
            entries.append((None, parse_json_bytes(line, where=f"{where} line {lineno}")))
    return entries


def _preamble(piece: Piece) -> list[tuple[str | None, dict[str, Any]]]:
    if not piece.preamble_end:
        return []
    key = (piece.path, os.stat(piece.path).st_mtime_ns, piece.preamble_end)
    if key not in _preamble_cache:
        _preamble_cache.clear()
        entries = _read_lines(piece.path, 0, piece.preamble_end, 1, piece.where)
        Unit(entries, piece.source or importer.DEFAULT_SOURCE, piece.where)  # ids as the piece's
        _preamble_cache[key] = entries
    return _preamble_cache[key]


def read_piece(piece: Piece) -> tuple[list, list]:
    """(entries to plan, context entries) of a piece."""
    if not piece.ndjson:
        path = Path(piece.path)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FhirInputError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        entries, _ = _entries_of(path, path.read_bytes())
        return entries, []
    preamble = _preamble(piece)
    start = piece.start
    if piece.with_preamble and piece.preamble_end:
        start = max(start, piece.preamble_end)
        body = _read_lines(piece.path, start, piece.end, _line_of(piece, start), piece.where)
        return [*preamble, *body], []
    body = _read_lines(piece.path, start, piece.end, piece.first_line, piece.where)
    return body, preamble


def _line_of(piece: Piece, offset: int) -> int:
    with open(piece.path, "rb") as handle:
        return 1 + handle.read(offset).count(b"\n")


@dataclass
class SealedPatient:
    id: uuid.UUID
    key: str
    nhs_number: str
    assigned_seed: str | None  # the seed of an assigned number (None: from the file)
    wrapped_key: bytes
    resource: bytes
    content_hash: str
    birth_date: str | None
    practice: dict[str, str] | None
    source: str
    lookups: list[str]
    items: list[tuple] = field(default_factory=list)  # ScrItem rows, see _ITEM_COLUMNS
    sections: Counter[str] = field(default_factory=Counter)


@dataclass
class SealedPiece:
    patients: list[SealedPatient]
    skipped: Counter[str]
    resources: int


def seal_piece(piece: Piece) -> SealedPiece | None:
    """Validate, plan and seal a piece whose patients are all in it; None if the writer
    must plan it (a reference to a patient outside the file)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from healthspace.vault import services as vault
    from healthspace.vault.crypto import PatientCipher, wrap_key

    entries, context = read_piece(piece)
    try:
        patient_plans, item_plans, skipped = plan_unit(
            entries,
            where=piece.where,
            source=piece.source,
            assign_nhs_numbers=piece.assign,
            report=ImportReport(),
            context=context,
            known_patient=_refuse_lookup,
            one_patient=piece.one_patient,
        )
    except NeedsWriter:
        return None
    if any(p.existing_id is not None or p.source_lookup is None for p in patient_plans):
        return None  # contained patients are matched by NHS number: the plain way
    kek = settings.HEALTHSPACE_KEK
    by_key: dict[str, SealedPatient] = {}
    ciphers: dict[str, PatientCipher] = {}
    for plan in patient_plans:
        pid = uuid.uuid4()
        data_key = AESGCM.generate_key(bit_length=256)
        cipher = PatientCipher(pid, AESGCM(data_key))
        resource = _normalise(Unit([], plan.source, ""), plan.resource)
        seed = None
        nhs = plan.nhs_number
        if nhs is None:
            seed = f"{plan.source}|Patient|{plan.resource.get('id')}"
            nhs = nhs_numbers.synthetic_for(seed, attempt=0)
        resource = _with_nhs_number(resource, nhs)
        lookups = {x for x in [plan.source_lookup, *plan.lookups] if x}
        sealed = SealedPatient(
            id=pid,
            key=plan.key,
            nhs_number=nhs,
            assigned_seed=seed,
            wrapped_key=wrap_key(kek, data_key, pid),
            resource=cipher.seal_json(resource, purpose=PATIENT_PURPOSE),
            content_hash=vault.index("content", _canonical(resource)),
            birth_date=_birth_date(resource),
            practice=plan.practice,
            source=plan.source,
            lookups=sorted(lookups),
        )
        by_key[plan.key] = sealed
        ciphers[plan.key] = cipher
    for plan in item_plans:
        owner = by_key[plan.patient_key]
        content = {"resource": plan.resource, **plan.labels}
        content_hash = vault.index("content", _canonical(content))
        payload = ciphers[plan.patient_key].seal_json(content, purpose=item_purpose(plan.identity))
        owner.items.append(
            (
                plan.section,
                plan.resource["resourceType"],
                plan.identity,
                content_hash,
                fhir_map.recorded_at(plan.resource),
                plan.source,
                payload,
            )
        )
        owner.sections[plan.section] += 1
    return SealedPiece(list(by_key.values()), skipped, len(entries))


# ---------------------------------------------------------------- writer side


def _copy(
    table: str, columns: list[str], types: list[str], rows: Iterable[tuple], *, using: Any = None
) -> None:
    """``COPY ... FROM STDIN`` in PostgreSQL's binary format: psycopg dumps each value in C
    (bytea as it is, no hex escaping of the sealed payloads) and the server parses no
    text; the writer's CPU per row about halves against the text format."""
    conn = using or connection
    cols = ", ".join(conn.ops.quote_name(c) for c in columns)
    statement = f"COPY {conn.ops.quote_name(table)} ({cols}) FROM STDIN (FORMAT BINARY)"
    with conn.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _columns(model: type, names: list[str]) -> list[str]:
    return [model._meta.get_field(n).column for n in names]


def _date(value: str | None) -> date | None:
    # a birthDate of 10 characters, validated as a FHIR date already (text COPY took it
    # as it was; the binary format wants a date)
    return date.fromisoformat(value) if value is not None else None


# (field, PostgreSQL type of its column) for the binary COPYs
_PATIENT_FIELDS = [
    ("id", "uuid"),
    ("nhs_number", "varchar"),
    ("birth_date", "date"),
    ("registered_practice", "int8"),
    ("resource", "bytea"),
    ("content_hash", "varchar"),
    ("version", "int4"),
    ("source_system", "varchar"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
]
_IDENTIFIER_FIELDS = [("patient", "uuid"), ("lookup", "varchar")]
_ITEM_FIELDS = [
    ("patient", "uuid"),
    ("section", "varchar"),
    ("resource_type", "varchar"),
    ("identity", "varchar"),
    ("origin", "varchar"),
    ("version", "int4"),
    ("content_hash", "varchar"),
    ("source_hash", "varchar"),
    ("recorded_at", "timestamptz"),
    ("source_system", "varchar"),
    ("payload", "bytea"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
]
_EVENT_FIELDS = [
    ("occurred_at", "timestamptz"),
    ("patient_id", "uuid"),
    ("actor", "varchar"),
    ("action", "varchar"),
    ("outcome", "varchar"),
    ("reason", "varchar"),
    ("detail", "jsonb"),
    ("chain_key", "varchar"),
    ("seq", "int8"),
    ("prev_hash", "varchar"),
    ("hash", "varchar"),
]
_KEY_FIELDS = [
    ("patient_id", "uuid"),
    ("kind", "varchar"),
    ("wrapped_key", "bytea"),
    ("kek_id", "varchar"),
    ("created_at", "timestamptz"),
]
_HEAD_FIELDS = [
    ("chain_key", "varchar"),
    ("seq", "int8"),
    ("head_hash", "varchar"),
    ("updated_at", "timestamptz"),
]


def _copy_model(
    model: type, fields: list[tuple[str, str]], rows: Iterable[tuple], *, using: Any = None
) -> None:
    _copy(
        model._meta.db_table,
        _columns(model, [name for name, _ in fields]),
        [pg_type for _, pg_type in fields],
        rows,
        using=using,
    )


class FileWriter:
    """Writes the pieces of one file inside the caller's transaction."""

    def __init__(self, *, actor: Actor, reason: str, report: ImportReport):
        self.actor = actor
        self.reason = reason
        self.report = report  # the file's own counts (merged by the caller on commit)
        # 16 bytes a patient (a 2 GB file's 100,000 patients: 1.6 MB), for discarding
        # their keys if the file fails
        self._new_ids = bytearray()
        self.practices: dict[tuple[str, str], int] = {}

    def write_planned(self, piece: Piece) -> None:
        """The plain importer's way, for a piece the workers could not write alone."""
        entries, context = read_piece(piece)
        scratch = ImportReport()
        patient_plans, item_plans, skipped = plan_unit(
            entries,
            where=piece.where,
            source=piece.source,
            assign_nhs_numbers=piece.assign,
            report=scratch,
            context=context,
            one_patient=piece.one_patient,
        )
        decision = decide(self.actor, Action.IMPORT_RECORDS, None)
        try:
            importer._write_unit(
                patient_plans,
                item_plans,
                skipped,
                scratch,
                self.report,
                actor=self.actor,
                decision=decision,
                before_write=None,
            )
        finally:
            self.add_new_ids(scratch.new_patient_ids)
            self.report.patient_ids.clear()  # see bulk_import_paths

    def write_sealed(self, piece: Piece, sealed: SealedPiece) -> None:
        from healthspace.vault import services as vault

        lookups = [x for p in sealed.patients for x in p.lookups]
        nhs_given = [p.nhs_number for p in sealed.patients if p.assigned_seed is None]
        if (
            PatientIdentifier.objects.filter(lookup__in=lookups).exists()
            or Patient.objects.filter(nhs_number__in=nhs_given).exists()
        ):
            self.write_planned(piece)  # someone here already: match, version, update
            return
        # numbers of earlier pieces are in the database already (this transaction sees
        # them), so only this piece's own need a set
        in_piece: set[str] = set()
        for patient in sealed.patients:
            if patient.assigned_seed is not None:
                self._free_number(patient, in_piece)
            elif patient.nhs_number in in_piece:
                raise FhirInputError(
                    f"{piece.where}: NHS number of {patient.key} appears twice in the file"
                )
            in_piece.add(patient.nhs_number)
            patient.lookups = sorted(
                {
                    *patient.lookups,
                    vault.index(
                        "identifier", f"{nhs_numbers.NHS_NUMBER_SYSTEM}|{patient.nhs_number}"
                    ),
                }
            )
        self._write_keys(sealed.patients)
        self._write_rows(sealed.patients)
        self._write_audit(sealed.patients)
        report = self.report
        report.patients_created += len(sealed.patients)
        for patient in sealed.patients:
            report.items_created.update(patient.sections)
        report.skipped.update(sealed.skipped)

    def add_new_ids(self, ids: Iterable[uuid.UUID]) -> None:
        for pid in ids:
            self._new_ids += pid.bytes

    def discard_new_keys(self) -> None:
        from healthspace.vault import services as vault

        step = 16 * 10_000
        for start in range(0, len(self._new_ids), step):
            chunk = self._new_ids[start : start + step]
            vault.datakeys_discard(
                subject_ids=[
                    uuid.UUID(bytes=bytes(chunk[i : i + 16])) for i in range(0, len(chunk), 16)
                ]
            )

    def _free_number(self, patient: SealedPatient, in_piece: set[str]) -> None:
        """An assigned test-range number taken already (in the database or earlier in this
        file): the next attempt, as the plain importer does, and the resource sealed again."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        from healthspace.vault import services as vault
        from healthspace.vault.crypto import PatientCipher, unwrap_key

        attempt = 0
        nhs = patient.nhs_number
        while nhs in in_piece or Patient.objects.filter(nhs_number=nhs).exists():
            attempt += 1
            nhs = nhs_numbers.synthetic_for(patient.assigned_seed, attempt=attempt)
        if attempt == 0:
            return
        key = unwrap_key(settings.HEALTHSPACE_KEK, patient.wrapped_key, patient.id)
        cipher = PatientCipher(patient.id, AESGCM(key))
        resource = cipher.open_json(patient.resource, purpose=PATIENT_PURPOSE)
        for ident in resource.get("identifier") or []:
            if ident.get("system") == nhs_numbers.NHS_NUMBER_SYSTEM:
                ident["value"] = nhs
        patient.nhs_number = nhs
        patient.resource = cipher.seal_json(resource, purpose=PATIENT_PURPOSE)
        patient.content_hash = vault.index("content", _canonical(resource))

    def _practice_id(self, info: dict[str, str] | None) -> int | None:
        if not info:
            return None
        key = (info["system"], info["value"])
        if key not in self.practices:
            org, _ = Organisation.objects.get_or_create(
                identifier_system=info["system"],
                identifier_value=info["value"],
                defaults={"name": info["name"], "ods_code": info["ods"] or None},
            )
            self.practices[key] = org.pk
        return self.practices[key]

    def _write_keys(self, patients: list[SealedPatient]) -> None:
        from django.utils import timezone

        from healthspace.vault.crypto import kek_id
        from healthspace.vault.models import DataKey
        from healthspace.vault.routers import KEYSTORE

        kid = kek_id(settings.HEALTHSPACE_KEK)
        # committed in the key store before anything sealed with them (importer's rule);
        # discarded by the caller if the file rolls back
        self.add_new_ids(p.id for p in patients)
        keystore = connections[KEYSTORE]
        with transaction.atomic(using=KEYSTORE):
            if keystore.vendor == "postgresql":
                at = timezone.now()  # as the model's auto_now_add
                _copy_model(
                    DataKey,
                    _KEY_FIELDS,
                    ((p.id, DataKey.Kind.SCR.value, p.wrapped_key, kid, at) for p in patients),
                    using=keystore,
                )
                return
            DataKey.objects.using(KEYSTORE).bulk_create(
                [
                    DataKey(
                        patient_id=p.id,
                        kind=DataKey.Kind.SCR,
                        wrapped_key=p.wrapped_key,
                        kek_id=kid,
                    )
                    for p in patients
                ],
                batch_size=1000,
            )

    def _write_rows(self, patients: list[SealedPatient]) -> None:
        from healthspace.core.clock import now

        at = now()
        practices = [self._practice_id(p.practice) for p in patients]  # not during a COPY
        _copy_model(
            Patient,
            _PATIENT_FIELDS,
            (
                (
                    p.id,
                    p.nhs_number,
                    _date(p.birth_date),
                    practice,
                    p.resource,
                    p.content_hash,
                    1,
                    p.source,
                    at,
                    at,
                )
                for p, practice in zip(patients, practices, strict=True)
            ),
        )
        _copy_model(
            PatientIdentifier,
            _IDENTIFIER_FIELDS,
            ((p.id, lookup) for p in patients for lookup in p.lookups),
        )
        _copy_model(
            ScrItem,
            _ITEM_FIELDS,
            (
                (
                    p.id,
                    section,
                    rtype,
                    identity,
                    "source",
                    1,
                    chash,
                    chash,
                    rec,
                    src,
                    payload,
                    at,
                    at,
                )
                for p in patients
                for (section, rtype, identity, chash, rec, src, payload) in p.items
            ),
        )

    def _write_audit(self, patients: list[SealedPatient]) -> None:
        """One event per new patient: link 1 of that patient's new chain, as
        ``audit_record`` would write it, in one insert for the piece."""
        from healthspace.audit import chain
        from healthspace.audit.models import AuditChainHead, AuditEvent
        from healthspace.audit.services import _with_context
        from healthspace.core.clock import now

        at = now()
        actor = self.actor.audit_label()
        action = str(Action.IMPORT_RECORDS)
        events, heads = [], []
        for p in patients:
            detail = chain.stored_detail(
                _with_context(self.actor, {"new_items": len(p.items), "new_versions": 0})
            )
            key = chain.chain_key_for(patient_id=p.id, actor=actor)
            digest = chain.event_hash(
                chain_key=key,
                seq=1,
                prev_hash=chain.GENESIS,
                occurred_at=at,
                patient_id=p.id,
                actor=actor,
                action=action,
                outcome="success",
                reason=self.reason,
                detail=detail,
            )
            events.append(
                (
                    at,
                    p.id,
                    actor,
                    action,
                    "success",
                    self.reason,
                    detail,
                    key,
                    1,
                    chain.GENESIS,
                    digest,
                )
            )
            heads.append((key, 1, digest, at))
        # a new patient's chain is new: no head to lock, nobody else can append to it
        # before this transaction commits (nobody can see the patient). COPY, as the
        # records: the ORM's bulk insert was a third of the writer's CPU for the piece.
        _copy_model(AuditChainHead, _HEAD_FIELDS, heads)
        _copy_model(AuditEvent, _EVENT_FIELDS, events)


# ---------------------------------------------------------------- driving


def _warm_models() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    for rtype in (
        "Patient", "Organization", "Practitioner", "AllergyIntolerance", "CarePlan",
        "CareTeam", "Condition", "DiagnosticReport", "Encounter", "Immunization",
        "MedicationRequest", "MedicationStatement", "Observation", "Procedure",
    ):  # fmt: skip
        get_fhir_model_class(rtype)


class _Pipeline:
    """Pieces in order through a bounded window of worker results (memory stays flat)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.frozen = False
        if workers <= 0:
            return
        if "fork" in get_all_start_methods():
            # Workers start at once with Django and the FHIR models loaded. They never use
            # the database: the connections they inherit stay untouched, and a worker
            # leaves with os._exit (multiprocessing), so nothing closes them under the
            # writer. Warm the models first, so both workers get them for free.
            _warm_models()
            # the writer's long-lived objects out of the collector's way in it and in the
            # workers it forks (bulk_worker.start); undone in close()
            gc.freeze()
            self.frozen = True
            try:
                self.pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=get_context("fork"),
                    initializer=bulk_worker.start,
                    initargs=(os.getpid(),),
                )
            except BaseException:
                self.close()
                raise
        else:
            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=get_context("spawn"),
                initializer=bulk_worker.init,
                initargs=(
                    os.environ.get("DJANGO_SETTINGS_MODULE", "healthspace.config.settings"),
                    settings.HEALTHSPACE_KEK,
                    settings.HEALTHSPACE_INDEX_KEY,
                    os.getpid(),
                ),
            )

    def run(self, pieces: Iterator[Piece]) -> Iterator[tuple[Piece, Any]]:
        """Yields (piece, SealedPiece | None | FhirInputError)."""
        if self.pool is None:
            for piece in pieces:
                try:
                    yield piece, seal_piece(piece)
                except FhirInputError as exc:
                    yield piece, exc
            return
        window: list[tuple[Piece, Future]] = []
        limit = 2 * self.workers + 1
        for piece in pieces:
            window.append((piece, self.pool.submit(bulk_worker.seal, piece)))
            if len(window) >= limit:
                yield self._result(*window.pop(0))
        while window:
            yield self._result(*window.pop(0))

    @staticmethod
    def _result(piece: Piece, future: Future) -> tuple[Piece, Any]:
        try:
            return piece, future.result()
        except FhirInputError as exc:
            return piece, exc

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.frozen:
            gc.unfreeze()
            self.frozen = False


def bulk_import_paths(
    paths: Iterable[Path],
    *,
    source: str | None = None,
    assign_nhs_numbers: bool = False,
    actor: Actor = SYSTEM_IMPORTER,
    workers: int = 2,
) -> ImportReport:
    """``importer.import_paths`` through the bulk path (PostgreSQL only).

    The report's ``patient_ids`` stays empty: a national load's million patient ids would
    be the one thing growing with the input (the counts are all there)."""
    from healthspace.ops import lifecycle

    if connection.vendor != "postgresql":
        return importer.import_paths(
            paths, source=source, assign_nhs_numbers=assign_nhs_numbers, actor=actor
        )
    lifecycle.refuse_writes("importing records")
    report = ImportReport()
    files = list(iter_files(paths))
    pipeline = _Pipeline(workers)
    # stopped with SIGTERM: roll the file back, discard its keys and stop the workers
    # (the default action would leave them waiting for work forever)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        deferred = _run(files, pipeline, report, source, assign_nhs_numbers, actor, defer=True)
        # as the plain importer: files read before the file holding their patients, again
        if deferred:
            _run(deferred, pipeline, report, source, assign_nhs_numbers, actor, defer=False)
    finally:
        pipeline.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return report


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _run(
    files: list[Path],
    pipeline: _Pipeline,
    report: ImportReport,
    source: str | None,
    assign: bool,
    actor: Actor,
    *,
    defer: bool,
) -> list[Path]:
    from healthspace.ops import lifecycle

    deferred: list[Path] = []
    failed: set[str] = set()
    results = pipeline.run(file_pieces(files, source=source, assign=assign, failed=failed))
    current: str | None = None
    writer: FileWriter | None = None
    failure: str | None = None
    atomic: Any = None

    def finish() -> None:
        nonlocal atomic, writer, failure
        if writer is None or current is None:
            return
        name = Path(current).name
        closing, atomic = atomic, None  # exited here, whatever happens
        if failure is None:
            try:
                closing.__exit__(None, None, None)
            except (IntegrityError, DatabaseIntegrityError) as exc:
                failure = f"{name}: {_integrity_message(exc)}"
        else:
            closing.__exit__(FhirInputError, FhirInputError(failure), None)
        if failure is not None:
            writer.discard_new_keys()
            report.files_failed += 1
            report.errors.append(failure if failure.startswith(name) else f"{name}: {failure}")
        else:
            unit = writer.report
            orphans = any(r.endswith(PATIENT_NOT_FOUND) for r in unit.skipped)
            if defer and orphans:
                report.merge(unit, skipped=False)
                deferred.append(Path(current))
            else:
                report.merge(unit, unchanged=defer)
                report.files_ok += 1
        writer = failure = None

    try:
        for piece, result in results:
            if piece.path != current:
                finish()
                current = piece.path
                lifecycle.refuse_writes("importing records", fresh=False)
                decision = decide(actor, Action.IMPORT_RECORDS, None)
                writer = FileWriter(actor=actor, reason=decision.reason, report=ImportReport())
                atomic = transaction.atomic()
                atomic.__enter__()
                if not decision.allowed:
                    failure = f"{piece.where}: not allowed to import ({decision.reason})"
            if failure is not None:
                failed.add(piece.path)
                continue  # pieces of it already under way are dropped
            try:
                if isinstance(result, FhirInputError):
                    raise result
                # a savepoint: a refused COPY leaves the file's transaction usable
                with transaction.atomic():
                    if result is None:
                        writer.write_planned(piece)
                    else:
                        writer.write_sealed(piece, result)
            except FhirInputError as exc:
                failure = str(exc)
            except (IntegrityError, DatabaseIntegrityError) as exc:  # Django's, or COPY's own
                failure = f"{piece.where}: {_integrity_message(exc)}"
            if failure is not None:
                failed.add(piece.path)  # read no further
        finish()
    except BaseException:
        # stopped (SIGTERM, ^C) or a fault: the open file rolls back, its keys go
        if atomic is not None:
            atomic.__exit__(RuntimeError, RuntimeError("bulk import stopped"), None)
            writer.discard_new_keys()
        raise
    return deferred


def _integrity_message(exc: Exception) -> str:
    """Which rule the database enforced, never the values (they may be NHS numbers)."""
    diag = getattr(exc, "diag", None) or getattr(exc.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or "a unique or foreign key rule"
    return (
        f"refused by the database ({constraint}): a patient, identifier or item appears "
        "twice in the file, or another import wrote it at the same time"
    )
