"""One root error for everything Coltiva raises on a user's behalf.

A user's mistake is reported, never raised as a bare traceback: the CLI catches
`ColtivaError` and prints its message.
"""

from __future__ import annotations

__all__ = ["ColtivaError", "JourneyError", "EventError", "StoreError", "SourceError", "PlanError"]


class ColtivaError(Exception):
    """Root of every error Coltiva reports to a user."""


class JourneyError(ColtivaError):
    """A journey that cannot be used; `diagnostics` says why, with positions."""

    def __init__(self, message: str, diagnostics=()):
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


class EventError(ColtivaError):
    """An event that cannot be applied (kept aside in quarantine, never fatal for a run)."""


class StoreError(ColtivaError):
    """The store refuses an operation, e.g. a changed journey with leads already in it."""


class SourceError(ColtivaError):
    """A journey file that cannot be read: missing, not a regular file, too large, not UTF-8."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: cannot read: {reason}")
        self.path = path
        self.reason = reason


class PlanError(ColtivaError):
    """A change of a live journey that cannot be applied as asked: a removed stage with leads and no
    move for it, or a plan made on a store that has changed since."""
