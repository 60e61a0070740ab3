from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from healthspace.accounts.actors import actor_for_user
from healthspace.accounts.models import PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.consent.models import Grant
from healthspace.consent.sharing import services
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import ScrItem, Section

GRANTED = ["medications", "allergies"]


@dataclass
class World:
    owner: object  # the patient who shares (a User)
    grantee: object  # another patient's account
    stranger: object  # a third patient's account
    patient_id: object

    def owner_actor(self):
        return actor_for_user(self.owner)

    def client(self, user, **kwargs):
        return signed_in_client(user, **kwargs)


@pytest.fixture
def world(synthetic_patients, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_demo_logins(count=3)
    links = list(PatientLink.objects.select_related("user").order_by("user__username"))
    owner, grantee, stranger = (link.user for link in links[:3])
    owner.first_name, owner.last_name = "Olive", "Owner"
    owner.save()
    grantee.first_name, grantee.last_name = "Grace", "Grantee"
    grantee.save()
    return World(owner, grantee, stranger, links[0].patient_id)


def make_grant(world: World, sections=GRANTED, *, days: int = 30) -> Grant:
    grant = services.grant_create(
        actor=world.owner_actor(),
        user_id=world.owner.pk,
        email=world.grantee.username,
        sections=list(sections),
        until=timezone.localdate() + timedelta(days=days),
    )
    return services.grant_answer(user=world.grantee, grant_id=grant.id, accept=True)


@pytest.fixture
def grant(world) -> Grant:
    return make_grant(world)


def titles_by_section(patient_id) -> dict[str, set[str]]:
    """What each section of the owner's record holds, as a page shows it (titles)."""
    from healthspace.access.actors import Actor
    from healthspace.records.selectors import scr_for

    owner = PatientLink.objects.get(patient_id=patient_id).user
    scr = scr_for(actor=actor_for_user(owner), patient_id=patient_id)
    assert ScrItem.objects.filter(patient_id=patient_id).exists()
    del Actor
    return {s.key: {r.view.title for r in s.items} for s in scr.sections}, {
        s.key: {w for r in s.items for w in (r.view.title, r.author, r.organisation) if w}
        for s in scr.sections
    }


def ungranted_titles(patient_id, granted=GRANTED) -> set[str]:
    """Titles of items only in sections not granted (what a leak would show)."""
    titles, words = titles_by_section(patient_id)
    shown = set().union(*(words[s] for s in granted if s in words))
    hidden = set().union(*(v for k, v in titles.items() if k not in granted))
    return {t for t in hidden - shown if len(t) > 6}


__all__ = ["GRANTED", "Section", "World", "get_user_model", "make_grant", "ungranted_titles"]
