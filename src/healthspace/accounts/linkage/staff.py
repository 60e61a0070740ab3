"""Staff accounts: created by an operator (never self-registered), set up through a
one-time link.

The operator's command prints a signed link that works for 72 hours and only until a
passcode is set: the token carries a fingerprint of the user's password hash, so setting
the passcode spends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac

from healthspace.access.actors import Actor
from healthspace.access.roles import STAFF_GROUPS, STAFF_ROLES
from healthspace.accounts.login import normalise_identifier
from healthspace.accounts.models import Account
from healthspace.audit.services import audit_record
from healthspace.core.errors import InvalidInput
from healthspace.records.models import Organisation

SETUP_SALT = "healthspace.accounts.staff-setup"
SETUP_MAX_AGE_SECONDS = 72 * 60 * 60
STAFF_CREATE = "account.staff-create"
STAFF_SETUP = "account.staff-setup"


@dataclass(frozen=True)
class CreatedStaff:
    user: Any
    setup_token: str


def staff_account_create(
    *,
    actor: Actor,
    email: str,
    roles: Iterable[str],
    ods_code: str,
    full_name: str = "",
) -> CreatedStaff:
    """A staff login with roles at one organisation, without a usable password."""
    username = normalise_identifier(email)
    try:
        validate_email(username)
    except ValidationError as exc:
        raise InvalidInput(f"{email!r} is not a valid email address.") from exc
    wanted = list(dict.fromkeys(r.strip() for r in roles))
    if not wanted:
        raise InvalidInput(f"Give at least one --role ({', '.join(sorted(STAFF_GROUPS))}).")
    unknown = [r for r in wanted if r not in STAFF_GROUPS]
    if unknown:
        raise InvalidInput(
            f"Unknown role {', '.join(unknown)}: the roles are {', '.join(sorted(STAFF_GROUPS))}."
        )
    if not set(wanted) & STAFF_ROLES:
        raise InvalidInput("Give at least one role; an activity alone is not a role.")
    organisation = Organisation.objects.filter(ods_code=ods_code.strip().upper()).first()
    if organisation is None:
        known = list(
            Organisation.objects.exclude(ods_code=None)
            .order_by("ods_code")
            .values_list("ods_code", flat=True)
        )
        raise InvalidInput(
            f"No organisation with ODS code {ods_code!r}. "
            + (f"Known ODS codes: {', '.join(known)}." if known else "No organisations yet.")
        )
    user_model = get_user_model()
    first, _, last = full_name.strip().rpartition(" ")
    with transaction.atomic():
        if user_model.objects.filter(username=username).exists():
            raise InvalidInput(f"A login with the email {username} already exists.")
        user = user_model(username=username, email=username, first_name=first, last_name=last)
        if not first:  # a single word: keep it as the last name
            user.first_name, user.last_name = "", full_name.strip()
        # Nobody knows a password until the staff member sets one through the set-up link.
        user.set_unusable_password()
        user.save()
        Account.objects.create(user=user, kind=Account.Kind.STAFF, organisation=organisation)
        for role in wanted:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
        audit_record(
            actor=actor,
            action=STAFF_CREATE,
            patient_id=None,
            outcome="success",
            reason="operator-command",
            detail={"user_id": user.pk, "roles": wanted, "organisation": organisation.ods_code},
        )
    return CreatedStaff(user, staff_setup_token(user))


def _fingerprint(user: Any) -> str:
    return salted_hmac(
        SETUP_SALT, f"{user.pk}|{user.password}|{user.last_login}", algorithm="sha256"
    ).hexdigest()


def staff_setup_token(user: Any) -> str:
    return signing.dumps({"u": user.pk, "f": _fingerprint(user)}, salt=SETUP_SALT)


def _token_data(token: str) -> dict[str, Any] | None:
    try:
        data = signing.loads(token, salt=SETUP_SALT, max_age=SETUP_MAX_AGE_SECONDS)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return data if isinstance(data, dict) else None


def _staff_users() -> Any:
    return get_user_model().objects.filter(is_active=True, account__kind=Account.Kind.STAFF)


def _matches(user: Any, data: dict[str, Any]) -> bool:
    return constant_time_compare(str(data.get("f")), _fingerprint(user))


def staff_setup_user(token: str) -> Any | None:
    """The staff user a set-up link is for, or None if it is forged, expired or spent."""
    data = _token_data(token)
    user = _staff_users().filter(pk=data.get("u")).first() if data else None
    return user if user is not None and data and _matches(user, data) else None


def staff_passcode_set(*, token: str, passcode: str) -> Any:
    """Set the passcode a set-up link is for. Raises InvalidInput (link not valid) or
    ValidationError (passcode not good enough). Returns the user."""
    with transaction.atomic():
        data = _token_data(token)
        # Locked so the same link cannot set two passcodes at the same moment.
        user = (
            _staff_users().select_for_update(of=("self",)).filter(pk=data.get("u")).first()
            if data
            else None
        )
        if user is None or not data or not _matches(user, data):
            raise InvalidInput("This set-up link is not valid.")
        password_validation.validate_password(passcode, user)
        user.set_password(passcode)
        user.save(update_fields=["password"])
        audit_record(
            actor=Actor("staff", f"user:{user.pk}"),
            action=STAFF_SETUP,
            patient_id=None,
            outcome="success",
            reason="set-up-link",
        )
    return user


def staff_setup_restart(*, email: str) -> Any:
    """A staff login whose set-up is not finished gets a new link; earlier links stop working."""
    username = normalise_identifier(email)
    with transaction.atomic():
        user = _staff_users().select_for_update(of=("self",)).filter(username=username).first()
        if user is None:
            raise InvalidInput(f"No active staff login with the email {username}.")
        if user.has_usable_password():
            raise InvalidInput(
                f"{username} has finished setting up their login; a set-up link would replace "
                "their passcode. Use a password reset instead."
            )
        # A new unusable password changes the fingerprint, so the old links are spent.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
