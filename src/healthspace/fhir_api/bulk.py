"""FHIR Bulk Data export (system clients only): ``$export`` at system, ``Patient`` or
``Group/[id]`` level, answered 202 with a ``Content-Location`` to poll; the job runs as a
Django task (``healthspace worker``); the manifest lists one NDJSON file per type.

Every level reaches the same patients: those registered at the client's organisation
(``Group/<ODS code>`` is that group; there is no "everyone"). Each patient is read through
``selectors.load_record`` with ``Action.EXPORT_RECORD``: decided per section, audited per
patient in the transaction that stores their chunks; patients the policy refuses (hidden,
dissent, deleted) are left out, and sections without consent are withheld.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from healthspace.access.context import Interaction
from healthspace.access.policy import Action
from healthspace.core.clock import now
from healthspace.core.replicas import replica_reads
from healthspace.fhir_api import selectors as reads
from healthspace.fhir_api.http import NDJSON, ApiError, fhir_response, not_found
from healthspace.fhir_api.models import ExportChunk, ExportJob, chunk_purpose
from healthspace.fhir_api.resources import base, instant
from healthspace.fhir_api.search import ITEM_PARAMS, date_range
from healthspace.records.models import Patient
from healthspace.smart.models import AppRegistration
from healthspace.smart.scopes import grants_of
from healthspace.smart.tokens import TokenActor
from healthspace.vault import services as vault

log = logging.getLogger(__name__)

EXPORT_TYPES = ("Patient", *ITEM_PARAMS)
OUTPUT_FORMATS = {None, "application/fhir+ndjson", "application/ndjson", "ndjson"}
MAX_ACTIVE_JOBS = 3
BATCH = 200


def _lenient(request: HttpRequest) -> bool:
    return "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")


def kick_off(
    request: HttpRequest, who: TokenActor, *, level: str, group_id: str | None = None
) -> HttpResponse:
    if not who.is_system:
        raise ApiError(403, "forbidden", "Bulk export is for system clients (Backend Services).")
    reads.require_token(who, Action.EXPORT_RECORD, "Patient", Interaction.READ)
    if level == "group" and (group_id or "").upper() != (who.actor.organisation or ""):
        raise not_found("Group")
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise ApiError(400, "invalid", "Bulk export needs the header Prefer: respond-async.")
    known = {"_outputFormat", "_type", "_since", "_format"}
    extra = sorted(set(request.GET) - known)
    if extra and not _lenient(request):
        raise ApiError(400, "not-supported", f"Export parameters not supported: {', '.join(extra)}")
    if request.GET.get("_outputFormat") not in OUTPUT_FORMATS:
        raise ApiError(400, "not-supported", "_outputFormat: only application/fhir+ndjson.")
    types: list[str] = []
    if request.GET.get("_type"):
        types = [t.strip() for t in request.GET["_type"].split(",") if t.strip()]
        unknown = [t for t in types if t not in EXPORT_TYPES]
        if unknown:
            raise ApiError(400, "not-supported", f"_type: cannot export {', '.join(unknown)}")
    since = None
    if request.GET.get("_since"):
        rng = date_range(request.GET["_since"])
        if rng is None:
            raise ApiError(400, "invalid", "_since must be a FHIR instant.")
        since = rng.start
    expire()  # files of expired exports go first (the worker also runs this when each expires)
    active = ExportJob.objects.filter(
        registration_id=who.registration_id,
        status__in=[ExportJob.Status.ACCEPTED, ExportJob.Status.RUNNING],
    ).count()
    if active >= MAX_ACTIVE_JOBS:
        raise ApiError(
            429,
            "throttled",
            "Too many exports running: wait for one to finish.",
            headers={"Retry-After": "60"},
        )
    from healthspace.fhir_api.tasks import run_export

    with transaction.atomic():
        job = ExportJob.objects.create(
            registration_id=who.registration_id,
            level=level,
            scopes=" ".join(sorted(who.scopes)),
            types=types,
            since=since,
            request_url=request.build_absolute_uri(),
            created_at=now(),
        )
        run_export.enqueue(str(job.id))
    return fhir_response(None, 202, headers={"Content-Location": f"{base()}/$export-poll/{job.id}"})


def _job(who: TokenActor, job_id: str) -> ExportJob:
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        raise not_found("Export") from None
    job = ExportJob.objects.filter(pk=key, registration_id=who.registration_id).first()
    if job is None or (job.expires_at is not None and job.expires_at <= now()):
        raise not_found("Export")
    return job


def status(request: HttpRequest, who: TokenActor, job_id: str) -> HttpResponse:
    job = _job(who, job_id)
    if request.method == "DELETE":
        with transaction.atomic():
            ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.CANCELLED)
            ExportChunk.objects.filter(job=job).delete()
        return fhir_response(None, 202)
    if job.status in (ExportJob.Status.ACCEPTED, ExportJob.Status.RUNNING):
        progress = (
            f"{job.patients_done} of {job.patients_total} patients"
            if job.patients_total
            else "queued"
        )
        return fhir_response(None, 202, headers={"X-Progress": progress, "Retry-After": "5"})
    if job.status == ExportJob.Status.CANCELLED:
        raise not_found("Export")
    if job.status == ExportJob.Status.FAILED:
        raise ApiError(500, "exception", f"The export failed: {job.error or 'see the server log'}.")
    counts: dict[str, int] = {}
    for rtype, count in ExportChunk.objects.filter(job=job).values_list("resource_type", "count"):
        counts[rtype] = counts.get(rtype, 0) + count
    manifest = {
        "transactionTime": instant(job.created_at),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {"type": rtype, "url": f"{base()}/$export-file/{job.id}/{rtype}.ndjson", "count": n}
            for rtype, n in sorted(counts.items())
        ],
        "error": [],
    }
    return fhir_response(
        manifest,
        200,
        content_type="application/json",
        headers={"Expires": job.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        if job.expires_at
        else None,
    )


def download(request: HttpRequest, who: TokenActor, job_id: str, name: str) -> HttpResponse:
    job = _job(who, job_id)
    rtype = name.removesuffix(".ndjson")
    if job.status != ExportJob.Status.COMPLETE or not name.endswith(".ndjson"):
        raise not_found("Export file")
    if not ExportChunk.objects.filter(job=job, resource_type=rtype).exists():
        raise not_found("Export file")

    def lines():
        last = 0
        while True:
            chunks = list(
                ExportChunk.objects.filter(job=job, resource_type=rtype, pk__gt=last)
                .order_by("pk")
                .only("pk", "patient_id", "payload")[:BATCH]
            )
            if not chunks:
                return
            ciphers = vault.ciphers_for(patient_ids={c.patient_id for c in chunks})
            for chunk in chunks:
                cipher = ciphers.get(chunk.patient_id)
                if cipher is not None:  # shredded since: nothing of theirs leaves
                    yield cipher.open(
                        bytes(chunk.payload),
                        purpose=chunk_purpose(job.id, rtype, chunk.patient_id),
                    )
            last = chunks[-1].pk

    response = StreamingHttpResponse(lines(), content_type=f"{NDJSON}; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _actor_for(job: ExportJob) -> TokenActor | None:
    registration = (
        AppRegistration.objects.select_related("application", "organisation")
        .filter(pk=job.registration_id, active=True, kind=AppRegistration.Kind.SYSTEM)
        .first()
    )
    if registration is None or registration.organisation is None:
        return None
    from healthspace.access.actors import Actor

    client_id = registration.application.client_id
    return TokenActor(
        actor=Actor.client(client_id, organisation=registration.organisation.ods_code),
        grants=grants_of(job.scopes),
        scopes=frozenset(job.scopes.split()),
        client_id=client_id,
        client_name=registration.application.name,
        kind=registration.kind,
        registration_id=registration.pk,
        source_system=registration.source_system,
    )


def _ndjson(resources: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for r in resources
    )


def run(job_id: str) -> str:
    """The task: each registered patient of the client's organisation, in id order,
    in batches; stops if the job is cancelled or the client disabled."""
    job = ExportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ExportJob.Status.ACCEPTED:
        return "nothing-to-do"
    who = _actor_for(job)
    if who is None:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error="client disabled", completed_at=now()
        )
        return "client-disabled"
    patients = Patient.objects.filter(registered_practice__ods_code=who.actor.organisation)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.RUNNING, patients_total=patients.count()
    )
    item_types = [t for t in job.types if t != "Patient"] if job.types else list(ITEM_PARAMS)
    want_patient = not job.types or "Patient" in job.types
    done, last = 0, None
    try:
        while True:
            batch = patients.order_by("id")
            if last is not None:
                batch = batch.filter(id__gt=last)
            # Which patients to walk may be a moment stale (a replica, when there is
            # one); each record is then read, decided and audited on the primary.
            with replica_reads():
                ids_ = list(batch.values_list("id", flat=True)[:BATCH])
            if not ids_:
                break
            if ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.CANCELLED).exists():
                return "cancelled"
            for patient_id in ids_:
                _export_patient(job, who, patient_id, item_types, want_patient)
            done += len(ids_)
            last = ids_[-1]
            ExportJob.objects.filter(pk=job.pk).update(patients_done=done)
    except Exception:
        log.exception("export %s failed", job.pk)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error="internal error", completed_at=now()
        )
        ExportChunk.objects.filter(job_id=job.pk).delete()
        return "failed"
    at = now()
    expires = at + timedelta(hours=settings.HEALTHSPACE_BULK_EXPORT_HOURS)
    from healthspace.fhir_api.tasks import expire_exports

    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk).exclude(status=ExportJob.Status.CANCELLED).update(
            status=ExportJob.Status.COMPLETE, completed_at=at, expires_at=expires
        )
        expire_exports.using(run_after=expires + timedelta(seconds=1)).enqueue()
    return f"exported {done} patients"


def _export_patient(
    job: ExportJob, who: TokenActor, patient_id, types: list[str], want_patient: bool
) -> None:
    with transaction.atomic():
        try:
            record = reads.load_record(
                who,
                patient_id,
                operation="$export",
                action=Action.EXPORT_RECORD,
                types=types,
                since=job.since,
            )
        except ApiError:
            return  # refused (consent, deleted) or gone: left out, the refusal audited
        by_type: dict[str, list[dict[str, Any]]] = {}
        if want_patient:
            by_type["Patient"] = [record.patient]
        for _, resource in record.items:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        cipher = vault.cipher_for(patient_id=patient_id)
        ExportChunk.objects.bulk_create(
            [
                ExportChunk(
                    job=job,
                    resource_type=rtype,
                    patient_id=patient_id,
                    count=len(resources),
                    payload=cipher.seal(
                        _ndjson(resources), purpose=chunk_purpose(job.id, rtype, patient_id)
                    ),
                )
                for rtype, resources in by_type.items()
                if resources
            ]
        )


def expire() -> int:
    """Delete the files of expired jobs (run by the worker, and at each kick-off)."""
    jobs = ExportJob.objects.filter(expires_at__lte=now())
    count = jobs.count()
    ExportChunk.objects.filter(job__in=jobs).delete()
    jobs.delete()
    return count
