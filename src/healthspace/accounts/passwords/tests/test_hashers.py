"""Unicode passwords are hashed in NFKC form, so every way of typing them works."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.test import override_settings

from healthspace.accounts.passwords.tests.test_validators import fullwidth

NFKC = ["healthspace.accounts.passwords.hashers.Argon2NFKCPasswordHasher"]
DJANGO_ARGON2 = ["django.contrib.auth.hashers.Argon2PasswordHasher"]

SAME_PASSWORD_TYPED_TWO_WAYS = [
    ("é composed / e + combining accent", "caf\u00e9 au lait", "cafe\u0301 au lait"),
    ("Å composed / A + ring", "\u00c5ngstr\u00f6m unit", "A\u030angstro\u0308m unit"),
    ("full-width / ASCII", fullwidth("plinth marrow"), "plinth marrow"),
    ("ligature / letters", "\ufb01sh and chips", "fish and chips"),
]


@pytest.mark.parametrize(("why", "typed", "typed_elsewhere"), SAME_PASSWORD_TYPED_TWO_WAYS)
@override_settings(PASSWORD_HASHERS=NFKC)
def test_a_password_typed_another_way_still_matches(why, typed, typed_elsewhere):
    assert typed != typed_elsewhere
    encoded = make_password(typed)
    assert encoded.startswith("argon2$argon2id$")
    assert check_password(typed_elsewhere, encoded)
    assert not check_password(typed_elsewhere + "x", encoded)


@override_settings(PASSWORD_HASHERS=DJANGO_ARGON2)
def _django_hash(password: str) -> str:
    return make_password(password)


@override_settings(PASSWORD_HASHERS=NFKC)
def test_hashes_made_before_for_ascii_passwords_still_verify():
    # Swapping Django's Argon2 hasher for this one must not lock anyone out.
    encoded = _django_hash("demo-patient-not-a-real-password")
    assert check_password("demo-patient-not-a-real-password", encoded)
    assert not check_password("demo-patient-not-a-real-passwore", encoded)
