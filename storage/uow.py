"""The unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.ports import (
    AttemptRepository,
    Clock,
    FlowRepository,
    OneTimeTokenRepository,
    Outbox,
    RevisionRepository,
    SessionRepository,
    ShareRepository,
    SnippetRepository,
    TagRepository,
    UserRepository,
)
from storage.engine import CHECKOUT_TIMEOUT_SECONDS, autocommit_options
from storage.errors import unavailable_as_domain_error
from storage.organise import SqlRevisionRepository, SqlShareRepository, SqlTagRepository
from storage.repositories import (
    SqlAttemptRepository,
    SqlFlowRepository,
    SqlOneTimeTokenRepository,
    SqlOutbox,
    SqlSessionRepository,
    SqlSnippetRepository,
    SqlUserRepository,
)

logger = logging.getLogger(__name__)


class SqlAlchemyUnitOfWork:
    """`async with uow: …; await uow.commit()`; leaving without `commit()` rolls back.

    After `commit()` the unit of work stays usable: the next statement opens a new transaction.
    After `autocommit()` no statement opens one: each commits as it runs.
    """

    users: UserRepository
    snippets: SnippetRepository
    sessions: SessionRepository
    tokens: OneTimeTokenRepository
    attempts: AttemptRepository
    flows: FlowRepository
    outbox: Outbox
    tags: TagRepository
    revisions: RevisionRepository
    shares: ShareRepository

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        checkout_timeout: float = CHECKOUT_TIMEOUT_SECONDS,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._checkout_timeout = checkout_timeout
        self._connection: AsyncConnection | None = None
        self._autocommit = False

    async def __aenter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in use")
        with unavailable_as_domain_error():
            # Bounded as a whole: to a server gone silent, the pool's pre-ping of a pooled
            # connection would otherwise wait a full command timeout before reconnecting.
            async with asyncio.timeout(self._checkout_timeout):
                connection = await self._engine.connect()
        self._connection = connection
        self._autocommit = False
        return self

    def __getattr__(self, name: str) -> Any:
        """A repository, made on first use in this `async with` (most commands use one or
        two of the ten, and every command opens a unit of work or two)."""
        make = _REPOSITORIES.get(name)
        if make is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        repository = make(self._require_connection(), self._clock)
        setattr(self, name, repository)
        return repository

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._require_connection()
        self._connection = None
        for name in _REPOSITORIES:  # bound to this connection: made anew on the next use
            self.__dict__.pop(name, None)
        try:
            if not self._autocommit:
                # (In autocommit each statement committed as it ran: nothing to roll back.)
                await _rollback(connection)
        except Exception:
            if exc is None:
                raise
            # Already failing (often because the connection died): keep the first error.
            logger.debug("rollback after an error failed too", exc_info=True)
        finally:
            await connection.close()

    async def autocommit(self) -> None:
        connection = self._require_connection()
        if connection.in_transaction():
            raise RuntimeError("autocommit() must come before the first statement")
        await connection.execution_options(**autocommit_options(connection.dialect.name))
        self._autocommit = True

    async def commit(self) -> None:
        if self._autocommit:
            return  # each statement committed as it ran
        with unavailable_as_domain_error():
            await self._require_connection().commit()

    async def rollback(self) -> None:
        await _rollback(self._require_connection())

    def _require_connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._connection


_REPOSITORIES: dict[str, Callable[[AsyncConnection, Clock], object]] = {
    "users": lambda connection, _: SqlUserRepository(connection),
    "snippets": lambda connection, _: SqlSnippetRepository(connection),
    "sessions": lambda connection, _: SqlSessionRepository(connection),
    "tokens": lambda connection, _: SqlOneTimeTokenRepository(connection),
    "attempts": lambda connection, _: SqlAttemptRepository(connection),
    "flows": SqlFlowRepository,
    "outbox": lambda connection, _: SqlOutbox(connection),
    "tags": lambda connection, _: SqlTagRepository(connection),
    "revisions": lambda connection, _: SqlRevisionRepository(connection),
    "shares": lambda connection, _: SqlShareRepository(connection),
}
"""The unit of work's repositories by attribute name (the names of `core.ports.UnitOfWork`)."""


async def _rollback(connection: AsyncConnection) -> None:
    if connection.in_transaction():
        with unavailable_as_domain_error():
            await connection.rollback()
