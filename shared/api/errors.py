"""One JSON shape for every error answer: ``{"error": {"code", "message", "field"?}}``.

VidluxeErrors map to a status by their class; FastAPI's request validation errors become 422
``VALIDATION_ERROR`` naming the field (``options.title``, ``limit``); Starlette's own errors (unknown
route, wrong method) keep their status with a code; anything unexpected is a 500 ``INTERNAL_ERROR``
whose details stay in the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    TransientError,
    VidluxeError,
)

log = structlog.get_logger("vidluxe.api")

_STATUS_BY_CLASS: tuple[tuple[type[VidluxeError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (InvalidInputError, 400),
    (TransientError, 503),
    (ConfigurationError, 500),
)
_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorDocument(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorDocument, "description": description}
    for status, description in (
        (400, "Invalid input"),
        (401, "Missing or unknown API key"),
        (404, "No such video for this tenant"),
        (413, "Request body too large"),
        (422, "Request validation failed (the field is named)"),
    )
}


def status_of(exc: VidluxeError) -> int:
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field_of(loc: Sequence[int | str], tags: frozenset[str]) -> str | None:
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    parts = [part for part in parts if part not in tags]  # a discriminated union's tag (enhance, showcase)
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI, *, union_tags: frozenset[str] = frozenset()) -> None:
    """Answer every error in the one shape. ``union_tags``: discriminator values left out of field names."""

    async def vidluxe_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, VidluxeError):  # pragma: no cover - registered for VidluxeError only
            raise exc
        status = status_of(exc)
        if status >= 500:
            log.error("request failed", path=request.url.path, code=exc.code, error=exc.message)
        field = exc.details.get("field")
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, exc.code, exc.message, field=str(field) if field else None, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):  # pragma: no cover
            raise exc
        errors = exc.errors()
        first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": "Invalid request."}
        loc = list(first.get("loc", ()))
        if first.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            context: dict[str, Any] = first.get("ctx") or {}
            tag = str(context.get("discriminator", "")).strip("'")
            loc.append(tag)  # the tag itself is the field at fault
        field = _field_of(loc, union_tags)
        message = str(first.get("msg", "Invalid request."))
        if field:
            message = f"{field}: {message}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        return error_response(422, "VALIDATION_ERROR", message, field=field)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        code = _CODE_BY_STATUS.get(exc.status_code, f"HTTP_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}) or None)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", path=request.url.path, error_type=type(exc).__name__)
        return error_response(500, "INTERNAL_ERROR", "Something went wrong on our side; it has been logged.")

    app.add_exception_handler(VidluxeError, vidluxe_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
