from __future__ import annotations

from django import forms

from healthspace.access.context import ConsentState as S

# What each state means, in the patient's words. Title for the current choice and history;
# label + hint for the radios.
STATE_TEXT: dict[S, dict[str, str]] = {
    S.IMPLIED: {
        "title": "Core information only (the standard choice)",
        "label": "Share core information only (the standard choice)",
        "hint": "Your medicines, allergies and any bad reactions to medicines.",
    },
    S.CORE_AND_ADDITIONAL: {
        "title": "Core and additional information",
        "label": "Share core and additional information",
        "hint": (
            "As well as your medicines, allergies and reactions: your illnesses and health "
            "problems, test results, immunisations and other details that help staff care "
            "for you. Additional information is only shared because you agreed to it."
        ),
    },
    S.CORE_ONLY: {
        "title": "Core information only (your choice)",
        "label": "Share core information only",
        "hint": "Your medicines, allergies and any bad reactions to medicines. Nothing else.",
    },
    S.DISSENT: {
        "title": "No Summary Care Record (you opted out before it was created)",
        "label": "Opt out",
        "hint": "",
    },
    S.HIDDEN: {
        "title": "Hidden",
        "label": "Hide my Summary Care Record",
        "hint": (
            "Staff will only see that your record is hidden, not what is in it. To unhide "
            "it later you need to write to your GP practice: a privacy officer decides."
        ),
    },
    S.DELETION_REQUESTED: {
        "title": "Hidden while a privacy officer decides on your request to delete it",
        "label": "Ask for my Summary Care Record to be deleted",
        "hint": (
            "Your record is hidden from staff straight away. A privacy officer decides "
            "whether it can be deleted and writes to you."
        ),
    },
    S.DELETED: {"title": "Deleted", "label": "", "hint": ""},
}


class ChoiceForm(forms.Form):
    choice = forms.ChoiceField(
        error_messages={
            "required": "Select what you want to happen to your Summary Care Record",
            "invalid_choice": "Select one of the options shown",
        }
    )

    def __init__(self, *args, allowed: list[S], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["choice"].choices = [(s.value, STATE_TEXT[s]["label"]) for s in allowed]
