"""Fixtures: two linked patients, staff who looked at their records, and the helpers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from healthspace.access.actors import Actor
from healthspace.accounts.models import Account, PatientLink
from healthspace.accounts.sessions.testing import signed_in_client
from healthspace.audit.services import audit_record
from healthspace.ops.demo import ensure_demo_logins
from healthspace.records.models import Organisation


@pytest.fixture
def patients(synthetic_patients):
    """Two verified patients: (user, patient_id) each."""
    logins = ensure_demo_logins(count=2)
    users = get_user_model().objects.filter(username__in=[d.email for d in logins if d.nhs_number])
    links = {link.user_id: link.patient_id for link in PatientLink.objects.filter(user__in=users)}
    return [(u, links[u.pk]) for u in sorted(users, key=lambda u: u.username)]


@pytest.fixture
def make_staff(db):
    """Staff users without a password (no Argon2 cost): name, organisation, roles."""
    counter = iter(range(10_000))

    def make(first="Asha", last="Patel", org="Leeds General Infirmary", roles=("clinician",)):
        n = next(counter)
        user = get_user_model().objects.create(
            username=f"staff{n}@example.nhs.uk", first_name=first, last_name=last
        )
        organisation, _ = Organisation.objects.get_or_create(
            identifier_system="https://fhir.nhs.uk/Id/ods-organization-code",
            identifier_value=f"RR8{n:02d}",
            defaults={"name": org, "ods_code": f"RR8{n:02d}"},
        )
        Account.objects.create(user=user, kind=Account.Kind.STAFF, organisation=organisation)
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


def record_event(
    user_or_actor,
    patient_id,
    *,
    action="scr.view",
    outcome="success",
    reason="permission-given",
    detail=None,
):
    actor = (
        user_or_actor
        if isinstance(user_or_actor, Actor)
        else Actor("staff", f"user:{user_or_actor.pk}")
    )
    with transaction.atomic():
        return audit_record(
            actor=actor,
            action=action,
            patient_id=patient_id,
            outcome=outcome,
            reason=reason,
            detail=detail,
        )


@pytest.fixture
def signed_in():
    return signed_in_client
