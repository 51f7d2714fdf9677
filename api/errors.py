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
    BadRef,
    BadTitle,
    DomainError,
    EmailTaken,
    EmptySearch,
    FlowConflict,
    InvalidEmail,
    InvalidToken,
    NoCode,
    NoSession,
    NotFound,
    NotText,
    PasswordTooLong,
    PasswordTooShort,
    SearchTooLong,
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


def field_error(field: str | None, message: str, *, where: str = "body") -> list[dict[str, Any]]:
    """The shape FastAPI gives its own 422s: a list naming each bad field."""
    loc = [where, field] if field else [where]
    return [{"loc": loc, "msg": message, "type": "value_error"}]


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
        where, field = _field(error, request)
        detail = field_error(field, str(error), where=where)
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
    if isinstance(error, NoSession):
        return 403, {}
    if isinstance(error, EmailTaken | FlowConflict):
        return 409, {}
    return 400, {}


def _field(error: DomainError, request: Request) -> tuple[str, str | None]:
    """Where the field a core validation error is about sits in the request."""
    match error:
        case InvalidEmail():
            return "body", "email"
        case PasswordTooShort() | PasswordTooLong():
            resetting = request.url.path.endswith("/reset/confirm")
            return "body", "new_password" if resetting else "password"
        case BadRef():
            return "path", "id"
        case EmptySearch() | SearchTooLong():
            return "query", "q"
        case BadTitle():
            return "body", "title"
        case NoCode() | NotText():
            return "body", "code"
    return "body", None


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "Something went wrong on our side."}, status_code=500)


# OpenAPI: every status a route can answer, with an example body ------------------------------

_DOCUMENTED: dict[int, tuple[str, Any]] = {
    400: ("The request cannot be used as it is.", "That code is wrong, used or expired."),
    401: (
        "No valid bearer token (missing, malformed, expired, ended, or not an API token); "
        "or wrong credentials. Comes with `WWW-Authenticate: Bearer`.",
        "Your session has ended.",
    ),
    403: ("Refused.", "Nobody is logged in to that chat."),
    404: ("No such snippet among yours.", "There is no snippet 3 among yours."),
    413: (
        "The body, or the code in it, is larger than allowed (`MAX_SNIPPET_BYTES`).",
        "The snippet is too large (600 KB; the limit is 512 KB).",
    ),
    415: (
        "The body is neither JSON nor the OAuth2 password form.",
        "Send JSON (application/json) or the OAuth2 password form.",
    ),
    422: ("A field is missing or not valid; `detail` names each.", None),
    429: (
        "Too many attempts; `Retry-After` says how many seconds to wait.",
        "Too many failed attempts. Try again in 15 minute(s).",
    ),
    503: (
        "The database is unreachable for a moment; `Retry-After` says when to try again.",
        "The database is temporarily unavailable.",
    ),
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with its meaning and an example body."""
    from api.schemas import ErrorOut, ValidationErrorOut

    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = _DOCUMENTED[status]
        if status == 422:
            body = {"detail": field_error("email", "Field required")}
            responses[status] = {
                "model": ValidationErrorOut,
                "description": description,
                "content": {"application/json": {"example": body}},
            }
            continue
        entry: dict[str, Any] = {
            "model": ErrorOut,
            "description": description,
            "content": {"application/json": {"example": {"detail": example}}},
        }
        if status in {429, 503}:
            entry["headers"] = _RETRY_AFTER
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
            }
        responses[status] = entry
    return responses
