"""Form errors in the shape of the NHS.UK error summary and error message components."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils import timezone

from healthspace.core.clock import now


def error_list(
    form: forms.Form, *, anchors: dict[str, str] | None = None, id_prefix: str = "id_"
) -> list[dict[str, str]]:
    """One entry per field with an error (its first message), linking to the field's input;
    form-wide errors link to the page's main content."""
    anchors = anchors or {}
    return [
        {
            "text": str(messages[0]),
            "href": "#maincontent"
            if name == "__all__"
            else f"#{anchors.get(name, f'{id_prefix}{name}')}",
        }
        for name, messages in form.errors.items()
        if messages
    ]


class NHSForm(forms.Form):
    # field name -> id of the input an error links to, where it is not id_<name>
    anchors: dict[str, str] = {}

    def error_list(self) -> list[dict[str, str]]:
        return error_list(self, anchors=self.anchors)

    def error_for(self, name: str) -> dict[str, str] | None:
        errors = self.errors.get(name)
        return {"text": errors[0]} if errors else None


def date_from_parts(
    form: forms.Form, data: dict[str, Any], prefix: str, *, enter: str, label: str = ""
) -> date | None:
    """A date typed as day, month and year (the NHS.UK date input), real and not in the
    future; the error goes on the day field, which the error summary links to.
    ``enter``: "your date of birth"; ``label``: "Date of birth" (defaults from ``enter``)."""
    label = label or enter[:1].upper() + enter[1:]
    parts = [(data.get(f"{prefix}_{p}") or "").strip() for p in ("day", "month", "year")]
    if not all(parts):
        form.add_error(f"{prefix}_day", f"Enter {enter}, with a day, month and year")
        return None
    try:
        day, month, year = (int(p) for p in parts)
        value = date(year, month, day)
    except ValueError:
        form.add_error(f"{prefix}_day", f"{label} must be a real date")
        return None
    if len(parts[2]) != 4 or value > timezone.localdate(now()):
        form.add_error(f"{prefix}_day", f"{label} must be a real date in the past")
        return None
    return value
