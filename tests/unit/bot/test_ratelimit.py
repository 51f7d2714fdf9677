"""The rate limiter's algorithm and its PTB wrapper, on an injected clock (no Redis)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from telegram.error import RetryAfter

from bot.ratelimit import (
    GROUP_LIMIT,
    PREBOOK_SECONDS,
    Gcra,
    Limit,
    SharedRateLimiter,
    bot_limit,
)
from core.settings import SettingsError, load_settings
from tests.clocks import FakeTime

BOT = Limit(rate=30, burst=10)


def approx(wait: float, booked: bool) -> tuple[float, bool]:
    """`(wait, booked)` as `Gcra.reserve` answers, the wait to a microsecond."""
    return (pytest.approx(wait, abs=1e-6), booked)  # type: ignore[return-value]


def limiter(time: FakeTime, **kwargs: Any) -> SharedRateLimiter:
    options: dict[str, Any] = {"bot_id": 42, "per_second": 30.0}
    options.update(kwargs)
    return SharedRateLimiter(clock=time.clock, sleep=time.sleep, **options)


def test_a_burst_within_the_limit_goes_at_once_and_the_next_request_waits_one_interval() -> None:
    slots = Gcra()
    waits = [slots.reserve(0.0, [("bot", BOT)]) for _ in range(10)]
    assert waits == [(0.0, True)] * 10
    assert slots.reserve(0.0, [("bot", BOT)]) == approx(1 / 30, True)
    assert slots.reserve(0.0, [("bot", BOT)]) == approx(2 / 30, True)


def test_requests_spaced_at_the_rate_never_wait() -> None:
    slots = Gcra()
    assert all(slots.reserve(n / 30, [("bot", BOT)]) == (0.0, True) for n in range(3000))


def test_no_window_holds_more_than_the_burst_plus_the_rate() -> None:
    slots = Gcra()
    generator = random.Random(7)
    now, sent = 0.0, []
    for _ in range(5000):
        now += generator.expovariate(60)  # twice the rate, in random clumps
        sent.append(now + slots.reserve(now, [("bot", BOT)])[0])
    sent.sort()
    start = 0
    for end, at in enumerate(sent):
        while sent[start] <= at - 1.0:
            start += 1
        assert end - start + 1 <= BOT.burst + BOT.rate
    # Queued, not dropped: every request got a send time, and the queue drains at the rate.
    assert len(sent) == 5000
    assert sent[-1] == pytest.approx(5000 / 30, rel=0.05)


async def test_a_group_gets_twenty_a_minute_and_its_queue_holds_back_no_other_chat() -> None:
    time = FakeTime()
    rate = limiter(time)

    async def send() -> bool:
        return True

    for _ in range(GROUP_LIMIT.burst + 1):
        await rate.process_request(send, (), {}, "sendMessage", {"chat_id": -5}, None)
    assert time.now - 1000.0 == pytest.approx(3.0)  # 20 a minute: one every 3 s after the burst
    assert rate.counters.waited == 1
    for chat_id in (7, -6):
        await rate.process_request(send, (), {}, "sendMessage", {"chat_id": chat_id}, None)
    assert rate.counters.waited == 1


def test_a_request_queued_for_its_group_books_nothing_until_it_can_go() -> None:
    slots = Gcra()
    group = [("group:-5", GROUP_LIMIT), ("bot", BOT)]
    for _ in range(GROUP_LIMIT.burst):
        assert slots.reserve(0.0, group) == (0.0, True)
    assert slots.reserve(0.0, group) == approx(3.0, False)  # retry then
    # The bot's budget is untouched by the refused one: seven more go at once.
    assert [slots.reserve(0.0, [("bot", BOT)]) for _ in range(7)] == [(0.0, True)] * 7
    # Behind a long bot queue, the group's slot is booked at the moment the request goes.
    assert slots.reserve(0.0, [("bot", BOT)]) == approx(1 / 30, True)
    wait, booked = slots.reserve(3.0, group)
    assert (wait, booked) == (0.0, True)


def test_the_bot_limit_is_a_third_of_a_second_of_burst_and_zero_turns_it_off() -> None:
    assert bot_limit(30) == Limit(30, 10)
    assert bot_limit(0) is None
    time = FakeTime()
    off = limiter(time, per_second=0)
    assert off.limits_for({"chat_id": 7}) == []
    assert [key for key, _ in off.limits_for({"chat_id": -100})] == ["ratelimit:42:group:-100"]


def test_which_requests_draw_on_which_budget() -> None:
    rate = limiter(FakeTime())
    assert rate.limits_for({}) == []  # no chat: answerCallbackQuery, getMe…
    assert [key for key, _ in rate.limits_for({"chat_id": 7})] == ["ratelimit:42:bot"]
    assert [key for key, _ in rate.limits_for({"chat_id": "-100"})] == [
        "ratelimit:42:group:-100",
        "ratelimit:42:bot",
    ]
    assert next(key for key, _ in rate.limits_for({"chat_id": "@channel"})) == (
        "ratelimit:42:group:@channel"
    )


async def test_under_the_limit_no_request_waits() -> None:
    time = FakeTime()
    rate = limiter(time)

    async def send() -> str:
        return "sent"

    for n in range(300):
        time.now = 1000.0 + n / 10  # ten a second
        assert await rate.process_request(send, (), {}, "sendMessage", {"chat_id": n}, None) == (
            "sent"
        )
    assert rate.counters.requests == 300
    assert rate.counters.waited == 0
    assert time.slept == []


async def test_over_the_limit_requests_queue_instead_of_failing() -> None:
    time = FakeTime()
    rate = limiter(time)

    async def send() -> bool:
        return True

    for _ in range(40):
        assert await rate.process_request(send, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert rate.counters.waited == 30
    assert time.now - 1000.0 == pytest.approx(30 / 30)


async def test_a_429_pauses_every_request_then_retries() -> None:
    time = FakeTime()
    rate = limiter(time)
    answers: list[object] = [RetryAfter(3), "sent"]

    async def send() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await rate.process_request(send, (), {}, "sendMessage", {"chat_id": 1}, None) == "sent"
    assert rate.counters.retry_after == 1
    assert time.now - 1000.0 == pytest.approx(3.1)

    # Another request issued during a pause waits for its end.
    await rate.pause(2.0)

    async def other() -> str:
        return "other"

    started = time.now
    assert await rate.process_request(other, (), {}, "sendMessage", {"chat_id": 2}, None) == (
        "other"
    )
    assert time.now - started == pytest.approx(2.0)


async def test_after_the_last_retry_the_429_reaches_the_caller() -> None:
    time = FakeTime()
    rate = limiter(time, max_retries=1)

    async def flooded() -> None:
        raise RetryAfter(1)

    with pytest.raises(RetryAfter):
        await rate.process_request(flooded, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert rate.counters.retry_after == 2


async def test_redis_down_falls_back_to_the_in_process_limit() -> None:
    time = FakeTime()
    # No retries (redis-py's default backs off for about 3 s of real time before giving up).
    dead = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), retries=0)
    )
    rate = limiter(time, redis=dead)

    async def send() -> str:
        return "sent"

    try:
        for _ in range(12):
            assert await rate.process_request(send, (), {}, "sendMessage", {"chat_id": 1}, None)
        await rate.pause(0.5)
    finally:
        await dead.aclose()
    assert rate.counters.redis_failures == 1  # then Redis is skipped for a while
    assert rate.counters.waited == 2  # the in-process budget still applies


async def test_without_an_overall_limit_a_private_chat_never_waits() -> None:
    time = FakeTime()
    rate = limiter(time, per_second=0)

    async def send() -> bool:
        return True

    for _ in range(500):
        await rate.process_request(send, (), {}, "sendMessage", {"chat_id": 3}, None)
    assert (rate.counters.waited, time.slept) == (0, [])


def test_the_keys_name_the_bot_by_its_id_never_by_its_secret() -> None:
    rate = SharedRateLimiter.for_bot("123456:SECRETxSECRET", 30, None)
    keys = [key for key, _ in rate.limits_for({"chat_id": -1})]
    assert keys == ["ratelimit:123456:group:-1", "ratelimit:123456:bot"]
    assert not any("SECRET" in key for key in keys)


def test_the_setting_defaults_to_telegrams_30_a_second_and_refuses_a_negative_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TELEGRAM_RATE_LIMIT", raising=False)
    assert load_settings(_env_file=None).telegram_rate_limit == 30
    monkeypatch.setenv("TELEGRAM_RATE_LIMIT", "0")
    assert load_settings(_env_file=None).telegram_rate_limit == 0
    monkeypatch.setenv("TELEGRAM_RATE_LIMIT", "-1")
    with pytest.raises(SettingsError, match="TELEGRAM_RATE_LIMIT"):
        load_settings(_env_file=None)


async def _sent() -> bool:
    return True


async def test_a_reply_takes_the_slot_booked_when_its_command_arrived_and_no_other() -> None:
    time = FakeTime()
    rate = limiter(time)
    burst = bot_limit(30.0)
    assert burst is not None

    for chat_id in range(1, burst.burst + 1):
        rate.prebook(chat_id)
        await rate.process_request(_sent, (), {}, "sendMessage", {"chat_id": chat_id}, None)
    assert time.slept == []  # the burst went at once, one slot a reply

    await rate.process_request(_sent, (), {}, "sendMessage", {"chat_id": 99}, None)
    assert time.slept == [pytest.approx(1 / 30)]  # no slot was booked twice


async def test_a_slot_booked_too_long_before_its_reply_is_left_and_the_reply_books_its_own() -> (
    None
):
    time = FakeTime()
    rate = limiter(time, per_second=1.0)  # a burst of one: every slot shows

    rate.prebook(7)
    await rate.process_request(_sent, (), {}, "sendMessage", {"chat_id": 7}, None)
    assert time.slept == []  # taken at once

    rate.prebook(7)
    await asyncio.sleep(0)  # the booking runs while the command does
    time.now += PREBOOK_SECONDS * 2  # the command ran long
    await rate.process_request(_sent, (), {}, "sendMessage", {"chat_id": 7}, None)
    # Its own slot, after the early one (left unused): never two requests in one slot.
    assert time.slept == [pytest.approx(2.0 - PREBOOK_SECONDS * 2)]


async def test_a_slot_booked_for_one_chat_is_not_taken_by_another() -> None:
    time = FakeTime()
    rate = limiter(time, per_second=1.0)

    rate.prebook(7)
    await asyncio.sleep(0)  # the booking runs while the command does
    await rate.process_request(_sent, (), {}, "sendMessage", {"chat_id": 8}, None)

    assert time.slept == [pytest.approx(1.0)]
