"""What an account keeps in HealthSpace itself (health organiser, messages) is sealed under
the account's own portal key, apart from the SCR's key: closing the account destroys it
(crypto-shredding) while the SCR stays with the NHS under its own consent rules."""

from __future__ import annotations

import uuid

from healthspace.accounts.models import Account
from healthspace.core import sql
from healthspace.core.errors import NotFound
from healthspace.vault import services as vault
from healthspace.vault.crypto import PatientCipher


def portal_subject_for(*, user_id: int) -> uuid.UUID:
    # plain SQL (core.sql): read on every organiser and message page and export
    found = sql.objects(
        Account, ("id", "portal_subject"), where={"user_id": user_id}, prepared=True
    )
    if not found:
        raise NotFound("There is no account here.")
    return found[0].portal_subject


def portal_cipher_for(*, user_id: int) -> PatientCipher:
    """The account's portal cipher (its key made on first use). Raises KeyDestroyed for
    a closed account."""
    return vault.portal_cipher_for(subject_id=portal_subject_for(user_id=user_id))
