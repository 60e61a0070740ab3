"""Grants: a grantee sees the granted sections and nothing else, on every page; revoking
and expiry take effect on the very next request; every view is in the patient's trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from healthspace.accounts.actors import actor_for_user
from healthspace.audit.models import AuditEvent
from healthspace.audit.selectors import access_history_for_patient
from healthspace.consent.models import Grant
from healthspace.consent.sharing import services
from healthspace.consent.sharing.tests.conftest import GRANTED, make_grant, ungranted_titles
from healthspace.core import clock
from healthspace.core.errors import InvalidInput, NotFound
from healthspace.core.nhs_numbers import format_spaced
from healthspace.notify.testing import run_due_tasks

pytestmark = pytest.mark.django_db


def _body(response) -> str:
    return response.content.decode()


def test_the_grantee_sees_the_granted_sections_with_the_banner(world, grant):
    hidden = ungranted_titles(world.patient_id)
    response = world.client(world.grantee).get(reverse("shared:record", args=[grant.id]))
    body = _body(response)
    assert response.status_code == 200
    assert "You are viewing Olive Owner" in body or "You are viewing" in body
    assert "has shared: Medications, allergies, until" in body
    assert "Problems and diagnoses" not in body and "Test results" not in body
    leaked = {t for t in hidden if t in body}
    assert not leaked, leaked
    # only the granted sections were read, and the view is in the patient's trail
    event = AuditEvent.objects.filter(
        patient_id=world.patient_id, action="scr.view", actor=f"patient:user:{world.grantee.pk}"
    ).get()
    assert sorted(event.detail["sections"]) == sorted(GRANTED)
    entry = next(
        e
        for e in access_history_for_patient(patient_id=world.patient_id)
        if e.what.startswith("Viewed")
    )
    assert entry.who == "Grace Grantee"
    assert entry.why == "You shared your record with them"


def test_no_section_unless_granted_and_accepted(world):
    grant = services.grant_create(
        actor=world.owner_actor(),
        user_id=world.owner.pk,
        email=world.grantee.username,
        sections=["allergies"],
        until=clock.now().date() + timedelta(days=3),
    )
    client = world.client(world.grantee)
    assert client.get(reverse("shared:record", args=[grant.id])).status_code == 404  # not accepted
    services.grant_answer(user=world.grantee, grant_id=grant.id, accept=True)
    body = _body(client.get(reverse("shared:record", args=[grant.id])))
    assert ">Allergies<" in body and ">Medications<" not in body
    # organiser and messages were not granted either
    for name in ("shared:organiser", "shared:messages"):
        assert client.get(reverse(name, args=[grant.id])).status_code == 404
    # someone else's account never opens the grant
    assert (
        world.client(world.stranger).get(reverse("shared:record", args=[grant.id])).status_code
        == 404
    )


def test_grantees_read_only_on_every_page_of_the_owner(world, grant):
    """Tried as the grantee on the owner's own pages and exports: each shows the grantee
    their own things (or nothing), never the owner's record."""
    from healthspace.consent.sharing.tests.conftest import titles_by_section
    from healthspace.records.models import Patient

    own = world.grantee.patient_link.patient_id  # the grantee's own record shows its own
    hidden = ungranted_titles(world.patient_id) - set().union(*titles_by_section(own)[1].values())
    assert hidden

    nhs = Patient.objects.get(pk=world.patient_id).nhs_number
    client = world.client(world.grantee)
    paths = [
        "/record/", "/record/consent/", "/record/access/who-has-looked/", "/record/corrections/",
        "/record/additions/", "/organiser/", "/organiser/readings/export.csv", "/messages/",
        "/record/sharing/", "/shared/", f"/shared/{grant.id}/", f"/shared/{grant.id}/organiser/",
        f"/shared/{grant.id}/messages/", f"/fhir/R4/Patient/{world.patient_id}/$everything",
        f"/fhir/R4/Patient/{world.patient_id}", "/share/summary/",
    ]  # fmt: skip
    for path in paths:
        body = _body(client.get(path))
        assert not {t for t in hidden if t in body}, path
        if not path.startswith(f"/shared/{grant.id}/") or path == f"/shared/{grant.id}/":
            assert format_spaced(nhs) not in body, path
    # and the policy never lets a grantee export, change or send anything
    from healthspace.access.policy import SHARED_READ_ACTIONS, Action, decide

    shared = __import__(
        "healthspace.consent.sharing.selectors", fromlist=["shared_context"]
    ).shared_context(user=world.grantee, grant_id=grant.id)
    for action in Action:
        if action in SHARED_READ_ACTIONS or action == Action.SHARING_ACCEPT:
            continue
        for section in (None, *GRANTED):
            assert not decide(
                shared.actor, action, world.patient_id, section, shared.context
            ).allowed, action


def test_revoking_takes_effect_on_the_next_request(world, grant):
    client = world.client(world.grantee)
    url = reverse("shared:record", args=[grant.id])
    assert client.get(url).status_code == 200
    owner = world.client(world.owner)
    assert owner.post(reverse("sharing:grant-stop", args=[grant.id])).status_code == 302
    response = client.get(url)
    assert response.status_code == 404
    assert "Medications" not in _body(response)
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.REVOKED
    # the refused try is in the patient's trail, under the grantee's name
    assert AuditEvent.objects.filter(
        patient_id=world.patient_id, outcome="denied", actor=f"patient:user:{world.grantee.pk}"
    ).exists()
    assert "Records shared with you" in _body(client.get("/shared/"))
    assert "Olive" not in _body(client.get("/shared/"))


