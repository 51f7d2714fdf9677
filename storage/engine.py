"""Builds the async engine, tuned per backend so that no command can hang for long."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.private_files import create_private_file

CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 8.0
"""Longest a statement may run (client and server side): every query of a command takes
milliseconds, so this only bounds how long a person waits when the database is unreachable."""
POOL_SIZE = 32
"""Connections kept: an overflow connection is closed when it comes back, and the next one
opened pays a connect, a server process and its statements prepared again (/save in a closed
loop of 32 chats with 20 kept: 1.2 CPU ms per update; with 32: 0.95, bench/NOTES.md round 4)."""
POOL_MAX_OVERFLOW = 8
POOL_RECYCLE_SECONDS = 1800
CHECKOUT_TIMEOUT_SECONDS = 5.0
"""How long a unit of work waits for a working connection (pool wait, pre-ping, connect)."""
_SQLITE_AUTOCOMMIT = "snippetvault_autocommit"


def autocommit_options(dialect_name: str) -> dict[str, Any]:
    """Execution options under which each statement is a transaction of its own (no BEGIN)."""
    if dialect_name == "postgresql":
        # asyncpg keeps this on the client: no round trip to set it, nor to reset it when the
        # connection goes back to the pool.
        return {"isolation_level": "AUTOCOMMIT"}
    # SQLAlchemy's AUTOCOMMIT on SQLite would hand transaction control back to the driver when
    # the connection returns to the pool (see `_configure_sqlite_connection`). The driver
    # already leaves it to us, so skipping our BEGIN is all it takes.
    return {_SQLITE_AUTOCOMMIT: True}


def create_engine(
    database_url: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    command_timeout: float = COMMAND_TIMEOUT_SECONDS,
) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout=command_timeout)
    if url.get_backend_name() == "postgresql":
        return _postgres_engine(url, connect_timeout, command_timeout)
    raise ValueError(
        f"unsupported database {url.get_backend_name()!r}: "
        "use sqlite+aiosqlite:///… or postgresql+asyncpg://…"
    )


def _postgres_engine(url: URL, connect_timeout: float, command_timeout: float) -> AsyncEngine:
    if url.get_driver_name() != "asyncpg":
        url = url.set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        url,
        # No pre-ping: with asyncpg it costs three round trips (BEGIN, ping, ROLLBACK) on every
        # checkout, more than a cached /get needs in all (bench/RESULTS.md). A connection that
        # died fails its statement as `StorageUnavailable`, and SQLAlchemy then invalidates the
        # whole pool, so the next unit of work reconnects; recycling bounds how long a connection
        # can sit idle behind a firewall that drops it silently.
        pool_pre_ping=False,
        pool_recycle=POOL_RECYCLE_SECONDS,
        # For PTB's 64 concurrent updates, most of which use the quick statements alone
        # (`storage.bare`); beyond 40 at once, a unit of work waits for a connection.
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_timeout=command_timeout,
        connect_args={
            "timeout": connect_timeout,
            "command_timeout": command_timeout,
            # The server gives up too, so a lost client does not leave work running there.
            "server_settings": {"statement_timeout": str(int(command_timeout * 1000))},
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_a_closed_connection)
    return engine


def _refuse_a_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket the server closed (a restart, a partition's end, ended
    backends) is known closed to asyncpg without a round trip: the pool replaces it instead of
    failing a command with it (SQLAlchemy retries the checkout on `DisconnectionError`)."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def _sqlite_engine(url: URL, busy_timeout: float) -> AsyncEngine:
    if url.get_driver_name() != "aiosqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        # Created private before SQLite opens it: its -wal and -shm files take the same mode.
        create_private_file(Path(url.database))
    engine = create_async_engine(url, pool_timeout=busy_timeout)

    def configure(dbapi_connection: Any, _record: Any) -> None:
        _configure_sqlite_connection(dbapi_connection, busy_timeout_ms=int(busy_timeout * 1000))

    event.listen(engine.sync_engine, "connect", configure)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, *, busy_timeout_ms: int) -> None:
    # Take transaction control away from the driver: it would not BEGIN before DDL, and we
    # want BEGIN IMMEDIATE (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # How long a writer waits for another one to finish before giving up.
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    # SQLite's own lower() folds ASCII only; search must be case-insensitive for any script,
    # like Postgres' lower() is.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _begin_immediate(connection: Any) -> None:
    if connection.get_execution_options().get(_SQLITE_AUTOCOMMIT):
        return
    # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
    # another writer committed in between (the busy timeout does not help there). Taking the
    # write lock up front makes writers queue instead; SQLite allows only one writer anyway.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
