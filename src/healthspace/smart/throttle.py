"""A fixed-window request counter per client, for 429 answers (API and token endpoint).

Uses Django's cache: per process with the default local-memory cache (each worker counts
on its own, so the effective limit is at most workers x limit), shared across workers and
servers when CACHES names a shared cache. No database write per request.
"""

from __future__ import annotations

import time

from django.core.cache import cache


def hit(key: str, *, limit: int, window: int = 60) -> int:
    """Count one request; 0 if allowed, else the seconds until the window ends."""
    if limit <= 0:
        return 0
    slot = int(time.time() // window)
    name = f"hs-throttle:{key}:{slot}"
    if cache.add(name, 1, timeout=window + 5):
        count = 1
    else:
        try:
            count = cache.incr(name)
        except ValueError:  # expired between add and incr
            cache.add(name, 1, timeout=window + 5)
            count = 1
    if count > limit:
        return max(1, int(window - time.time() % window))
    return 0
