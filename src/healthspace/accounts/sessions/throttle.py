"""Throttling of guessing: passwords, second-factor codes, linkage details, reset requests.

Per account (the submitted identifier) and per client address, counted from the
``AuthAttempt`` rows (only keyed hashes of identifier and address are stored):

* an account's first 5 consecutive failures cost nothing; then each attempt must wait
  2^(n-5) seconds (capped at 5 minutes) after the previous failure;
* 10 consecutive failures lock the account for at most an hour, and its owner gets an
  email with a link that lifts the lock at once (the attacker cannot keep them out);
* an address's first 20 failures in 15 minutes (across all accounts: password spraying)
  cost nothing; then it waits 2^(n-20) s (capped at 15 minutes); 50 block it for 15 minutes.

So at most 10 guesses per account are ever evaluated before the owner must act (NIST
800-63B allows 100), and attempts refused by the throttle are not evaluated and do not
count, so waiting always works. Thresholds are module constants: tests and operators read
them here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse

from healthspace.accounts.models import Account, AuthAttempt
from healthspace.core.clock import now
from healthspace.vault.services import index

ACCOUNT_FREE_FAILURES = 5
ACCOUNT_MAX_DELAY = 300
ACCOUNT_LOCK_AFTER = 10
LOCK_SECONDS = 3600
ADDRESS_WINDOW = timedelta(minutes=15)
ADDRESS_FREE_FAILURES = 20
ADDRESS_MAX_DELAY = 900
ADDRESS_BLOCK_AFTER = 50
UNLOCK_SALT = "healthspace.accounts.unlock"
_WHAT = {
    "login": "password",
    "second-factor": "security code",
    "linkage": "linkage details",
    "reset": "details",
}
THROTTLED = "throttled"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int = 0


def client_address(request: HttpRequest) -> str:
    """The client's address; IPv6 clients by their /64 (one host holds a whole /64)."""
    raw = request.META.get("REMOTE_ADDR") or "unknown"
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if addr.version == 6:
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def _hashes(request: HttpRequest, kind: str, identifier: str) -> tuple[str, str]:
    return (
        index("auth-identifier", f"{kind}|{identifier.strip().lower()}"),
        index("auth-address", client_address(request)),
    )


def _consecutive_failures(rows: list[tuple[bool, str]]) -> int:
    count = 0
    for success, reason in rows:  # newest first
        if success:
            break
        if reason != THROTTLED:
            count += 1
    return count


def _wait(failures: int, free: int, cap: int, last_failure_age: float) -> int:
    if failures < free:
        return 0
    delay = min(2 ** (failures - free), cap)
    return max(0, int(delay - last_failure_age + 0.999))


def check(request: HttpRequest, *, kind: str, identifier: str) -> Verdict:
    """May this attempt be evaluated? Unknown identifiers are treated exactly like
    accounts (same delays, same lock), so the answer says nothing about existence."""
    ident_hash, addr_hash = _hashes(request, kind, identifier)
    moment = now()
    recent = list(
        AuthAttempt.objects.filter(identifier_hash=ident_hash)
        .order_by("-occurred_at")
        .values_list("success", "reason", "occurred_at")[: ACCOUNT_LOCK_AFTER + 5]
    )
    failures = _consecutive_failures([(s, r) for s, r, _ in recent])
    last_fail = next((at for s, r, at in recent if not s and r != THROTTLED), None)
    if last_fail is not None:
        age = (moment - last_fail).total_seconds()
        if failures >= ACCOUNT_LOCK_AFTER:
            wait = max(0, int(LOCK_SECONDS - age + 0.999))
        else:
            wait = _wait(failures, ACCOUNT_FREE_FAILURES, ACCOUNT_MAX_DELAY, age)
        if wait:
            return Verdict(False, wait)

    from_address = list(
        AuthAttempt.objects.filter(
            address_hash=addr_hash, occurred_at__gte=moment - ADDRESS_WINDOW, success=False
        )
        .exclude(reason=THROTTLED)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)[:ADDRESS_BLOCK_AFTER]
    )
    n = len(from_address)
    if n >= ADDRESS_BLOCK_AFTER:
        oldest = from_address[-1]
        return Verdict(False, int((oldest + ADDRESS_WINDOW - moment).total_seconds()) + 1)
    if n:
        wait = _wait(
            n, ADDRESS_FREE_FAILURES, ADDRESS_MAX_DELAY, (moment - from_address[0]).total_seconds()
        )
        if wait:
            return Verdict(False, wait)
    return Verdict(True)


def record(
    request: HttpRequest,
    *,
    kind: str,
    identifier: str,
    user=None,
    success: bool,
    reason: str = "",
) -> None:
    """Record an attempt (never the secret tried). Locks the account on the 10th failure."""
    ident_hash, addr_hash = _hashes(request, kind, identifier)
    with transaction.atomic():
        AuthAttempt.objects.create(
            occurred_at=now(),
            kind=kind,
            user=user if user is not None and user.pk else None,
            identifier_hash=ident_hash,
            address_hash=addr_hash,
            success=success,
            reason=reason,
        )
        if success or reason == THROTTLED:
            return
        recent = list(
            AuthAttempt.objects.filter(identifier_hash=ident_hash)
            .order_by("-occurred_at")
            .values_list("success", "reason")[: ACCOUNT_LOCK_AFTER + 5]
        )
        # every failure from the 10th on starts a lock of up to an hour (see check). Reset
        # and registration requests are only slowed: a lock (and its email) there would let
        # anyone alarm or lock out the owner of any address.
        if kind != "reset" and _consecutive_failures(recent) >= ACCOUNT_LOCK_AFTER:
            owner = get_user_model().objects.filter(username=identifier.strip().lower()).first()
            if owner is not None:
                _lock(request, owner, kind)


def record_throttled(request: HttpRequest, *, kind: str, identifier: str) -> None:
    record(request, kind=kind, identifier=identifier, success=False, reason=THROTTLED)


def _lock(request: HttpRequest, user, kind: str = "login") -> None:
    account, _ = Account.objects.get_or_create(user=user)
    account.locked_until = now() + timedelta(seconds=LOCK_SECONDS)
    account.save(update_fields=["locked_until"])
    token = signing.TimestampSigner(salt=UNLOCK_SALT).sign(str(user.pk))
    link = request.build_absolute_uri(reverse("accounts:unlock", args=[token]))
    transaction.on_commit(
        lambda: send_mail(
            "Your HealthSpace account is locked for an hour",
            f"Someone entered the wrong {_WHAT.get(kind, 'details')} for your HealthSpace "
            "account many times, "
            "so we have locked it for up to an hour.\n\n"
            f"If this was you, unlock it now:\n{link}\n\n"
            "If it was not you, unlock it and then change your password. "
            "This link works for one hour.",
            None,
            [user.email or user.username],
        )
    )


def unlock_with_token(token: str) -> bool:
    """Lift the lock from the emailed link; counts as a success so the counts restart."""
    try:
        pk = signing.TimestampSigner(salt=UNLOCK_SALT).unsign(token, max_age=LOCK_SECONDS)
    except signing.BadSignature:
        return False
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        return False
    with transaction.atomic():
        Account.objects.filter(user=user).update(locked_until=None)
        AuthAttempt.objects.create(
            occurred_at=now(),
            kind=AuthAttempt.Kind.LOGIN,
            user=user,
            identifier_hash=index("auth-identifier", f"login|{user.username}"),
            address_hash="",
            success=True,
            reason="unlocked-by-email",
        )
    return True
