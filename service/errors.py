"""The service's errors: each carries the HTTP status it answers with, under ColtivaError."""

from __future__ import annotations

from dsl.errors import ColtivaError

__all__ = ["ServiceError", "Busy", "ClockError", "ConfigError", "KeyFileError"]


class ServiceError(ColtivaError):
    """A refusal the service answers as JSON with `status` (never an HTML page)."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class Busy(ServiceError):
    """The writer's queue is full: the client retries after `retry_after` seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class ClockError(ServiceError):
    """A tick that would move time backwards, or far ahead without being forced."""

    status = 409


class ConfigError(ColtivaError):
    """coltiva.toml (or an option) says something the service cannot use."""


class KeyFileError(ColtivaError):
    """The API keys file cannot be read or written."""
