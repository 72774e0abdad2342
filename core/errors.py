"""Domain errors raised by services and storage; the API maps each class to one HTTP status."""


class DomainError(Exception):
    """Base class: the message is safe to show to the caller."""


class NotFound(DomainError):
    """The addressed resource does not exist (404)."""


class Conflict(DomainError):
    """The request contradicts the current state (409)."""


class Invalid(DomainError):
    """The request is well-formed but semantically wrong (422)."""


class Upstream(DomainError):
    """A provider or other upstream refused or failed (502)."""

    def __init__(self, message: str, *, status_code: int = 502, kind: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.kind = kind
