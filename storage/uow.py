"""The unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

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

    async def __aenter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in use")
        with unavailable_as_domain_error():
            # Bounded as a whole: to a server gone silent, the pool's pre-ping of a pooled
            # connection would otherwise wait a full command timeout before reconnecting.
            async with asyncio.timeout(self._checkout_timeout):
                connection = await self._engine.connect()
        self._connection = connection
        self.users = SqlUserRepository(connection)
        self.snippets = SqlSnippetRepository(connection)
        self.sessions = SqlSessionRepository(connection)
        self.tokens = SqlOneTimeTokenRepository(connection)
        self.attempts = SqlAttemptRepository(connection)
        self.flows = SqlFlowRepository(connection, self._clock)
        self.outbox = SqlOutbox(connection)
        self.tags = SqlTagRepository(connection)
        self.revisions = SqlRevisionRepository(connection)
        self.shares = SqlShareRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._require_connection()
        self._connection = None
        try:
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

    async def commit(self) -> None:
        with unavailable_as_domain_error():
            await self._require_connection().commit()

    async def rollback(self) -> None:
        await _rollback(self._require_connection())

    def _require_connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._connection


async def _rollback(connection: AsyncConnection) -> None:
    if connection.in_transaction():
        with unavailable_as_domain_error():
            await connection.rollback()
