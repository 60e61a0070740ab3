"""Form errors in the shape of the NHS.UK error summary and error message components."""

from __future__ import annotations

from django import forms


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
