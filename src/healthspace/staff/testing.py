"""Test helper: a staff user with roles at an organisation, without a password (no
Argon2 cost). Sign them in with accounts.sessions.testing.signed_in_client(...,
second_factor="passkey")."""

from __future__ import annotations

from itertools import count

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from healthspace.accounts.models import Account
from healthspace.ops.demo import DEMO_PRACTICE
from healthspace.records.models import Organisation

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
_numbers = count()


def organisation_for(ods: str, name: str | None = None) -> Organisation:
    """The demo practice keeps its demo name; any other code is "Trust <code>"."""
    name = name or (DEMO_PRACTICE[1] if ods == DEMO_PRACTICE[0] else f"Trust {ods}")
    return Organisation.objects.get_or_create(
        ods_code=ods,
        defaults={"name": name, "identifier_system": ODS_SYSTEM, "identifier_value": ods},
    )[0]


def make_staff_user(
    *roles: str,
    ods: str = DEMO_PRACTICE[0],
    first: str = "Asha",
    last: str = "Patel",
    username: str | None = None,
):
    user = get_user_model().objects.create(
        username=username or f"staff{next(_numbers)}@example.nhs.uk",
        first_name=first,
        last_name=last,
    )
    Account.objects.create(user=user, kind=Account.Kind.STAFF, organisation=organisation_for(ods))
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user
