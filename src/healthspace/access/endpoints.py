"""Every page and API route declares what it does with patient data (STYLE.md: fail
closed). ``tests/test_every_url.py`` walks the URLconf and fails on any view without a
declaration, so a new page cannot forget to ask ``decide``.

- ``endpoint(Action.VIEW_SCR, ...)``: the actions the view's services ask decide() about.
- ``endpoint(no_patient_data=True)``: reads and writes no patient record (home page, login,
  help, the signed-in person's own account settings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from healthspace.access.policy import Action

V = TypeVar("V", bound=Callable[..., Any])


def endpoint(*actions: Action, no_patient_data: bool = False) -> Callable[[V], V]:
    if bool(actions) == no_patient_data:
        raise ValueError("declare the actions a view asks about, or no_patient_data=True, not both")

    def declare(view: V) -> V:
        view.access_actions = frozenset(actions)  # type: ignore[attr-defined]
        # the action a refusal at the door is recorded as (the view's main purpose)
        view.access_primary = actions[0] if actions else None  # type: ignore[attr-defined]
        view.access_no_patient_data = no_patient_data  # type: ignore[attr-defined]
        return view

    return declare
