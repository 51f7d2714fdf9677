"""Tells "the database is unreachable right now" apart from bugs, and names it in domain terms."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy import exc as sa_exc

from core.errors import StorageUnavailable

UNAVAILABLE_MESSAGE = "The database is temporarily unavailable, please try again in a moment."

_TRANSIENT = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connect or command timeout (asyncio.TimeoutError is TimeoutError)
    sa_exc.OperationalError,  # lost connection, server shutting down
    sa_exc.InterfaceError,  # connection closed underneath us
    sa_exc.TimeoutError,  # no pooled connection came free in time
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.OperatorInterventionError,  # admin shutdown, statement timeout
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,  # the server (or the role's limit) is full for now
)


# SQLite says "OperationalError" for a missing table too; only these mean "try again later".
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def is_unavailable(error: BaseException) -> bool:
    """True when `error` (or what caused it) means the database cannot be reached right now."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error.orig, sqlite3.Error):
            return _is_transient_sqlite_error(error.orig)
    if isinstance(error, sqlite3.Error):
        return _is_transient_sqlite_error(error)
    if isinstance(error, _TRANSIENT):
        return True
    return error.__cause__ is not None and is_unavailable(error.__cause__)


def _is_transient_sqlite_error(error: sqlite3.Error) -> bool:
    message = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and any(
        marker in message for marker in _SQLITE_TRANSIENT
    )


@contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """Re-raises connection failures as `StorageUnavailable`; everything else passes through."""
    try:
        yield
    except StorageUnavailable:
        raise
    except Exception as error:
        if is_unavailable(error):
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error
        raise
