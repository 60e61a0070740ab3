"""Service lifecycle hooks other apps use (the lifecycle itself: issue 6, ``ops``).

``allowed_when_read_only``: mark a view whose POST must keep working when the service is
read-only (closing down): logging in and out, second factors, and exporting one's data.
Everything else that writes is refused with a clear message while the service is
read-only.
"""

from __future__ import annotations

from collections.abc import Callable


def allowed_when_read_only[V: Callable[..., object]](view: V) -> V:
    view.allowed_when_read_only = True  # type: ignore[attr-defined]
    return view
