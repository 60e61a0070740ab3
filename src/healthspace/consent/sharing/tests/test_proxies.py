"""Proxy access: asked for by the proxy, decided by the patient's own practice,
recorded, revocable by the practice and by the patient."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from healthspace.accounts.actors import actor_for_user
from healthspace.audit.models import AuditEvent
from healthspace.consent.models import Grant
from healthspace.consent.sharing import services
from healthspace.core import clock
from healthspace.core.errors import NotFound
from healthspace.records.models import Patient
from healthspace.staff.testing import make_staff_user

pytestmark = pytest.mark.django_db


def _request(world, *, born=None):
    patient = Patient.objects.get(pk=world.patient_id)
    services.proxy_request(
        actor=actor_for_user(world.grantee),
        user_id=world.grantee.pk,
        nhs_number=patient.nhs_number,
        birth_date=born or patient.birth_date,
        basis="parent-of-child",
        patient_label="Child Owner",
    )
    return Grant.objects.filter(kind="proxy").first()


def approved_proxy(world) -> Grant:
    grant = _request(world)
    clerk = make_staff_user("registration-clerk", ods="Y00001", username="clerk@example.nhs.uk")
    services.proxy_decide(
        actor=actor_for_user(clerk),
        grant_id=grant.id,
        approve=True,
        sections=["medications", "allergies"],
        until=clock.now().date() + timedelta(days=100),
    )
    grant.refresh_from_db()
    return grant


def test_a_request_that_does_not_match_leaves_nothing(world):
    patient = Patient.objects.get(pk=world.patient_id)
    assert _request(world, born=patient.birth_date - timedelta(days=1)) is None
    assert not AuditEvent.objects.filter(
        patient_id=world.patient_id, action="proxy.request"
    ).exists()


def test_the_practice_approves_and_the_proxy_reads_what_was_approved(world):
    grant = approved_proxy(world)
    assert grant.status == Grant.Status.ACTIVE and grant.sections == ["medications", "allergies"]
    body = (
        world.client(world.grantee).get(reverse("shared:record", args=[grant.id])).content.decode()
    )
    assert (
        "You are viewing" in body and ">Allergies<" in body and "Problems and diagnoses" not in body
    )
    event = AuditEvent.objects.filter(patient_id=world.patient_id, action="scr.view").latest("pk")
    assert event.reason == "proxy-approved"
    # the practice ends it: the next request finds nothing
    clerk = actor_for_user(make_staff_user("clinician", ods="Y00001", username="gp@example.nhs.uk"))
    services.proxy_end(actor=clerk, grant_id=grant.id)
    assert (
        world.client(world.grantee).get(reverse("shared:record", args=[grant.id])).status_code
        == 404
    )


def test_only_the_patients_own_practice_decides(world):
    grant = _request(world)
    elsewhere = make_staff_user("registration-clerk", ods="RR801", username="far@example.nhs.uk")
    with pytest.raises(NotFound):
        services.proxy_decide(
            actor=actor_for_user(elsewhere), grant_id=grant.id, approve=True,
            sections=["allergies"], until=clock.now().date() + timedelta(days=5),
        )  # fmt: skip
    privacy = make_staff_user("privacy-officer", ods="Y00001", username="po@example.nhs.uk")
    with pytest.raises(NotFound):
        services.proxy_decide(actor=actor_for_user(privacy), grant_id=grant.id, approve=False)
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.REQUESTED
    # a requested proxy shows nothing
    assert (
        world.client(world.grantee).get(reverse("shared:record", args=[grant.id])).status_code
        == 404
    )


def test_the_clerk_sees_the_queue_and_decides_on_the_page(world):
    grant = _request(world)
    clerk = make_staff_user("registration-clerk", ods="Y00001", username="clerk@example.nhs.uk")
    from healthspace.accounts.sessions.testing import signed_in_client

    client = signed_in_client(clerk, second_factor="passkey")
    assert "Child Owner" in client.get(reverse("proxies:queue")).content.decode()
    day = clock.now().date() + timedelta(days=30)
    response = client.post(
        reverse("proxies:decide", args=[grant.id]),
        {
            "decision": "approve",
            "sections": ["allergies"],
            "day": day.day,
            "month": day.month,
            "year": day.year,
        },
    )
    assert response.status_code == 302
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.ACTIVE


def test_the_patient_can_stop_a_proxy(world):
    grant = approved_proxy(world)
    world.client(world.owner).post(reverse("sharing:grant-stop", args=[grant.id]))
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.REVOKED