def test_a_grant_ends_on_its_date(world):
    grant = make_grant(world, days=2)
    url = reverse("shared:record", args=[grant.id])
    with time_machine.travel(clock.now() + timedelta(days=2, hours=1), tick=False):
        assert world.client(world.grantee).get(url).status_code == 200  # its last day
    with time_machine.travel(clock.now() + timedelta(days=3, hours=1), tick=False):
        assert world.client(world.grantee).get(url).status_code == 404


def test_inviting_says_nothing_about_whether_an_account_exists(world):
    client = world.client(world.owner)
    day = clock.now().date() + timedelta(days=10)
    form = {"sections": ["allergies"], "day": day.day, "month": day.month, "year": day.year}
    known = client.post(
        reverse("sharing:grant-new"), {**form, "email": world.grantee.username}, follow=True
    )
    unknown = client.post(
        reverse("sharing:grant-new"), {**form, "email": "nobody@example.org"}, follow=True
    )
    assert known.status_code == unknown.status_code == 200
    first = _body(known).split("<h1>")[0]
    assert "Invitation sent" in _body(known) and "Invitation sent" in _body(unknown)
    assert "nobody@example.org" in _body(unknown)  # listed like the other, waiting to accept
    assert _body(unknown).count("waiting for them to accept") == 2
    assert "Grace" not in _body(unknown)  # no name for an account until it accepts
    del first
    run_due_tasks()
    (email,) = mail.outbox  # only the existing account is told, with no names or content
    assert email.to == [world.grantee.username]
    assert "Olive" not in email.body and "llerg" not in email.body


def test_bad_input_changes_nothing(world):
    client = world.client(world.owner)
    past = clock.now().date() - timedelta(days=1)
    for data in (
        {
            "email": world.grantee.username,
            "sections": ["allergies"],
            "day": past.day,
            "month": past.month,
            "year": past.year,
        },
        {
            "email": world.grantee.username,
            "sections": ["nonsense"],
            "day": 1,
            "month": 1,
            "year": 2099,
        },
        {"email": "not-an-email", "sections": ["allergies"], "day": 1, "month": 1, "year": 2030},
    ):
        response = client.post(reverse("sharing:grant-new"), data)
        assert response.status_code == 400
        assert "There is a problem" in _body(response)
    assert not Grant.objects.exists()
    with pytest.raises(InvalidInput):
        services.grant_create(
            actor=world.owner_actor(), user_id=world.owner.pk, email=world.grantee.username,
            sections=["allergies"], until=clock.now().date() + timedelta(days=800),
        )  # fmt: skip


def test_organiser_and_messages_when_granted(world):
    from healthspace.organiser import services as organiser
    from healthspace.organiser.measures import Measure

    organiser.reading_add(
        actor=world.owner_actor(), owner_id=world.owner.pk, measure=Measure.BLOOD_PRESSURE,
        taken_at=clock.now() - timedelta(hours=2), values={"systolic": 131, "diastolic": 79},
        entered={"unit": "mmHg"}, note="",
    )  # fmt: skip
    grant = make_grant(world, sections=["organiser", "messages"])
    client = world.client(world.grantee)
    body = _body(client.get(reverse("shared:organiser", args=[grant.id])))
    assert "131" in body and "You are viewing" in body
    assert client.get(reverse("shared:messages", args=[grant.id])).status_code == 200
    # no SCR section granted: the record itself does not open
    assert client.get(reverse("shared:record", args=[grant.id])).status_code == 404


def test_revoke_all_for_account(world, grant):
    code = services.share_code_create(
        actor=world.owner_actor(), user_id=world.owner.pk, profession="pharmacist", minutes=30
    )
    assert services.revoke_all_for_account(user_id=world.grantee.pk) == (1, 0)
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.REVOKED
    assert services.revoke_all_for_account(user_id=world.owner.pk) == (0, 1)
    code.code.refresh_from_db()
    assert code.code.cancelled_at is not None
    with pytest.raises(NotFound):
        services.grant_answer(user=world.grantee, grant_id=grant.id, accept=True)


def test_the_grantees_page_costs_a_bounded_number_of_queries(world, grant):
    """The guard (grant, consent, pause) and scr_for's constant read: the same for a
    record of 5 items as for 5,000 (scr_for is guarded for that in records/)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = world.client(world.grantee)
    url = reverse("shared:record", args=[grant.id])
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert len(queries) <= QUERY_BUDGET, [q["sql"][:80] for q in queries]


QUERY_BUDGET = 20  # measured: session and user 5, guard 3, scr_for 8, page 4


def test_closing_an_account_stops_its_sharing(world, grant):
    """portability's closure sends account_closing; sharing's receiver stops the grant in
    the closure's transaction, and the counts go into the receipt."""
    from healthspace.portability.closure import account_close

    receipt = account_close(actor=actor_for_user(world.grantee), user=world.grantee)
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.REVOKED
    assert "sharing_grants_stopped" in str(receipt)
