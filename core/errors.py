"""Errors core's functions raise; the API turns each into its HTTP status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request that can't be honoured, with a stable code and a readable message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    """No such object, or not the caller's."""

    status = 404
    code = "not_found"

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"no {kind} with id {object_id!r}", details={"id": object_id})


class Conflict(ServiceError):
    """The object exists but is in the wrong state for this request."""

    status = 409
    code = "conflict"


class Invalid(ServiceError):
    """A request that is well-formed but names something unusable."""

    status = 422
    code = "invalid_request"
