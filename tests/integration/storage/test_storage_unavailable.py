"""A database that is down, hung or flapping surfaces as `StorageUnavailable`, quickly, and the
same `Database` works again once the server is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from storage_builders import TcpProxy, free_port, new_user, silent_server

from core.entities import User
from core.errors import StorageUnavailable
from storage.database import Database
from storage.models import users

HANG_BOUND_SECONDS = 10.0
"""A bound against hanging, not a speed claim: the timeouts under test are 0.3-1 s, and without
them these calls wait out asyncpg's 60 s connect timeout or a row lock that is never released.
Loose, so that a busy machine cannot make it fail."""
SQLITE_BOUND_SECONDS = 4.0
"""SQLite's own busy wait is 5 s (Python's default `timeout`): below it, a waiter that ignored
the 0.3 s command timeout fails this bound."""


async def _assert_unavailable(database: Database, within_seconds: float) -> None:
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        async with database.uow_factory()() as uow:
            await uow.users.get(new_user().id)
    with pytest.raises(StorageUnavailable):
        await database.ping()
    with pytest.raises(StorageUnavailable):
        await database.outbox_queue().counts()
    assert time.monotonic() - started < within_seconds


async def test_a_closed_port_is_unavailable_at_once() -> None:
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        await _assert_unavailable(database, within_seconds=HANG_BOUND_SECONDS)
    finally:
        await database.dispose()


async def test_a_server_that_never_answers_is_unavailable_after_the_connect_timeout() -> None:
    async with silent_server() as port:
        database = Database(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing", connect_timeout=0.3
        )
        try:
            await _assert_unavailable(database, within_seconds=HANG_BOUND_SECONDS)
        finally:
            await database.dispose()


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    await proxy.cut()


@pytest.fixture
async def behind_proxy(
    proxy: tuple[TcpProxy, str],
) -> AsyncIterator[tuple[TcpProxy, Database, User]]:
    """A `Database` reached through the proxy, holding one committed user."""
    tcp_proxy, url = proxy
    database = Database(url, connect_timeout=1)
    user = new_user()
    async with database.uow_factory()() as uow:
        await uow.users.add(user)
        await uow.commit()
    yield tcp_proxy, database, user
    await database.dispose()


async def test_units_of_work_recover_when_the_database_returns(
    behind_proxy: tuple[TcpProxy, Database, User],
) -> None:
    tcp_proxy, database, user = behind_proxy
    # Down in the middle of a unit of work, and for new ones.
    async with database.uow_factory()() as uow:
        await uow.users.get(user.id)
        await tcp_proxy.cut()
        with pytest.raises(StorageUnavailable):
            await uow.users.get(user.id)
    await _assert_unavailable(database, within_seconds=HANG_BOUND_SECONDS)

    await tcp_proxy.start()
    async with database.uow_factory()() as uow:
        assert await uow.users.get(user.id) == user
    await database.ping()


async def test_a_pooled_connection_the_server_closed_is_replaced_not_used(
    behind_proxy: tuple[TcpProxy, Database, User],
) -> None:
    """The server went away and came back while the pool sat idle (a restart, the end of a
    partition): the next unit of work gets a new connection instead of failing on the old."""
    tcp_proxy, database, user = behind_proxy
    async with database.uow_factory()() as uow:
        raw = await uow._require_connection().get_raw_connection()  # type: ignore[attr-defined]
        pooled = raw.driver_connection
    await tcp_proxy.cut()
    await tcp_proxy.start()
    for _ in range(500):  # until the client has read the end of the stream (a bound)
        if pooled.is_closed():
            break
        await asyncio.sleep(0.01)
    assert pooled.is_closed()

    async with database.uow_factory()() as uow:
        assert await uow.users.get(user.id) == user


async def test_a_statement_that_waits_too_long_is_unavailable(postgres_url: str) -> None:
    database = Database(postgres_url, command_timeout=0.5)
    user = new_user()
    try:
        async with database.uow_factory()() as uow:
            await uow.users.add(user)
            await uow.commit()
        async with database.engine.connect() as blocker:
            await blocker.execute(sa.select(users).where(users.c.id == user.id).with_for_update())
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                async with database.uow_factory()() as uow:
                    await uow.users.set_password(user.id, "blocked by the row lock")
            assert time.monotonic() - started < HANG_BOUND_SECONDS
            await blocker.rollback()
    finally:
        await database.dispose()


async def test_sqlite_locked_by_another_writer_for_too_long_is_unavailable(
    sqlite_url: str,
) -> None:
    database = Database(sqlite_url, command_timeout=0.3)
    try:
        async with database.uow_factory()() as holder:
            await holder.users.add(new_user())  # holds SQLite's one write lock
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                async with database.uow_factory()() as waiter:
                    await waiter.users.get(new_user().id)
            assert time.monotonic() - started < SQLITE_BOUND_SECONDS
    finally:
        await database.dispose()


async def test_a_missing_schema_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}")
    try:
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            async with database.uow_factory()() as uow:
                await uow.users.get(new_user().id)
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_a_server_with_no_connection_to_spare_is_unavailable(postgres_url: str) -> None:
    # "too many clients": a role allowed no connection gets the same refusal as a full server.
    role = f"sv_full_{new_user().id.hex[:12]}"
    admin = Database(postgres_url)
    try:
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
        full = Database(make_url(postgres_url).set(username=role).render_as_string(False))
        try:
            await _assert_unavailable(full, within_seconds=HANG_BOUND_SECONDS)
        finally:
            await full.dispose()
    finally:
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        await admin.dispose()
