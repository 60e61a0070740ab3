"""The Communication mapping (messaging.fhir): whatever a patient or their care team may
write (messaging.content's rules), the resource is valid FHIR R4 (fhir.resources R4B)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fhir.resources.R4B.communication import Communication
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.core.errors import InvalidInput
from healthspace.messaging.content import body_clean, subject_clean
from healthspace.messaging.fhir import Sealed, communication_resource
from healthspace.messaging.models import Side

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=300
)


def _resource(subject: str, body: str, sender: str, attachments=(), previous=None, ods="A81001"):
    return communication_resource(
        message_id=uuid.uuid4(),
        thread_id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        sender=sender,
        sender_name="Asha Patel",
        team_name="The Surgery",
        team_ods=ods,
        sent_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        previous_id=previous,
        content=Sealed(subject, body, tuple(attachments)),
    )


@settings(max_examples=150, deadline=None)
@given(subject=TEXT, body=TEXT, sender=st.sampled_from([Side.PATIENT, Side.TEAM]))
def test_every_message_that_can_be_sent_maps_to_a_valid_communication(subject, body, sender):
    try:
        subject, body = subject_clean(subject), body_clean(body)
    except InvalidInput:
        return  # never stored
    resource = _resource(subject, body, sender)
    parsed = Communication.model_validate(resource)
    assert parsed.payload[0].contentString == body  # as written, nothing escaped or lost
    assert parsed.topic.text == subject


def test_patient_and_team_sides_and_attachments():
    previous = uuid.uuid4()
    mine = _resource(
        "Rash",
        "<script>alert(1)</script>",
        Side.PATIENT,
        attachments=[{"name": "rash.png", "content_type": "image/png", "size": 1234}],
        previous=previous,
    )
    Communication.model_validate(mine)
    assert mine["sender"]["reference"].startswith("Patient/")
    assert mine["recipient"][0]["identifier"]["value"] == "A81001"
    assert mine["payload"][1]["contentAttachment"] == {
        "contentType": "image/png",
        "title": "rash.png",
        "size": 1234,
    }
    assert mine["inResponseTo"] == [{"reference": f"Communication/{previous}"}]
    assert mine["sent"] == mine["meta"]["lastUpdated"] == "2026-01-02T03:04:05.678Z"
    theirs = _resource("Rash", "Fine.", Side.TEAM, ods=None)
    Communication.model_validate(theirs)
    assert theirs["sender"] == {"display": "Asha Patel, The Surgery"}
    assert theirs["recipient"][0]["reference"].startswith("Patient/")
