"""The Summary Care Record as a printable PDF (WeasyPrint): what "ask your GP to print
your SCR" gave, in one click. NHS number, name, date of birth, practice, the date it was
made, then every section (a withheld section says so; an empty one says "none recorded").
Items recorded in error are left out, as on the page.

WeasyPrint renders HTML with Pango (Debian: libpango-1.0-0, libpangoft2-1.0-0, installed
by ``.ci/run`` when missing) and the fonts it finds (fonts-dejavu-core).
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from healthspace.core.clock import now
from healthspace.core.nhs_numbers import format_spaced
from healthspace.records import fhir_map
from healthspace.records.models import ADDITIONAL_SECTIONS, CORE_SECTIONS, Section
from healthspace.records.patient_items import PATIENT_RECORDED_TAG


def _line(resource: dict[str, Any]) -> dict[str, Any]:
    view = fhir_map.describe(resource)
    when = fhir_map.recorded_at(resource)
    return {
        "title": view.title,
        "status": view.status or "",
        "when": when.date().isoformat() if when is not None else "",
        "details": view.details[:4],
        "patient_recorded": any(
            t.get("code") == PATIENT_RECORDED_TAG["code"]
            for t in (resource.get("meta") or {}).get("tag", [])
        ),
    }


def scr_context(data) -> dict[str, Any]:
    patient = data.patient or {}
    by_section: dict[str, list[dict[str, Any]]] = {}
    for section, resource in data.items:
        if fhir_map.entered_in_error(resource):
            continue
        by_section.setdefault(section, []).append(_line(resource))
    practices = [g.get("display") for g in patient.get("generalPractitioner") or []]
    sections = [
        {
            "label": Section(key).label,
            "core": key in CORE_SECTIONS,
            "items": by_section.get(key, []),
            "withheld": key in data.withheld,
        }
        for key in (*CORE_SECTIONS, *ADDITIONAL_SECTIONS)
    ]
    return {
        "name": fhir_map.human_name(patient) or "Name not recorded",
        "nhs_number": format_spaced(data.nhs_number),
        "birth_date": patient.get("birthDate") or "Not recorded",
        "practice": next((p for p in practices if p), "Not recorded"),
        "made_at": timezone.localtime(now()).strftime("%-d %B %Y at %H:%M"),
        "sections": sections,
    }


def scr_pdf(data) -> bytes:
    from weasyprint import HTML

    html = render_to_string("portability/scr_print.html", scr_context(data))
    return HTML(string=html).write_pdf()
