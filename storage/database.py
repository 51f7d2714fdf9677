"""The database as the rest of the application sees it: units of work, the outbox queue, health."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.ports import Clock, OutboxQueue, UnitOfWork, UnitOfWorkFactory, utc_now
from core.settings import Settings
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
    """Owns the engine (a connection pool): build one per process, `dispose()` it at exit."""

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
        # A pool of its own for the writes that need not wait for the disk (see `uow_factory`);
        # SQLite has no such setting, and one pool.
        self._unsynced_engine = (
            create_engine(
                url,
                connect_timeout=connect_timeout,
                command_timeout=command_timeout,
                wait_for_disk=False,
            )
            if self.is_postgres
            else self._engine
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utc_now) -> Database:
        return cls(settings.effective_database_url, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every pool: the main one, and on Postgres the one whose commits do not wait for the
        disk (`uow_factory(wait_for_disk=False)`)."""
        if self._unsynced_engine is self._engine:
            return (self._engine,)
        return (self._engine, self._unsynced_engine)

    def uow_factory(self, *, wait_for_disk: bool = True) -> UnitOfWorkFactory:
        """Units of work on the pool; with `wait_for_disk=False`, their commits return before
        the server's disk has them (Postgres: about 1.5–2 ms sooner on this machine's disk),
        and a crash of the database server may lose the last fraction of a second of them.
        Only for writes whose loss costs nothing a user cannot get again (the email copy of a
        snippet just shown)."""
        engine = self._engine if wait_for_disk else self._unsynced_engine

        def new_unit_of_work() -> UnitOfWork:
            return SqlAlchemyUnitOfWork(
                engine, self._clock, checkout_timeout=self._checkout_timeout
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
        await self._engine.dispose()
        if self._unsynced_engine is not self._engine:
            await self._unsynced_engine.dispose()
