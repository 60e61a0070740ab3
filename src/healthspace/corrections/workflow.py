"""The one state machine of a correction request. Every change of status goes through
``transition``; the table below is the whole of it (and its test).

    submitted --open (clinician of the practice)--> in-review
    in-review --amend (clinician)--> amended      the item gets a new version
    in-review --keep (clinician)--> kept          the clinician explains why it stays
    submitted | in-review --withdraw (patient)--> withdrawn

A decision is made only on a request a clinician has opened (the request page opens it),
so the patient's "a clinician is looking at it" is always true before an answer. Amended,
kept and withdrawn are final: a patient who still thinks something is wrong asks again,
which starts a new request with its own trail.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Status(models.TextChoices):
    SUBMITTED = "submitted", "Sent to your GP practice"
    IN_REVIEW = "in-review", "A clinician is looking at it"
    AMENDED = "amended", "Corrected"
    KEPT = "kept", "Not changed"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_STATUSES = (Status.SUBMITTED, Status.IN_REVIEW)
DECIDED_STATUSES = (Status.AMENDED, Status.KEPT)


class Event(StrEnum):
    OPEN = "open"
    AMEND = "amend"
    KEEP = "keep"
    WITHDRAW = "withdraw"


class By(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"


# (from, event) -> (to, who may)
TRANSITIONS: dict[tuple[Status, Event], tuple[Status, By]] = {
    (Status.SUBMITTED, Event.OPEN): (Status.IN_REVIEW, By.CLINICIAN),
    (Status.IN_REVIEW, Event.AMEND): (Status.AMENDED, By.CLINICIAN),
    (Status.IN_REVIEW, Event.KEEP): (Status.KEPT, By.CLINICIAN),
    (Status.SUBMITTED, Event.WITHDRAW): (Status.WITHDRAWN, By.PATIENT),
    (Status.IN_REVIEW, Event.WITHDRAW): (Status.WITHDRAWN, By.PATIENT),
}


class TransitionRefused(Exception):
    """The message is safe to show to whoever tried."""


# What each side is told when a step is not possible from the request's status.
REFUSALS: dict[By, dict[Status, str]] = {
    By.CLINICIAN: {
        Status.SUBMITTED: "Open the request before you answer it.",
        Status.IN_REVIEW: "This request is already open.",
        Status.AMENDED: "This request has already been answered: the item was corrected.",
        Status.KEPT: "This request has already been answered.",
        Status.WITHDRAWN: "The patient withdrew this request.",
    },
    By.PATIENT: {
        Status.SUBMITTED: "You cannot do that with this request.",
        Status.IN_REVIEW: "You cannot do that with this request.",
        Status.AMENDED: "Your GP practice has already answered this request.",
        Status.KEPT: "Your GP practice has already answered this request.",
        Status.WITHDRAWN: "You have already withdrawn this request.",
    },
}


def transition(current: Status | str, event: Event, *, by: By) -> Status:
    """The status after ``event`` made by ``by``, or TransitionRefused."""
    current = Status(current)
    found = TRANSITIONS.get((current, event))
    if found is None or found[1] != by:
        raise TransitionRefused(REFUSALS[by][current])
    return found[0]


def allowed(current: Status | str, event: Event, *, by: By) -> bool:
    found = TRANSITIONS.get((Status(current), event))
    return found is not None and found[1] == by
