"""Reads for the second-factor pages: a user's own factors, nobody else's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from healthspace.accounts.factors import guards
from healthspace.accounts.login import pending_user_id
from healthspace.accounts.models import Passkey


@dataclass(frozen=True)
class PasskeyRow:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class AppRow:
    id: int
    name: str
    created_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class Factors:
    staff: bool
    passkeys: list[PasskeyRow]
    apps: list[AppRow]
    recovery_codes_left: int

    @property
    def has_factor(self) -> bool:
        return bool(self.passkeys or self.apps)

    @property
    def count(self) -> int:
        return len(self.passkeys) + len(self.apps)


def factors_for(user) -> Factors:
    passkeys = [
        PasskeyRow(p.id, p.name, p.created_at, p.last_used_at)
        for p in Passkey.objects.filter(user_id=user.pk).order_by("created_at", "id")
    ]
    apps = [
        AppRow(d.id, d.name, d.created_at, d.last_used_at)
        for d in TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("id")
    ]
    return Factors(
        staff=guards.is_staff_account(user),
        passkeys=passkeys,
        apps=apps,
        recovery_codes_left=StaticToken.objects.filter(device__user_id=user.pk).count(),
    )


def passkey_of(user, passkey_id: int) -> PasskeyRow | None:
    """One of the user's own passkeys; another user's id finds nothing (never 'forbidden')."""
    p = Passkey.objects.filter(user_id=user.pk, pk=passkey_id).first()
    return PasskeyRow(p.id, p.name, p.created_at, p.last_used_at) if p else None


def app_of(user, device_id: int) -> AppRow | None:
    d = TOTPDevice.objects.filter(user_id=user.pk, pk=device_id, confirmed=True).first()
    return AppRow(d.id, d.name, d.created_at, d.last_used_at) if d else None


def second_step_user(request: HttpRequest) -> tuple[Any, str]:
    """Who is at the second-factor step: the logged-in user ('step-up') or the user whose
    password was accepted in the last few minutes ('login'); (None, '') otherwise."""
    if request.user.is_authenticated:
        return request.user, "step-up"
    pk = pending_user_id(request)
    if pk is None:
        return None, ""
    user = get_user_model().objects.filter(pk=pk, is_active=True).first()
    return (user, "login") if user is not None else (None, "")
