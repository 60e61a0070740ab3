"""Share codes: single use, before they expire, for the viewing minutes only, cancelled
by the patient at once, throttled at the door, stored only as a hash, in the trail with
the professional's own words."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient
from healthspace.consent.models import ShareCode
from healthspace.consent.sharing import codes, services
from healthspace.core import clock

pytestmark = pytest.mark.django_db
VIEWER = {"name": "Priya Patel", "organisation": "Riverside Pharmacy"}


def _make(world, minutes=30):
    return services.share_code_create(
        actor=world.owner_actor(), user_id=world.owner.pk, profession="pharmacist", minutes=minutes
    )


def _use(client, text):
    return client.post(reverse("share:entry"), {"code": text, **VIEWER})


def test_codes_are_short_typable_and_high_entropy():
    seen = {codes.new_code() for _ in range(200)}
    assert len(seen) == 200
    for code in seen:
        assert len(code) == 11 and code[5] == "-"
        assert set(code.replace("-", "")) <= set(codes.ALPHABET)
    sample = next(iter(seen))
    # what people mistype still reads as the code; lower case and spaces too
    assert codes.normalised(sample.lower().replace("-", " ")) == sample.replace("-", "")
    assert codes.normalised("0O1IL-00000") == "0011100000"
    assert codes.normalised("too short") is None


def test_a_code_opens_the_summary_once(world, client):
    made = _make(world)
    row = ShareCode.objects.get(pk=made.code.id)
    assert made.text.replace("-", "") not in row.code_hash and made.text not in str(row.__dict__)
    response = _use(client, made.text)
    assert response.status_code == 302
    page = client.get(reverse("share:summary"))
    body = page.content.decode()
    assert page.status_code == 200 and "with a share code, as Priya Patel" in body
    assert page["Cache-Control"] == "no-store"
    # the same code again, from anyone: refused with the one message
    again = _use(type(client)(), made.text)
    assert again.status_code == 400 and "This code cannot be used" in again.content.decode()
    # ... and the try is in the patient's trail, not under the first professional's name
    tried = AuditEvent.objects.get(action="sharing.code-use", outcome="denied")
    assert tried.patient_id == world.patient_id
    denied = [
        e for e in access_history_for_patient(patient_id=world.patient_id) if e.outcome == "denied"
    ]
    assert [e.who for e in denied] == ["A professional using a share code"]
    # the view went through scr_for as the share-code actor, and the patient sees who
    assert AuditEvent.objects.filter(
        patient_id=world.patient_id, action="scr.view", actor=f"share-code:code:{made.code.id}"
    ).exists()
    entries = [
        e for e in access_history_for_patient(patient_id=world.patient_id) if e.who == "Priya Patel"
    ]
    assert entries and entries[0].organisation == "Riverside Pharmacy"
    assert "Pharmacist, using a share code" in entries[0].roles
    assert any(e.why == "Using a share code you made" for e in entries)


def test_the_viewing_time_ends(world, client):
    made = _make(world)
    _use(client, made.text)
    with time_machine.travel(clock.now() + timedelta(minutes=31), tick=False):
        response = client.get(reverse("share:summary"))
    assert response.status_code == 404
    assert "Medications" not in response.content.decode()


def test_an_unused_code_expires(world, client):
    made = _make(world, minutes=30)
    with time_machine.travel(clock.now() + timedelta(minutes=31), tick=False):
        assert _use(client, made.text).status_code == 400
    assert ShareCode.objects.get(pk=made.code.id).used_at is None


def test_the_patient_cancels_a_code_even_while_it_is_being_viewed(world, client):
    made = _make(world)
    _use(client, made.text)
    owner = world.client(world.owner)
    assert owner.post(reverse("sharing:code-cancel", args=[made.code.id])).status_code == 302
    assert client.get(reverse("share:summary")).status_code == 404
    unused = _make(world)
    owner.post(reverse("sharing:code-cancel", args=[unused.code.id]))
    assert _use(type(client)(), unused.text).status_code == 400


def test_a_session_without_a_code_sees_nothing(client):
    assert client.get(reverse("share:summary")).status_code == 404


def test_guessing_is_throttled(world, client):
    statuses = [_use(client, "AAAAA-AAAAA").status_code for _ in range(8)]
    assert statuses[0] == 400
    assert 429 in statuses
    made = _make(world)
    # throttled: even the right code is not evaluated now
    assert _use(client, made.text).status_code == 429
    assert ShareCode.objects.get(pk=made.code.id).used_at is None


def test_the_qr_code_is_an_svg_image_without_script_or_style(world):
    owner = world.client(world.owner)
    response = owner.post(reverse("sharing:code-new"), {"profession": "doctor", "minutes": "60"})
    assert response.status_code == 200
    code = ShareCode.objects.get()
    body = response.content.decode()
    assert reverse("sharing:code-qr", args=[code.id]) in body
    image = owner.get(reverse("sharing:code-qr", args=[code.id]))
    assert image.status_code == 200 and image["Content-Type"] == "image/svg+xml"
    svg = image.content.decode()
    assert svg.startswith("<svg") and "<script" not in svg and "<style" not in svg
    assert " style=" not in svg
    # someone else, or after the code was used: no image
    assert (
        world.client(world.grantee).get(reverse("sharing:code-qr", args=[code.id])).status_code
        == 404
    )


def test_a_code_shows_only_what_the_patients_consent_lets_clinicians_see(world, client):
    from healthspace.access.context import ConsentState
    from healthspace.consent.services import consent_change

    made = _make(world)
    _use(client, made.text)
    audited = AuditEvent.objects.filter(actor=f"share-code:code:{made.code.id}", action="scr.view")
    client.get(reverse("share:summary"))
    assert set(audited.latest("pk").detail["sections"]) == {
        "medications", "allergies", "adverse_reactions"
    }  # fmt: skip
    consent_change(
        actor=world.owner_actor(),
        patient_id=world.patient_id,
        new_state=ConsentState.HIDDEN,
        source="patient-online",
    )
    assert client.get(reverse("share:summary")).status_code == 404
