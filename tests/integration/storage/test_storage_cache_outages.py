"""Redis down, hung or restarted: the cache misses quietly and quickly, then resumes by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio.connection import AbstractConnection
from storage_builders import TcpProxy, free_port, new_snippet, new_user, silent_server

from core.entities import Snippet
from storage.cache import RedisSnippetCache, connect_redis
from tests.clocks import SteppedMonotonic

if TYPE_CHECKING:
    from tests.conftest import ThrowawayRedis

pytestmark = pytest.mark.redis

RETRY_AFTER = 0.2


async def _exercise(cache: RedisSnippetCache, snippet: Snippet) -> None:
    """Every operation once; none may raise."""
    read = await cache.get_snippet(snippet.id)
    assert read.value is None
    await cache.put_snippet(snippet, read.ticket)
    listed = await cache.get_list(snippet.owner_id)
    assert listed.value is None
    by_ref = await cache.get_by_ref(snippet.owner_id, snippet.ref)
    assert by_ref.value is None
    await cache.put_snippet(snippet, by_ref.ticket)
    await cache.forget_snippet(snippet.owner_id, snippet.id)
    await cache.forget_list(snippet.owner_id)


async def _cached(cache: RedisSnippetCache, snippet: Snippet) -> bool:
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    return (await cache.get_snippet(snippet.id)).value == snippet


async def _until_cached(cache: RedisSnippetCache, snippet: Snippet, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not await _cached(cache, snippet):
        if time.monotonic() > deadline:
            pytest.fail("caching did not resume")
        await asyncio.sleep(0.05)


@pytest.fixture
def connection_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every socket connect any Redis client makes during the test (its `host:port`)."""
    attempts: list[str] = []
    connect = AbstractConnection.connect_check_health

    async def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        attempts.append(self._host_error())
        await connect(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "connect_check_health", counted)
    return attempts


# The breaker's pause is judged by the work that reached Redis, not by wall-clock time: the
# cache's clock stands still, so after the first failure every operation of the loop must be
# skipped. Without the breaker each of the loop's 50 x 7 (or 20 x 7) operations makes at least
# one connection attempt (and, to a hung server, waits its timeout).
MAX_ATTEMPTS_WHILE_DOWN = 2
"""The first failing command: one connect, plus the client's one retry on a dropped one."""


async def test_nothing_listening_means_fast_misses_and_one_warning(
    caplog: pytest.LogCaptureFixture, connection_attempts: list[str]
) -> None:
    cache = RedisSnippetCache(
        connect_redis(f"redis://127.0.0.1:{free_port()}/0"), 60, clock=SteppedMonotonic()
    )
    caplog.set_level(logging.WARNING, logger="storage.cache")
    try:
        for _ in range(50):
            await _exercise(cache, new_snippet(new_user(), 1))
    finally:
        await cache.close()

    assert 1 <= len(connection_attempts) <= MAX_ATTEMPTS_WHILE_DOWN, connection_attempts
    assert len([r for r in caplog.records if r.name == "storage.cache"]) == 1


async def test_a_hung_server_costs_one_timeout_then_is_skipped(
    connection_attempts: list[str],
) -> None:
    async with silent_server() as port:
        cache = RedisSnippetCache(
            connect_redis(f"redis://127.0.0.1:{port}/0", timeout=0.3), 60, clock=SteppedMonotonic()
        )
        try:
            for _ in range(20):
                await _exercise(cache, new_snippet(new_user(), 1))
        finally:
            await cache.close()

    assert 1 <= len(connection_attempts) <= MAX_ATTEMPTS_WHILE_DOWN, connection_attempts


@pytest.fixture
async def cache_on(throwaway_redis: ThrowawayRedis) -> AsyncIterator[RedisSnippetCache]:
    cache = RedisSnippetCache(
        connect_redis(throwaway_redis.url), 60, retry_after_seconds=RETRY_AFTER
    )
    yield cache
    await cache.close()


async def test_caching_resumes_after_redis_restarts(
    throwaway_redis: ThrowawayRedis, cache_on: RedisSnippetCache, connection_attempts: list[str]
) -> None:
    snippet = new_snippet(new_user(), 1)
    assert await _cached(cache_on, snippet)

    throwaway_redis.stop()
    connection_attempts.clear()
    for _ in range(20):
        await _exercise(cache_on, new_snippet(new_user(), 1))
    # At most one attempt per pause of RETRY_AFTER (0.2 s) of real time; without the breaker,
    # every one of the 140 operations attempts. (200 attempts would need 40 s of stalls.)
    assert len(connection_attempts) < 100, connection_attempts

    throwaway_redis.start()
    await _until_cached(cache_on, new_snippet(new_user(), 1))


async def test_a_forget_that_missed_redis_is_delivered_when_it_answers_again(
    redis_url: str,
) -> None:
    url = urlsplit(redis_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 6379)
    await proxy.start()
    through_proxy = f"redis://127.0.0.1:{proxy.port}{url.path}"
    clock = SteppedMonotonic()
    cache = RedisSnippetCache(
        connect_redis(through_proxy), 60, retry_after_seconds=RETRY_AFTER, clock=clock
    )
    try:
        snippet = new_snippet(new_user(), 1)
        assert await _cached(cache, snippet)

        await proxy.cut()  # Redis keeps the value, but the edit's forget cannot reach it
        await cache.forget_snippet(snippet.owner_id, snippet.id)
        await proxy.start()
        clock.advance(RETRY_AFTER * 1.5)

        assert (await cache.get_snippet(snippet.id)).value is None
    finally:
        await cache.close()
        await proxy.cut()
