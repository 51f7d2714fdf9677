"""Core's typed errors, worded for HTTP: `{"detail": …}` with the fitting status, never a 500
with a traceback in it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.errors import (
    AuthenticationError,
    DomainError,
    EmailTaken,
    FlowConflict,
    InvalidToken,
    NotFound,
    SnippetTooLarge,
    StorageUnavailable,
    Throttled,
    ValidationError,
)

log = logging.getLogger(__name__)

STORAGE_RETRY_AFTER_SECONDS = 5
BEARER = {"WWW-Authenticate": "Bearer"}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def field_error(field: str, message: str, *, where: str = "body") -> list[dict[str, Any]]:
    """The shape FastAPI gives its own 422s: a list naming each bad field."""
    return [{"loc": [where, field], "msg": message, "type": "value_error"}]


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # The input is left out: it may be a password, or megabytes of code.
    detail = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type")}
        for item in error.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status, headers = _status(error)
    if isinstance(error, StorageUnavailable):
        log.warning("database unavailable while answering %s %s", request.method, request.url.path)
    detail: Any = str(error)
    if status == 422:
        detail = field_error(_field(error, request), str(error))
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _status(error: DomainError) -> tuple[int, dict[str, str]]:
    if isinstance(error, StorageUnavailable):
        return 503, {"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)}
    if isinstance(error, Throttled):
        return 429, {"Retry-After": str(error.retry_after)}
    if isinstance(error, AuthenticationError):
        return 401, BEARER
    if isinstance(error, NotFound):
        return 404, {}
    if isinstance(error, SnippetTooLarge):
        return 413, {}
    if isinstance(error, ValidationError):
        return 422, {}
    if isinstance(error, InvalidToken):
        return 400, {}
    if isinstance(error, EmailTaken | FlowConflict):
        return 409, {}
    return 400, {}


def _field(error: DomainError, request: Request) -> str:
    """The request field a core validation error is about, from the error's type and, where
    one route takes one free-text field, the route."""
    named: str | None = getattr(error, "field", None)
    return named or "body"


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "Something went wrong on our side."}, status_code=500)
