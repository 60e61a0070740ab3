"""The pause ("I'm being pressured to share my record"): everything shared stops, codes
are cancelled, nothing new can be shared, the privacy officer is alerted, and grantees
see nothing they would not see after an ordinary revocation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from healthspace.cases.models import PrivacyCase
from healthspace.consent.models import Grant, ShareCode, SharingPause
from healthspace.consent.sharing import services
from healthspace.consent.sharing.tests.conftest import make_grant
from healthspace.core import clock
from healthspace.core.errors import InvalidInput, NotFound

pytestmark = pytest.mark.django_db
TRACES = ("paus", "pressur", "coerc", "frozen", "freez", "privacy officer")


def _page(response) -> str:
    """A page without what differs per response (CSRF tokens, CSP nonces)."""
    return re.sub(r'(value|nonce)="[^"]*"', "", response.content.decode())


def _pause(world):
    owner = world.client(world.owner)
    response = owner.post(reverse("sharing:settings"), {"sharing": "paused"})
    assert response.status_code == 302
    return owner


def test_pausing_stops_everything_and_alerts_the_privacy_officer(world, grant, client):
    code = services.share_code_create(
        actor=world.owner_actor(), user_id=world.owner.pk, profession="nurse", minutes=60
    )
    client.post(reverse("share:entry"), {"code": code.text, "name": "N", "organisation": "O"})
    assert client.get(reverse("share:summary")).status_code == 200
    _pause(world)
    assert Grant.objects.get(pk=grant.id).status == Grant.Status.REVOKED
    assert ShareCode.objects.get(pk=code.code.id).cancelled_at is not None
    assert client.get(reverse("share:summary")).status_code == 404  # the viewer mid-look too
    case = PrivacyCase.objects.get(patient_id=world.patient_id)
    assert case.kind == "sharing-paused" and case.status == "open"
    # no new grant or code while paused
    with pytest.raises(NotFound):
        make_grant(world)
    with pytest.raises(NotFound):
        services.share_code_create(
            actor=world.owner_actor(), user_id=world.owner.pk, profession="nurse", minutes=60
        )


def test_the_pause_is_invisible_to_grantees(world):
    revoked, paused = make_grant(world), make_grant(world)
    grantee = world.client(world.grantee)
    # an ordinary revocation, seen by the grantee
    world.client(world.owner).post(reverse("sharing:grant-stop", args=[revoked.id]))
    after_revoke = grantee.get(reverse("shared:record", args=[revoked.id]))
    _pause(world)
    after_pause = grantee.get(reverse("shared:record", args=[paused.id]))
    assert after_pause.status_code == after_revoke.status_code == 404
    assert _page(after_pause) == _page(after_revoke)
    listing = grantee.get("/shared/").content.decode().lower()
    for trace in TRACES:
        assert trace not in after_pause.content.decode().lower()
        assert trace not in listing
    assert "olive" not in listing
    assert "nobody is sharing" in listing


def test_a_proxy_does_not_open_while_paused_and_comes_back_after(world):
    from healthspace.consent.sharing.tests.test_proxies import approved_proxy

    proxy = approved_proxy(world)
    grantee = world.client(world.grantee)
    url = reverse("shared:record", args=[proxy.id])
    assert grantee.get(url).status_code == 200
    _pause(world)
    assert grantee.get(url).status_code == 404
    case = PrivacyCase.objects.get(patient_id=world.patient_id)
    case.status, case.closed_at = "closed", clock.now()
    case.save()
    world.client(world.owner).post(reverse("sharing:settings"), {"sharing": "on"})
    assert grantee.get(url).status_code == 200


def test_lifting_waits_for_the_privacy_officer(world):
    owner = _pause(world)
    response = owner.post(reverse("sharing:settings"), {"sharing": "on"})
    assert response.status_code == 400
    assert "privacy officer will contact you" in response.content.decode()
    assert SharingPause.objects.filter(lifted_at__isnull=True).exists()
    case = PrivacyCase.objects.get(patient_id=world.patient_id)
    case.status, case.closed_at = "closed", clock.now()
    case.save()
    assert owner.post(reverse("sharing:settings"), {"sharing": "on"}).status_code == 302
    assert not SharingPause.objects.filter(lifted_at__isnull=True).exists()
    # nothing stopped by the pause comes back; sharing anew works
    assert not Grant.objects.filter(status="active").exists()
    make_grant(world)
    with pytest.raises(InvalidInput):
        services.sharing_resume(actor=world.owner_actor())


def test_the_settings_page_reads_like_any_other_setting(world):
    body = world.client(world.owner).get(reverse("sharing:settings")).content.decode()
    assert "<h1>Sharing settings</h1>" in body
    assert 'value="on" checked' in body and 'value="paused"' in body


def test_pausing_twice_keeps_one_pause_and_one_alert(world):
    _pause(world)
    _pause(world)
    assert SharingPause.objects.count() == 1
    assert PrivacyCase.objects.filter(kind="sharing-paused").count() == 1


def test_the_pause_in_the_patients_trail_is_discreet(world):
    from healthspace.audit.selectors import access_history_for_patient

    _pause(world)
    words = [e.what for e in access_history_for_patient(patient_id=world.patient_id)]
    assert "Changed your sharing settings" in words
    assert timedelta


def test_the_privacy_officer_sees_the_alert_and_closing_it_lets_the_patient_lift(world):
    from healthspace.accounts.sessions.testing import signed_in_client
    from healthspace.staff.testing import make_staff_user

    _pause(world)
    case = PrivacyCase.objects.get(patient_id=world.patient_id)
    officer = signed_in_client(
        make_staff_user("privacy-officer", ods="Y00001", username="po@example.nhs.uk"),
        second_factor="passkey",
    )
    queue = officer.get(reverse("staff:privacy-queue")).content.decode()
    assert "may be under pressure to share" in queue
    page = officer.get(reverse("staff:privacy-case", args=[case.pk]))
    assert page.status_code == 200
    assert "Changed the patient&#39;s sharing settings" in page.content.decode()
    response = officer.post(
        reverse("staff:privacy-case", args=[case.pk]),
        {
            "outcome": "appropriate-patient-contacted",
            "note": "Spoke to the patient at the surgery.",
        },
    )
    assert response.status_code in (200, 302)
    case.refresh_from_db()
    assert case.status == "closed"
    assert (
        world.client(world.owner).post(reverse("sharing:settings"), {"sharing": "on"}).status_code
        == 302
    )
