"""The shared rate limiter on a real Redis: the Lua script against the in-process algorithm,
one budget for several limiters (processes), and a 429 pause seen by all."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis

from bot.ratelimit import GROUP_LIMIT, Gcra, Limit, SharedRateLimiter
from tests.clocks import FakeTime

if TYPE_CHECKING:
    from tests.conftest import ThrowawayRedis


START = 5000.0
"""Where the fake clock starts."""


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


def shared(client: aioredis.Redis, time: FakeTime, **kwargs: Any) -> SharedRateLimiter:
    options: dict[str, Any] = {"bot_id": 42, "per_second": 30.0}
    options.update(kwargs)
    return SharedRateLimiter(
        redis=client, clock=time.clock, sleep=time.sleep, redis_clock=time.clock, **options
    )


async def test_the_redis_script_waits_exactly_as_the_in_process_algorithm(
    client: aioredis.Redis,
) -> None:
    time = FakeTime(START)
    rate = shared(client, time)
    local = Gcra()
    generator = random.Random(3)
    for _ in range(400):
        time.now += generator.choice([0.0, 0.0, 0.001, 0.01, 0.05, 0.5, 4.0])
        chat = generator.choice([7, 8, -100, -200])
        limits = rate.limits_for({"chat_id": chat})
        expected_wait, expected_booked = local.reserve(time.now, limits)
        paused, wait, booked = await rate.reserve(limits)
        assert paused == 0
        assert booked == expected_booked
        assert wait == pytest.approx(expected_wait, abs=2e-6)
        if generator.random() < 0.5:
            time.now += wait
    assert rate.counters.redis_failures == 0


async def test_two_processes_share_one_budget(client: aioredis.Redis) -> None:
    time = FakeTime(START)
    first, second = shared(client, time), shared(client, time)

    async def send() -> bool:
        return True

    for _ in range(10):  # the whole burst, from the first process
        await first.process_request(send, (), {}, "sendMessage", {"chat_id": 1}, None)
    await second.process_request(send, (), {}, "sendMessage", {"chat_id": 2}, None)
    assert (first.counters.waited, second.counters.waited) == (0, 1)
    assert time.slept == [pytest.approx(1 / 30, abs=1e-5)]


async def test_a_group_budget_is_shared_too(client: aioredis.Redis) -> None:
    time = FakeTime(START)
    first, second = shared(client, time), shared(client, time)

    async def send() -> bool:
        return True

    for _ in range(GROUP_LIMIT.burst):
        await first.process_request(send, (), {}, "sendMessage", {"chat_id": -9}, None)
    await second.process_request(send, (), {}, "sendMessage", {"chat_id": -9}, None)
    assert time.slept == [pytest.approx(3.0, abs=1e-3)]


async def test_a_pause_set_by_one_process_holds_the_others(client: aioredis.Redis) -> None:
    first = shared(client, FakeTime(START))
    other_time = FakeTime(START)
    second = shared(client, other_time)
    await first.pause(1.5)
    remaining = await shared(client, FakeTime(START)).pause_remaining()
    assert 0.5 < remaining <= 1.5

    async def send() -> bool:
        return True

    # The second process's reservation answers "paused" first; it waits, then sends.
    await client.pexpire("ratelimit:42:pause", 200)  # let the test end soon: real TTL
    await second.process_request(send, (), {}, "sendMessage", {"chat_id": 3}, None)
    assert second.counters.waited == 1
    assert other_time.slept and 0 < other_time.slept[0] <= 0.2


async def test_redis_own_clock_lets_a_burst_through_then_spaces_requests(
    client: aioredis.Redis,
) -> None:
    rate = SharedRateLimiter(bot_id=43, per_second=1.0, redis=client)
    assert rate.bot_limit == Limit(1, 1)
    limits = rate.limits_for({"chat_id": 1})
    waits = [(await rate.reserve(limits))[1] for _ in range(2)]
    assert waits[0] == 0.0
    assert 0.5 < waits[1] <= 1.0  # coarse: only a round trip of > 0.5 s could break it


async def test_a_request_that_draws_on_no_budget_still_honours_a_shared_pause(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    time = FakeTime(START)
    unlimited = shared(client, time, per_second=0)  # a private chat then draws on no budget
    assert unlimited.limits_for({"chat_id": 5}) == []

    async def send() -> bool:
        return True

    await shared(client, FakeTime(START)).pause(0.2)
    await unlimited.process_request(send, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert unlimited.counters.waited == 1
    assert time.slept and 0 < time.slept[0] <= 0.2
    # Within SHARED_PAUSE_READ_SECONDS, the next one does not ask Redis again: no PTTL, nor a
    # script (both scripts read the pause with PTTL). Counted on this client, not in Redis's
    # server-wide command statistics, which other tests' and runs' clients add to meanwhile.
    sent: list[str] = []
    execute: Callable[..., Awaitable[Any]] = client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await execute(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    await unlimited.process_request(send, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert not {"PTTL", "EVALSHA", "EVAL"} & set(sent), sent


async def test_redis_stopping_or_hanging_fails_no_request_and_sharing_resumes(
    throwaway_redis: ThrowawayRedis,
) -> None:
    time = FakeTime(START)
    rate = SharedRateLimiter(
        bot_id=44,
        per_second=30.0,
        redis_url=throwaway_redis.url,
        clock=time.clock,
        sleep=time.sleep,
    )
    await rate.initialize()

    async def send() -> str:
        return "sent"

    try:
        data = {"chat_id": 9}
        assert await rate.process_request(send, (), {}, "sendMessage", data, None) == "sent"
        assert rate.counters.redis_failures == 0
        throwaway_redis.pause()  # hangs: each call times out (0.5 s), then Redis is skipped
        for _ in range(5):
            assert await rate.process_request(send, (), {}, "sendMessage", data, None) == "sent"
        assert rate.counters.redis_failures == 1
        throwaway_redis.resume()
        time.now += 10  # past the back-off: the next request books in Redis again
        assert await rate.process_request(send, (), {}, "sendMessage", data, None) == "sent"
        assert rate.counters.redis_failures == 1
        client = aioredis.Redis.from_url(throwaway_redis.url)
        try:
            assert await client.exists("ratelimit:44:bot")
        finally:
            await client.aclose()
    finally:
        throwaway_redis.resume()
        await rate.shutdown()
