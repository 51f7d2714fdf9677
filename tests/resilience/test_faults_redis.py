"""Redis goes away under traffic: the bot keeps answering from PostgreSQL, correctly, and when
Redis is back caching resumes without serving anything an edit replaced meanwhile."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import pytest
import redis.asyncio as aioredis

from core.entities import User
from storage.cache import snippet_key
from tests.clocks import SteppedMonotonic
from tests.fakebotapi import FakeTelegram
from tests.resilience.faults import FaultBot, TcpProxy, bot_settings, running_bot

if TYPE_CHECKING:
    from tests.conftest import ThrowawayRedis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CHATS = (7101, 7102, 7103, 7104)
OPS_PER_CHAT = 90
STOP_AFTER, START_AFTER = 100, 220
"""Redis is stopped after this many commands (of all chats) were answered, and started again."""
COMMAND_BOUND_SECONDS = 10.0
"""A bound against a command hanging on Redis (the client's timeouts are 0.5 s), not a speed
claim: loose enough for a busy machine."""
_REF = re.compile(r"/get (\d+)")


def code_for(chat_id: int, ref: int, version: int) -> str:
    return f"def snippet_{chat_id}_{ref}():\n    return {version}"


@dataclass
class ChatModel:
    """What one chat saved, as the database must have it."""

    chat_id: int
    user: User
    codes: dict[int, str] = field(default_factory=dict)
    titles: dict[int, str] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)


@dataclass
class Traffic:
    answered: int = 0
    while_down: int = 0
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
    redis_down: bool = False
    reached: dict[int, asyncio.Event] = field(default_factory=dict)

    def milestone(self, count: int) -> asyncio.Event:
        event = self.reached.setdefault(count, asyncio.Event())
        if self.answered >= count:
            event.set()
        return event

    def record(self, took: float) -> None:
        self.answered += 1
        self.while_down += self.redis_down
        self.slowest = max(self.slowest, took)
        for count, event in self.reached.items():
            if self.answered >= count:
                event.set()


async def save(bot: FaultBot, chat: ChatModel, traffic: Traffic, title: str) -> None:
    code = code_for(chat.chat_id, len(chat.codes) + 1, 0)
    answer, took = await bot.timed_say(chat.chat_id, f"/save {title}\n{code}")
    traffic.record(took)
    found = _REF.search(answer)
    if "Saved" not in answer or found is None:
        traffic.failures.append(f"/save {title}: {answer!r}")
        return
    ref = int(found.group(1))
    # The code names the ref it expected; keep what was actually stored.
    chat.codes[ref], chat.titles[ref], chat.versions[ref] = code, title, 0


async def one_command(bot: FaultBot, chat: ChatModel, traffic: Traffic, rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.15 or not chat.codes:
        await save(bot, chat, traffic, f"c{chat.chat_id}-s{len(chat.codes) + 1}")
        return
    ref = rng.choice(sorted(chat.codes))
    if roll < 0.55:
        command, expected = f"/get {ref}", [chat.codes[ref], f"#{ref}"]
    elif roll < 0.75:
        newest = sorted(chat.codes, reverse=True)[:8]
        command = "/list"
        expected = [f"of {len(chat.codes)}"] + [f"#{r} {chat.titles[r]}" for r in newest]
    else:
        version = chat.versions[ref] + 1
        code = code_for(chat.chat_id, ref, version)
        command, expected = f"/edit {ref}\n{code}", ["Updated", f"#{ref}"]
        chat.codes[ref], chat.versions[ref] = code, version
    answer, took = await bot.timed_say(chat.chat_id, command)
    traffic.record(took)
    missing = [text for text in expected if text not in answer]
    if missing:
        traffic.failures.append(f"{command!r} lacks {missing}: {answer!r}")


async def chat_traffic(bot: FaultBot, chat: ChatModel, traffic: Traffic, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(OPS_PER_CHAT):
        await one_command(bot, chat, traffic, rng)


async def snippet_id(bot: FaultBot, chat: ChatModel, ref: int) -> UUID:
    async with bot.services.database.uow_factory()() as uow:
        snippet = await uow.snippets.get_by_ref(chat.user.id, ref)
    assert snippet is not None
    return snippet.id


async def cached_code(client: aioredis.Redis, snippet: UUID) -> str | None:
    raw = await client.get(snippet_key(snippet))
    return None if raw is None else raw.decode()


@pytest.fixture
async def redis_client(throwaway_redis: ThrowawayRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(throwaway_redis.url, socket_timeout=2)
    yield client
    await client.aclose()


async def test_commands_keep_answering_from_the_database_while_redis_is_down(
    throwaway_redis: ThrowawayRedis,
    redis_client: aioredis.Redis,
    fresh_postgres_url: str,
    fault_tg: FakeTelegram,
    tmp_path: Path,
) -> None:
    settings = bot_settings(
        fault_tg, tmp_path, database_url=fresh_postgres_url, redis_url=throwaway_redis.url
    )
    async with running_bot(settings, fault_tg) as bot:
        chats = [ChatModel(chat_id, await bot.log_in_new_user(chat_id)) for chat_id in CHATS]
        traffic = Traffic()
        stop_now = traffic.milestone(STOP_AFTER)

        async def outage() -> None:
            await stop_now.wait()
            await asyncio.to_thread(throwaway_redis.stop)
            traffic.redis_down = True
            # Down for as many answers as planned, counted from when it is down: however many
            # went by while a busy machine was stopping it.
            down_for = START_AFTER - STOP_AFTER
            total = len(CHATS) * OPS_PER_CHAT
            await traffic.milestone(min(traffic.answered + down_for, total)).wait()
            await asyncio.to_thread(throwaway_redis.start)
            traffic.redis_down = False

        await asyncio.gather(
            outage(),
            *(chat_traffic(bot, chat, traffic, seed) for seed, chat in enumerate(chats)),
        )

        assert traffic.failures == [], f"{len(traffic.failures)} failed: {traffic.failures[:5]}"
        assert traffic.answered == len(CHATS) * OPS_PER_CHAT
        assert traffic.while_down >= (START_AFTER - STOP_AFTER) // 2  # really under the outage
        assert traffic.slowest < COMMAND_BOUND_SECONDS

        # Caching resumed: fetching a snippet puts it into the restarted (empty) Redis again.
        chat = chats[0]
        ref = max(chat.codes)
        key_of = await snippet_id(bot, chat, ref)
        deadline = time.monotonic() + 30  # a wait for a condition: only a failure waits it out
        while await cached_code(redis_client, key_of) is None:
            assert time.monotonic() < deadline, "caching did not resume after Redis came back"
            assert chat.codes[ref] in await bot.say(chat.chat_id, f"/get {ref}")
            await asyncio.sleep(0.2)
        assert chat.codes[ref].replace("\n", "\\n") in (
            await cached_code(redis_client, key_of) or ""
        )


async def test_an_edit_made_while_redis_was_unreachable_is_not_undone_when_it_returns(
    throwaway_redis: ThrowawayRedis,
    redis_client: aioredis.Redis,
    fresh_postgres_url: str,
    fault_tg: FakeTelegram,
    tmp_path: Path,
) -> None:
    # Through a proxy: cut, Redis keeps the old value but nothing (no forget) reaches it.
    proxy = TcpProxy("127.0.0.1", throwaway_redis.port)
    await proxy.start()
    settings = bot_settings(
        fault_tg,
        tmp_path,
        database_url=fresh_postgres_url,
        redis_url=f"redis://127.0.0.1:{proxy.port}/0",
    )
    clock = SteppedMonotonic()
    try:
        async with running_bot(settings, fault_tg, cache_clock=clock) as bot:
            chat = ChatModel(CHATS[0], await bot.log_in_new_user(CHATS[0]))
            old, new = code_for(chat.chat_id, 1, 1), code_for(chat.chat_id, 1, 2)
            assert "Saved" in await bot.say(chat.chat_id, f"/save Kept\n{old}")
            key_of = await snippet_id(bot, chat, 1)
            for _ in range(2):  # the first fetch caches the ref, the second the snippet
                assert old in await bot.say(chat.chat_id, "/get 1")
            assert await cached_code(redis_client, key_of) is not None

            await proxy.cut()
            assert "Updated" in await bot.say(chat.chat_id, f"/edit 1\n{new}")
            assert new in await bot.say(chat.chat_id, "/get 1")
            stale = await cached_code(redis_client, key_of)
            assert stale is not None and "return 1" in stale, "the old value must still be there"

            await proxy.restore()
            clock.advance(1.2)  # the cache skips Redis for a second after a failure
            for _ in range(3):
                answer = await bot.say(chat.chat_id, "/get 1")
                assert new in answer, answer
                cached = await cached_code(redis_client, key_of)
                assert cached is None or "return 2" in cached, cached
            assert "return 2" in (await cached_code(redis_client, key_of) or "")
    finally:
        await proxy.close()
