"""Entry points of the bulk importer's worker processes (``records.bulk``).

Kept free of Django imports: a spawned worker imports this module before Django is set
up, and sets it up in ``init``."""

from __future__ import annotations

import os
from typing import Any


def init(settings_module: str, kek: bytes, index_key: bytes) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.conf import settings

    # the parent's keys (a test's override_settings too), not a fresh read of the environment
    settings.HEALTHSPACE_KEK = kek
    settings.HEALTHSPACE_INDEX_KEY = index_key


def seal(piece: Any) -> Any:
    from healthspace.records.bulk import seal_piece

    return seal_piece(piece)
