"""Typed errors that cross app boundaries."""


class HealthSpaceError(Exception):
    """Base class: the message is safe to show to the user who caused it."""


class NotFound(HealthSpaceError):
    """Absent, or not yours to see: both look the same (no existence oracle)."""


class InvalidInput(HealthSpaceError):
    pass


class Refused(NotFound):
    """Not allowed, with the policy's reason. Shown to the actor as "not found" unless the
    page that caught it may say why (staff are told a record is hidden, or that permission
    was refused, because they already know the patient exists)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
