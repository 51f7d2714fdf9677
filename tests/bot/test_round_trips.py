"""The hot commands' round trips on the deployed backends (PostgreSQL and Redis): each makes the
statements and Redis requests it needs, and no more (bench/NOTES.md compares them with floors
that make exactly these)."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asyncpg import Connection as AsyncpgConnection
from redis.asyncio.connection import Connection as RedisConnection
from sqlalchemy import event

from core.settings import load_settings
from tests.bot.conftest import BotHarness, Clock, running_bot
from tests.fakebotapi import FakeTelegram
from tests.secrets_guard import SecretsGuard


@dataclass
class RoundTrips:
    statements: list[str] = field(default_factory=list)
    redis: int = 0
    """Requests sent to Redis (a pipeline or a script is one)."""

    def clear(self) -> None:
        self.statements.clear()
        self.redis = 0

    @property
    def kinds(self) -> Counter[str]:
        return Counter(statement.split(None, 1)[0].upper() for statement in self.statements)


@pytest.fixture
async def deployed(
    fresh_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
    secrets_guard: SecretsGuard,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[BotHarness, RoundTrips]]:
    settings = load_settings(
        telegram_bot_token=FakeTelegram().token,
        database_url=fresh_postgres_url,
        redis_url=redis_url,
        jwt_secret=secrets.token_urlsafe(48),
        data_dir=tmp_path,
        _env_file=None,
    )
    trips = RoundTrips()
    send = RedisConnection.send_packed_command

    async def counted(self: RedisConnection, command: Any, check_health: bool = True) -> None:
        trips.redis += 1
        await send(self, command, check_health)

    monkeypatch.setattr(RedisConnection, "send_packed_command", counted)
    async with running_bot(settings, FakeTelegram(), Clock()) as bot:
        await bot.services.stop_purge()  # its statements are not the commands'

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            trips.statements.append(statement)

        engine = bot.services.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        # The quick statements (`storage.bare`) go to asyncpg directly, not through SQLAlchemy.
        execute = AsyncpgConnection._execute

        async def counted_bare(self: AsyncpgConnection, query: str, *args: Any, **kw: Any) -> Any:
            trips.statements.append(query)
            return await execute(self, query, *args, **kw)

        monkeypatch.setattr(AsyncpgConnection, "_execute", counted_bare)
        await bot.user(1)
        # Once through every command first: the Redis connection's handshake (CLIENT
        # SETINFO…) and the first call of each script (NOSCRIPT, SCRIPT LOAD) are no command's.
        assert "Saved" in await bot.say(1, "/save Warm\n```python\nwarm()\n```")
        for command in ("/list", "/list", "/get 1", "/get 1"):
            await bot.say(1, command)
        yield bot, trips
        event.remove(engine, "before_cursor_execute", count)


async def test_each_hot_command_makes_only_the_round_trips_it_needs(
    deployed: tuple[BotHarness, RoundTrips],
) -> None:
    bot, trips = deployed
    trips.clear()
    assert "Saved" in await bot.say(1, "/save Sort\n```python\nsorted(xs)\n```")
    # The session; {next ref, the snippet, the email} in one transaction; the list's drop.
    assert trips.kinds == {"SELECT": 1, "UPDATE": 1, "INSERT": 2}
    assert trips.redis == 1

    trips.clear()
    assert "Your snippets" in await bot.say(1, "/list")
    # The session; the list's cache read misses, the page is read, the cache filled.
    assert trips.kinds == {"SELECT": 2}
    assert trips.redis == 2
    trips.clear()
    assert "Your snippets" in await bot.say(1, "/list")
    assert trips.kinds == {"SELECT": 1}
    assert trips.redis == 1

    trips.clear()
    assert "sorted(xs)" in await bot.say(1, "/get 2")
    # The session; the ref misses the cache; the snippet is read, then cached; the email.
    assert trips.kinds == {"SELECT": 2, "INSERT": 1}
    assert trips.redis == 2
    trips.clear()
    assert "sorted(xs)" in await bot.say(1, "/get 2")
    assert trips.kinds == {"SELECT": 1, "INSERT": 1}
    assert trips.redis == 1


def _export_of(count: int) -> bytes:
    """A SnippetVault export of `count` snippets, each with two tags and two kept versions."""
    records = [
        {
            "title": f"Snippet {n}",
            "language": "python",
            "code": f"def f{n}():\n    return {n}\n",
            "tags": ["imported", f"batch{n % 3}"],
            "revisions": [
                {
                    "number": version,
                    "title": f"Snippet {n}",
                    "language": "python",
                    "code": f"def f{n}():\n    return {version}\n",
                    "created_at": "2026-01-01T00:00:00+00:00",
                }
                for version in (1, 2)
            ],
        }
        for n in range(count)
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "snippets.json", json.dumps({"format": "snippetvault", "snippets": records})
        )
    return buffer.getvalue()


async def test_an_import_makes_as_many_statements_for_300_snippets_as_for_3(
    deployed: tuple[BotHarness, RoundTrips],
) -> None:
    """One transaction of a few statements, whatever the archive holds: it used to make five
    per snippet (its ref, the row, its tags, each kept version), holding the owner's row lock
    for thousands of round trips."""
    bot, trips = deployed
    statements = []
    for chat, count in ((2, 3), (3, 300)):
        await bot.user(chat)
        trips.clear()
        update = bot.tg.document(
            chat, chat, "export.zip", _export_of(count), "application/zip", enqueue=False
        )
        [reply] = await bot.exchange(chat, update)
        assert f"Imported {count} snippets" in reply.text
        statements.append(trips.kinds)
    assert statements[0] == statements[1], statements
    assert "#300 Snippet 299 · Python · #batch2 #imported" in await bot.say(3, "/list")
    assert "v2" in await bot.say(3, "/history 300")
