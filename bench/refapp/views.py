"""R2, R3, R4: the references. Each is what the hot path does with nothing of ours around
it: one ORM read; the read plus one durable audit insert (autocommit); 25 resources of one
patient plus the audit insert, as a JSON Bundle."""

from __future__ import annotations

import uuid

from django.http import Http404, JsonResponse
from django.utils import timezone

from refapp.models import RefAudit, RefPatient, RefResource


def _patient(pid: str) -> RefPatient:
    try:
        return RefPatient.objects.get(pk=uuid.UUID(pid))
    except (ValueError, RefPatient.DoesNotExist):
        raise Http404 from None


def _audit(pid) -> None:
    RefAudit.objects.create(
        occurred_at=timezone.now(), patient_id=pid, actor="bench", action="read", detail={}
    )


def r2(request, pid: str):
    return JsonResponse(_patient(pid).resource)


def r3(request, pid: str):
    patient = _patient(pid)
    _audit(patient.pk)
    return JsonResponse(patient.resource)


def r4(request, pid: str):
    key = uuid.UUID(pid)
    rows = list(RefResource.objects.filter(patient_id=key).values_list("resource", flat=True))
    if not rows:
        raise Http404
    _audit(key)
    return JsonResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(rows),
            "entry": [{"resource": r} for r in rows],
        }
    )
