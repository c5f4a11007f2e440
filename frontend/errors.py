"""What can go wrong talking to the API, as exceptions the pages turn into plain messages."""

from __future__ import annotations

from dataclasses import dataclass


class ApiError(Exception):
    """The API answered, but not with what the page asked for."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ApiRequestError(ApiError):
    """The page built a request that cannot be sent (e.g. NaN/inf, which JSON cannot carry):
    a fault of the page, not of the API, but still a message rather than a traceback."""


class ApiUnavailable(ApiError):
    """The API cannot be reached, timed out, or says it is not ready (503)."""


@dataclass(frozen=True)
class FieldError:
    """One rejected input: the field it concerns (None: the whole request) and the API's words."""

    field: str | None
    message: str
    rule: str | None = None


class ApiValidationError(ApiError):
    """The API rejected the input (422); ``errors`` say which field broke which rule."""

    def __init__(self, errors: list[FieldError], status_code: int = 422) -> None:
        super().__init__("; ".join(e.message for e in errors) or "invalid input", status_code)
        self.errors = errors
