"""The database as the rest of the application sees it: units of work, the outbox queue, health."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.ports import (
    Clock,
    OutboxQueue,
    QuickStatements,
    StatementsInUnitsOfWork,
    UnitOfWork,
    UnitOfWorkFactory,
    utc_now,
)
from core.settings import Settings
from storage.bare import BareStatements
from storage.engine import (
    CHECKOUT_TIMEOUT_SECONDS,
    COMMAND_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    create_engine,
)
from storage.errors import unavailable_as_domain_error
from storage.outbox import FailedEmail, SqlOutboxQueue
from storage.uow import SqlAlchemyUnitOfWork


class Database:
    """Owns the connection pools (SQLAlchemy's engine; on Postgres also `storage.bare`'s): build
    one per process, `dispose()` it at exit."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utc_now,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
        checkout_timeout: float = CHECKOUT_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.is_postgres = make_url(url).get_backend_name() == "postgresql"
        self._clock = clock
        self._checkout_timeout = checkout_timeout
        self._engine = create_engine(
            url, connect_timeout=connect_timeout, command_timeout=command_timeout
        )
        # The statements of most updates skip SQLAlchemy on Postgres (`storage.bare`).
        self.quick_statements: QuickStatements = (
            BareStatements(
                url,
                connect_timeout=connect_timeout,
                command_timeout=command_timeout,
                checkout_timeout=checkout_timeout,
            )
            if self.is_postgres
            else StatementsInUnitsOfWork(self.uow_factory())
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utc_now) -> Database:
        return cls(settings.effective_database_url, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def uow_factory(self) -> UnitOfWorkFactory:
        def new_unit_of_work() -> UnitOfWork:
            return SqlAlchemyUnitOfWork(
                self._engine, self._clock, checkout_timeout=self._checkout_timeout
            )

        return new_unit_of_work

    def outbox_queue(self) -> OutboxQueue:
        return SqlOutboxQueue(self._engine, self._clock)

    async def failed_emails(self, limit: int = 5) -> list[FailedEmail]:
        """Emails parked for good, newest first: `(to, error)` pairs for `snippetvault check`."""
        return await SqlOutboxQueue(self._engine, self._clock).failed_emails(limit)

    async def ping(self) -> None:
        """Returns when the database answers; raises `StorageUnavailable` otherwise."""
        with unavailable_as_domain_error():
            async with self._engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        """Closes the pools' idle connections (SQLAlchemy's also those in use, when they come
        back). The database stays usable: the next statement opens a connection again (the bench
        hands the server's connections to its floors this way between rows)."""
        if isinstance(self.quick_statements, BareStatements):
            await self.quick_statements.close()
        await self._engine.dispose()
