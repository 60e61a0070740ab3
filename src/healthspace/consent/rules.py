"""Who may move a patient's SCR consent from which state to which. Data, in one place, so
the whole table can be printed, reviewed and tested (NHS SCR rules).

- The patient (online) or their GP practice records the patient's choice: core only, or
  core and additional; hiding the record; asking for it to be deleted.
- Dissent is a choice made *before* an SCR is created. Every record here was imported, so
  it already exists: nobody can move it to dissent ("a viewed SCR can only be hidden").
- Unhiding needs the patient's written request and a privacy officer's decision, as does
  deciding a deletion request. Deleted is final.
"""

from __future__ import annotations

from healthspace.access.context import ConsentState as S
from healthspace.consent.models import Source

PATIENT = Source.PATIENT_ONLINE
PRACTICE = Source.GP_PRACTICE
OFFICER = Source.PRIVACY_OFFICER

VISIBLE = (S.IMPLIED, S.CORE_AND_ADDITIONAL, S.CORE_ONLY)
ANYONE = frozenset({PATIENT, PRACTICE, OFFICER})
OFFICER_ONLY = frozenset({OFFICER})


def _table() -> dict[tuple[S, S], frozenset[Source]]:
    allowed: dict[tuple[S, S], frozenset[Source]] = {}
    for visible in VISIBLE:
        # the patient's express choice, from implied or between the two
        for choice in (S.CORE_AND_ADDITIONAL, S.CORE_ONLY):
            if choice != visible:
                allowed[(visible, choice)] = ANYONE
        allowed[(visible, S.HIDDEN)] = ANYONE
        allowed[(S.HIDDEN, visible)] = OFFICER_ONLY  # unhiding: written request
        allowed[(S.DELETION_REQUESTED, visible)] = OFFICER_ONLY  # deletion refused
    for state in (*VISIBLE, S.DISSENT, S.HIDDEN):
        allowed[(state, S.DELETION_REQUESTED)] = ANYONE
    allowed[(S.DELETION_REQUESTED, S.HIDDEN)] = OFFICER_ONLY  # refused, stays hidden
    allowed[(S.DELETION_REQUESTED, S.DELETED)] = OFFICER_ONLY
    return allowed


# (from, to) -> the sources that may make that change. Anything absent is refused.
TRANSITIONS: dict[tuple[S, S], frozenset[Source]] = _table()


def is_allowed(current: S, new: S, source: Source) -> bool:
    return source in TRANSITIONS.get((current, new), frozenset())


def choices_from(current: S, source: Source) -> list[S]:
    """The states ``source`` may choose from ``current``, in a stable order."""
    return [new for new in S if is_allowed(current, new, source)]


def refusal(current: S, new: S, source: Source) -> str:
    """Why a change is refused, in plain English (shown to the person who asked)."""
    if current == S.DELETED:
        return "Your Summary Care Record has been deleted. This cannot be changed."
    if new == current:
        return "This is already your choice."
    if new == S.DISSENT:
        return (
            "Your Summary Care Record has already been created, so you cannot opt out of "
            "having one. You can hide it instead: staff will then only see that it is hidden."
        )
    if current == S.HIDDEN and new in VISIBLE:
        return (
            "To unhide your Summary Care Record, write to your GP practice. A privacy "
            "officer will decide on your request."
        )
    if current == S.DELETION_REQUESTED:
        return "A privacy officer is deciding on your request to delete your record."
    if new in (S.DELETED, S.IMPLIED):
        return "Only a privacy officer can make this change."
    return "This change is not possible."


def table_text() -> str:
    """The whole table, one allowed change per line: for review and for the tests."""
    return "\n".join(
        f"{old:<20} -> {new:<20} by {', '.join(sorted(sources))}"
        for (old, new), sources in sorted(TRANSITIONS.items())
    )
