"""Entry points of the bulk importer's worker processes (``records.bulk``).

Kept free of Django imports: a spawned worker imports this module before Django is set
up, and sets it up in ``init``."""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

PARENT_CHECK_SECONDS = 0.5


def watch_parent(parent: int) -> None:
    """Leave at once when the importer that started this worker is gone (SIGKILL, OOM
    killer): the worker's own end of the pool's pipes keeps it from ever seeing them
    close, so without this it would wait for work forever. A worker holds nothing to
    clean up (no database, nothing written), hence ``os._exit``."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:  # re-parented: the importer died
                os._exit(1)

    threading.Thread(target=watch, name="healthspace-bulk-parent", daemon=True).start()


def start(parent: int) -> None:
    """A forked worker's start: Django and the FHIR models came with the fork.

    ``gc.freeze``: the objects inherited (Django, fhir.resources' models: about 140,000)
    go to the collector's permanent generation, so its full collections, triggered all the
    time by the dicts of parsed resources, no longer walk them: 0.8-1.9 s of a worker's
    8.5-9.3 CPU seconds for 10,000 resources was the collector, 0.3 s with the freeze
    (and the inherited pages stay shared with the importer instead of being touched)."""
    gc.freeze()
    watch_parent(parent)


def init(settings_module: str, kek: bytes, index_key: bytes, parent: int) -> None:
    """A spawned worker's start (platforms without fork)."""
    watch_parent(parent)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.conf import settings

    # the parent's keys (a test's override_settings too), not a fresh read of the environment
    settings.HEALTHSPACE_KEK = kek
    settings.HEALTHSPACE_INDEX_KEY = index_key
    gc.freeze()  # as start()


def seal(piece: Any) -> Any:
    from healthspace.records.bulk import seal_piece

    return seal_piece(piece)
