"""Fixtures of the resilience tests. Two engineers add fixtures here: keep names distinct."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bootstrap import bootstrap
from bot.app import APOLOGY, build_application
from core.security import PasswordHasher
from core.settings import load_settings
from storage.migrate import upgrade
from tests.bot.conftest import BotHarness, Clock, Inbox
from tests.fakebotapi import FakeRequest, FakeTelegram
from tests.resilience.faults import SmtpServer, TcpProxy

# Faults ---------------------------------------------------------------------------------------


@pytest.fixture
def fault_tg() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
async def fault_postgres_proxy(fresh_postgres_url: str) -> AsyncIterator[TcpProxy]:
    """A cuttable proxy in front of the test's (empty, migrated) PostgreSQL database."""
    url = make_url(fresh_postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def fault_postgres_proxy_url(fresh_postgres_url: str, fault_postgres_proxy: TcpProxy) -> str:
    """`fresh_postgres_url`, through `fault_postgres_proxy`."""
    url = make_url(fresh_postgres_url).set(host="127.0.0.1", port=fault_postgres_proxy.port)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def fault_smtp() -> Iterator[SmtpServer]:
    """An SMTP server on a port of its own, not started: the test starts and stops it."""
    server = SmtpServer()
    yield server
    server.stop()


# Bad input and attacks ------------------------------------------------------------------------

HOSTILE_JWT_SECRET = "resilience-tests-jwt-secret-of-enough-bytes-0123456789"


class HostileBots:
    """Starts real bots (services, `Application`, fake Bot API) and stops them at the end.

    Bots started with the same `tg` and `database_url` are two processes of one deployment.
    All of them run on `clock`, which the test moves forward.
    """

    def __init__(self, stack: AsyncExitStack, tmp_path: Path) -> None:
        self._stack = stack
        self._tmp_path = tmp_path
        self._count = 0
        self.clock = Clock()

    async def start(
        self,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        rounds: int = 4,
        tg: FakeTelegram | None = None,
        data_dir: Path | None = None,
        migrate: bool = True,
        hasher: PasswordHasher | None = None,
    ) -> BotHarness:
        """One bot; `rounds` is the bcrypt cost (4 is fast, 12 is production's), unless a
        `hasher` of the test's is given."""
        self._count += 1
        tg = tg or FakeTelegram()
        settings = load_settings(
            telegram_bot_token=tg.token,
            data_dir=data_dir or self._tmp_path / f"bot{self._count}",
            database_url=database_url,
            redis_url=redis_url,
            jwt_secret=HOSTILE_JWT_SECRET,
            _env_file=None,
        )
        if migrate:
            await upgrade(settings.effective_database_url)
        services = await bootstrap(
            settings, clock=self.clock, hasher=hasher or PasswordHasher(rounds=rounds)
        )
        app = build_application(
            settings, services=services, run_worker=False, request=FakeRequest(tg), rate_limit=False
        )
        await self._stack.enter_async_context(app)
        self._stack.push_async_callback(self._stop, app, tg)
        await app.post_init(app)  # type: ignore[misc]
        return BotHarness(tg, app, services, Inbox(settings.mail_dir), self.clock)

    @staticmethod
    async def _stop(app: Any, tg: FakeTelegram) -> None:
        await app.post_shutdown(app)
        assert not tg.fake_errors, tg.describe()


@pytest.fixture
async def hostile_bots(tmp_path: Path) -> AsyncIterator[HostileBots]:
    async with AsyncExitStack() as stack:
        yield HostileBots(stack, tmp_path)


@pytest.fixture
async def hostile_bot(hostile_bots: HostileBots, sqlite_url: str) -> BotHarness:
    """One bot on a fresh SQLite database (copied from a migrated template: fast)."""
    return await hostile_bots.start(database_url=sqlite_url, migrate=False)


async def query_rows(bot: BotHarness, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the bot's database, to check what was (not) stored."""
    async with bot.services.database.engine.connect() as connection:
        result = await connection.execute(sa.text(sql), params)
        return [tuple(row) for row in result]


def apologies(bot: BotHarness) -> list[str]:
    """Every time the error handler had to apologise, in any chat: a crash."""
    return [
        f"{call.params.get('chat_id')}: {call.params.get('text')}"
        for call in bot.tg.calls("sendMessage")
        if call.params.get("text") == APOLOGY
    ]
