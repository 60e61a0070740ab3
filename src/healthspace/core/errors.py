"""Typed errors that cross app boundaries."""


class HealthSpaceError(Exception):
    """Base class: the message is safe to show to the user who caused it."""


class NotFound(HealthSpaceError):
    """Absent, or not yours to see: both look the same (no existence oracle)."""


class InvalidInput(HealthSpaceError):
    pass
