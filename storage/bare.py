"""`QuickStatements` on PostgreSQL, on the bare driver (asyncpg) instead of SQLAlchemy.

Every chat command and API call reads its session first, and a `/get` reads the snippet when
the cache misses and queues an email copy. Through a unit of work each of these cost about
0.17 ms of CPU (pool checkout, greenlet hand-offs, compiled-cache lookup, result proxy,
checkin); here about 0.05 ms, a connection from `storage.connections` included (bench/NOTES.md,
round 4): on a cached `/get` that was a third of the bot's CPU. The SQL is compiled once from
the same Core statements the repositories run (`storage.repositories`), so there is one
definition of each, and the rows are read by the same functions.

The pool's connections commit without waiting for the disk (`synchronous_commit=off`): the
copy's loss to a database crash costs nothing (`QuickStatements.queue_copy`), and a read commits
nothing. They keep no session state (no transactions, no `SET`), so a connection going back to
the pool needs no reset query.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.sql.compiler import SQLCompiler

from core.entities import Client, OutgoingEmail, Snippet
from core.errors import StorageUnavailable
from core.ports import SessionRecord
from storage.connections import StatementConnections
from storage.errors import UNAVAILABLE_MESSAGE, unavailable_as_domain_error
from storage.repositories import (
    FIND_SESSION,
    LATEST_FOR_CLIENT,
    OUTBOX_INSERT,
    found_session,
    outbox_values,
    session_record,
    snippet_from,
    snippet_reads,
)

POOL_SIZE = 32
"""Half of PTB's 64 concurrent updates: each connection is held for one statement, and the
pool opens them only as the load needs them. With 10, 32 chats in a closed loop waited for
connections (p99 150 ms against 20 ms, and more CPU per update: bench/NOTES.md, round 4)."""
IDLE_SECONDS = 300.0
"""A connection unused for this long is closed (the pool opens them as needed)."""


class _Compiled:
    """A Core statement as asyncpg runs it: `$n` placeholders, and the values in their order."""

    def __init__(self, statement: sa.ClauseElement, names: tuple[str, ...] | None = None) -> None:
        dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=dialect, column_keys=names)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        self._defaults = compiled.params  # the literals bound by the statement (a LIMIT)

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[name] if name in values else self._defaults[name] for name in self._order
        )


@functools.cache
def _outbox_insert(names: tuple[str, ...]) -> _Compiled:
    return _Compiled(OUTBOX_INSERT, names)


class BareStatements:
    """`QuickStatements` on a pool of asyncpg connections (`storage.connections`), opened as
    needed and closed after `IDLE_SECONDS` unused; `close()` it."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        command_timeout: float,
        checkout_timeout: float,
        size: int = POOL_SIZE,
    ) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._checkout_timeout = checkout_timeout
        self._connections = StatementConnections(
            self._connect, size=size, idle_seconds=IDLE_SECONDS
        )
        self._latest = _Compiled(LATEST_FOR_CLIENT)
        self._find = _Compiled(FIND_SESSION)
        reads = snippet_reads("postgresql")
        self._by_id, self._by_ref = _Compiled(reads.by_id), _Compiled(reads.by_ref)

    async def latest_session(self, client: Client) -> SessionRecord | None:
        if client.binding is None:
            return None  # API sessions are bound to no caller: there is no "latest"
        values = {"client_kind": client.kind.value, "client_key": client.binding}
        async with self._connection() as connection:
            row = await connection.fetchrow(self._latest.sql, *self._latest.arguments(values))
        return None if row is None else session_record(row)

    async def session(self, jti: str) -> SessionRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(self._find.sql, *self._find.arguments({"jti": jti}))
        return None if row is None else found_session(row)

    async def snippet(self, owner_id: UUID, key: int | UUID) -> Snippet | None:
        values: dict[str, object]
        if isinstance(key, UUID):
            read, values = self._by_id, {"snippet_id": key}
        else:
            read, values = self._by_ref, {"owner_id": owner_id, "ref": key}
        async with self._connection() as connection:
            row = await connection.fetchrow(read.sql, *read.arguments(values))
        return None if row is None else snippet_from(row)

    async def queue_copy(self, email: OutgoingEmail) -> None:
        values = outbox_values(email)
        values["context"] = json.dumps(values["context"])  # as SQLAlchemy's JSON type sends it
        insert = _outbox_insert(tuple(values))
        async with self._connection() as connection:
            await connection.execute(insert.sql, *insert.arguments(values))

    async def close(self) -> None:
        """Closes the connections not in use (the next statement opens one again)."""
        await self._connections.close()

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            command_timeout=self._command_timeout,
            server_settings={
                # The server gives up too, so a lost client does not leave work running there.
                "statement_timeout": str(int(self._command_timeout * 1000)),
                "synchronous_commit": "off",
            },
        )

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one statement. A statement that fails for want of the server
        ends its connection and the pool's idle ones (as SQLAlchemy invalidates its pool):
        after a restart or a partition, those left are as dead as the one that failed, and
        each would fail a command of its own."""
        connections = self._connections
        connection = connections.take_idle()
        if connection is None:
            with unavailable_as_domain_error():
                # Bounded as a whole: the wait for a free connection, or a connect.
                async with asyncio.timeout(self._checkout_timeout):
                    connection = await connections.take()
        try:
            with unavailable_as_domain_error():
                try:
                    yield connection
                except asyncpg.InternalClientError as error:
                    # What a statement on a connection the server ended while it sat idle
                    # raises ("cannot switch to state …"): the connection is gone.
                    raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error
        except BaseException as error:
            # Ended rather than put back mid-statement (a cancelled one too).
            connections.discard(connection)
            if isinstance(error, StorageUnavailable):
                connections.discard_idle()
            raise
        connections.give_back(connection)
