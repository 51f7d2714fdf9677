"""The background maintenance (deleted snippets past their undo window, attempts past every
limit's window) runs in every long-running command, and processes running it at once do no harm."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from api.runtime import Runtime
from bootstrap import Services, bootstrap
from bot.cli import _work
from core.entities import Client
from core.security import PasswordHasher
from core.settings import Settings, load_settings
from storage.database import Database
from storage.models import login_attempts, snippets

LONG_AGO = datetime(2021, 3, 1, 12, 0, tzinfo=UTC)
JWT_SECRET = "maintenance-test-secret-" + "x" * 32


def settings_for(database_url: str, data_dir: Path) -> Settings:
    return load_settings(
        data_dir=data_dir,
        database_url=database_url,
        jwt_secret=JWT_SECRET,
        telegram_bot_token=None,
        _env_file=None,
    )


async def open_services(settings: Settings, clock: list[datetime]) -> Services:
    return await bootstrap(settings, clock=lambda: clock[0], hasher=PasswordHasher(rounds=4))


async def leave_leftovers(settings: Settings, owners: int = 1) -> None:
    """Long ago: accounts signed up (attempts) and each deleted a snippet (past its undo)."""
    clock = [LONG_AGO]
    services = await open_services(settings, clock)
    try:
        for n in range(owners):
            address = f"owner-{n}-{time.monotonic_ns()}@example.com"
            await services.accounts.signup(address, "correct-horse-9", Client.chat(1000 + n))
            async with services.database.uow_factory()() as uow:
                owner = await uow.users.get_by_email(address)
            assert owner is not None
            saved = await services.snippets.create(owner, "Doomed", "x = 1", language_hint="python")
            await services.snippets.delete(owner, saved.snippet.ref)
    finally:
        await services.close()


async def leftovers(settings: Settings) -> tuple[int, int]:
    """How many deleted snippets and attempts the database holds."""
    database = Database.from_settings(settings)
    try:
        async with database.engine.connect() as connection:
            deleted = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(snippets)
                .where(snippets.c.deleted_at.is_not(None))
            )
            attempts = await connection.scalar(
                sa.select(sa.func.count()).select_from(login_attempts)
            )
    finally:
        await database.dispose()
    return int(deleted or 0), int(attempts or 0)


async def until_purged(settings: Settings) -> None:
    deadline = time.monotonic() + 60  # a coarse guard only: the first round runs at start
    while await leftovers(settings) != (0, 0):
        assert time.monotonic() < deadline, "the maintenance never purged"
        await asyncio.sleep(0.05)


async def test_the_worker_command_purges_deleted_snippets_and_old_attempts(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = settings_for(sqlite_url, tmp_path)
    await leave_leftovers(settings)
    deleted, attempts = await leftovers(settings)
    assert deleted == 1 and attempts > 0

    stop = asyncio.Event()
    worker = asyncio.create_task(_work(settings, stop))
    try:
        await until_purged(settings)
    finally:
        stop.set()
        await worker


async def test_the_api_command_purges_deleted_snippets_and_old_attempts(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = settings_for(sqlite_url, tmp_path)
    await leave_leftovers(settings)
    assert (await leftovers(settings))[0] == 1

    runtime = Runtime(settings, with_bot=False, with_worker=False)
    async with runtime.lifespan(FastAPI()):
        await until_purged(settings)


async def test_processes_purging_at_once_do_no_harm(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(database_url, tmp_path)
    await leave_leftovers(settings, owners=12)
    deleted, attempts = await leftovers(settings)
    assert deleted == 12 and attempts >= 12

    now = [datetime.now(UTC) + timedelta(minutes=1)]
    first, second = await open_services(settings, now), await open_services(settings, now)
    try:
        purged = await asyncio.gather(
            first.organise.purge_deleted(),
            second.organise.purge_deleted(),
            first.accounts.purge_attempts(),
            second.accounts.purge_attempts(),
        )
        assert purged[0] + purged[1] == deleted
        assert purged[2] + purged[3] == attempts
        with caplog.at_level(logging.WARNING, logger="bootstrap"):
            await asyncio.gather(*(services.purge_once() for services in (first, second) * 3))
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    finally:
        await first.close()
        await second.close()
    assert await leftovers(settings) == (0, 0)
