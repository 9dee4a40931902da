"""The one error shape, ``{"error": {"code", "message", "details"}}``, and the status of
every library error.

A stranger cannot tell a context exists: the library answers a user who may not read a
context with `ContextNotFound`, so the server says 404 for it as for an unknown id; 403
is for a reader who lacks the right asked for (docs/server.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .. import errors

__all__ = ["ApiError", "error_response", "install_error_handlers", "status_of"]

log = logging.getLogger("loremaster.server")

_STATUSES: tuple[tuple[type[errors.LoremasterError], int], ...] = (
    (errors.VersionNotFound, 404),
    (errors.BranchNotFound, 404),
    (errors.ContextNotFound, 404),
    (errors.PermissionDenied, 403),
    (errors.RevisionConflict, 409),
    (errors.IdempotencyInProgress, 409),
    (errors.IdempotencyMismatch, 422),
    (errors.LockLost, 423),
    (errors.LockHeld, 423),
    (errors.ValidationFailed, 422),
    (errors.PayloadTooLarge, 413),
    (errors.UntrustedPayload, 415),
    (errors.UnsupportedFormat, 415),
    (errors.DataCorrupted, 422),
    (errors.BackendUnavailable, 503),
    (errors.ReadOnlyDatabase, 403),
    (errors.ConfigurationError, 400),
)
"""The status of each library error, most specific first; its code is the error's own
(`LoremasterError.code`, which the MCP bridge reports too)."""


class ApiError(Exception):
    """An answer other than success, raised anywhere in a route."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def status_of(exc: errors.LoremasterError) -> int:
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 400


def from_library(exc: errors.LoremasterError) -> ApiError:
    status = status_of(exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    return ApiError(status, exc.code, exc.message, exc.details, headers)


def error_response(error: ApiError) -> Response:
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    return Response(
        orjson.dumps(body),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def _request_validation(exc: RequestValidationError) -> ApiError:
    issues = [
        {
            "path": "/" + "/".join(str(p) for p in e.get("loc", ())[1:]),
            "message": str(e.get("msg", "")),
            "code": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    if any(issue["code"] == "json_invalid" for issue in issues):
        return ApiError(400, "malformed_json", "the body is not valid JSON")
    return ApiError(422, "validation_failed", "the request is not valid", {"issues": issues})


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_library_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.LoremasterError)
        return error_response(from_library(exc))

    async def on_request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(_request_validation(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        return error_response(ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(ApiError(500, "internal_error", "internal server error"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(errors.LoremasterError, on_library_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
