"""Argon2id over the NFKC form of the password.

NIST SP 800-63B (3.1.1.2) asks verifiers that accept Unicode to normalise with NFKC or
NFKD before hashing. Without it, "café" typed on a keyboard that sends a composed "é" and
on one that sends "e" + combining accent are two different passwords, and the person is
locked out on their other device. NFKC also folds look-alike compatibility forms
(full-width letters, ligatures) so they cannot dodge the common-password checks.

Every printable ASCII character is its own NFKC form, so hashes made by Django's plain
Argon2PasswordHasher for ASCII passwords stay valid: this hasher keeps the "argon2" name
and replaces Django's in PASSWORD_HASHERS.
"""

from __future__ import annotations

import unicodedata

from django.contrib.auth.hashers import Argon2PasswordHasher


def normalise_password(password: str) -> str:
    """The form of a password that is checked, counted and hashed (idempotent)."""
    return unicodedata.normalize("NFKC", password)


class Argon2NFKCPasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"

    def encode(self, password: str, salt: str) -> str:
        return super().encode(normalise_password(password), salt)

    def verify(self, password: str, encoded: str) -> bool:
        return super().verify(normalise_password(password), encoded)
