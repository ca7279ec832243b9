"""Every error leaves the API as `{"error": {"code", "message", "details"}}`, never a trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import UNION_TAGS
from core.errors import ServiceError

log = logging.getLogger("dyngen.api")


class ApiError(ServiceError):
    """An HTTP-level refusal with an explicit status (401, 413, 415, 503, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=details, code=code)
        self.status = status
        self.headers = headers


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error shape."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: Any) -> str:
    # ("body", "train", "config", "epochs") -> "config.epochs": the name the client wrote,
    # without the request part and the tags pydantic adds for discriminated unions.
    parts = [str(p) for p in loc if p != "body" and p not in UNION_TAGS]
    return ".".join(parts) or "body"


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]


async def _on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    details = _validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "malformed_json", "the request body is not valid JSON", details)
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return error_response(422, "validation_error", message, details)


async def _on_service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = getattr(exc, "headers", None)
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = getattr(exc, "code", None) or phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) else phrase
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers=headers)


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc)
    message = "the database is unreachable; try again shortly"
    return error_response(503, "database_unavailable", message, headers={"Retry-After": "5"})


async def _on_pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    # Every pooled connection is busy and none came free within DYNGEN_API_POOL_TIMEOUT:
    # the server is overloaded, not broken.
    log.warning("database pool exhausted on %s %s: %s", request.method, request.url.path, exc)
    message = "the server is busy: no database connection came free in time; try again shortly"
    return error_response(503, "database_busy", message, headers={"Retry-After": "2"})


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed; the error was logged")


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to the JSON error shape."""
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(PoolTimeout, _on_pool_exhausted)
    for lost in (OperationalError, InterfaceError):
        app.add_exception_handler(lost, _on_database_down)
    app.add_exception_handler(Exception, _on_unexpected)
