"""Forms of the Communicator (patient and staff pages): a message, with an optional
attachment checked by content (``messaging.attachments``), and a new conversation."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler

from healthspace.core.errors import InvalidInput
from healthspace.messaging import attachments
from healthspace.messaging.content import (
    BODY_EMPTY,
    BODY_MAX,
    BODY_TOO_LONG,
    SUBJECT_EMPTY,
    SUBJECT_TOO_LONG,
    body_clean,
    subject_clean,
)
from healthspace.web.forms import NHSForm


class SealedMemoryUploadHandler(MemoryFileUploadHandler):
    """Keep an upload in memory, whatever its size, so an attachment's bytes never touch
    the disk in the clear before they are sealed. Safe because the request-size
    middleware has already refused any body above HEALTHSPACE_MAX_REQUEST_BYTES."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.activated = True


def attachment_hint(*, for_patient: bool = True) -> str:
    limit = attachments.size_words(settings.HEALTHSPACE_ATTACHMENT_MAX_BYTES)
    hint = f"You can attach one PDF, PNG or JPEG file, up to {limit}."
    if for_patient:
        hint += " For example, a photo of a rash or a letter from a hospital."
    return hint


class MessageForm(NHSForm):
    body = forms.CharField(
        required=True,
        strip=False,
        max_length=BODY_MAX * 2,  # the exact limit (after tidying) is body_clean's
        error_messages={"required": BODY_EMPTY, "max_length": BODY_TOO_LONG},
    )
    attachment = forms.FileField(
        required=False,
        allow_empty_file=True,  # an empty file gets attachments' own message
    )

    def clean_body(self) -> str:
        try:
            return body_clean(self.cleaned_data["body"])
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_attachment(self) -> attachments.CheckedAttachment | None:
        upload = self.cleaned_data.get("attachment")
        if not upload:
            return None
        limit = settings.HEALTHSPACE_ATTACHMENT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(attachments.too_big_message(limit))
        try:
            return attachments.attachment_check(
                name=upload.name or "", data=upload.read(), max_bytes=limit
            )
        except attachments.AttachmentRefused as exc:
            raise forms.ValidationError(str(exc)) from None


class NewThreadForm(MessageForm):
    subject = forms.CharField(
        required=True,
        strip=False,
        max_length=500,
        error_messages={"required": SUBJECT_EMPTY, "max_length": SUBJECT_TOO_LONG},
    )
    field_order = ["subject", "body", "attachment"]

    def clean_subject(self) -> str:
        try:
            return subject_clean(self.cleaned_data["subject"])
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from None


class AssignForm(NHSForm):
    """Assign to me, to a colleague, or to nobody. ``colleagues``: (user id, name)."""

    NOBODY = "nobody"
    ME = "me"
    assignee = forms.ChoiceField(error_messages={"required": "Choose who to assign it to"})

    def __init__(self, *args, colleagues: list[tuple[int, str]], me: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.me = me
        self.fields["assignee"].choices = [
            (self.NOBODY, "Nobody (unassigned)"),
            (self.ME, "You"),
            *[(str(uid), name) for uid, name in colleagues if uid != me],
        ]
        self.fields["assignee"].error_messages["invalid_choice"] = "Choose someone in your team"

    def assignee_id(self) -> int | None:
        value = self.cleaned_data["assignee"]
        if value == self.NOBODY:
            return None
        if value == self.ME:
            return self.me
        return int(value)
