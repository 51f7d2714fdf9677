"""The bot's outgoing rate limit: one budget per bot and per group, shared by every process.

Telegram limits a bot, not a process: about 30 messages a second overall and 20 a minute in
a group. Every request that names a chat reserves a slot in the bot's budget (and, for a
group, in the group's), GCRA style: the answer is how long to wait before sending, zero while
the bot is under its limits, so nothing is delayed until a limit is reached, and above it
requests queue (await) instead of being dropped. Private chats share the bot's budget, as
python-telegram-bot's own `AIORateLimiter` does; Telegram tolerates a short burst in one chat.

With `REDIS_URL` the slots live in Redis (one Lua script per request, Redis' clock), so N
processes together stay under one budget; without it, or while Redis is unreachable, each
process keeps its own. A 429 (`RetryAfter`) pauses every process for `retry_after`: a Redis
key that every reservation checks first.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from storage.breaker import CircuitBreaker
from storage.cache import connect_redis

log = logging.getLogger(__name__)

PREBOOK_SECONDS = 0.1
"""How long a slot booked when a command arrives (`prebook`) stays good for its reply: a reply
sent later than this books a slot of its own (the early one is left unused)."""
MAX_PREBOOKED = 1024
REDIS_RETRY_AFTER_SECONDS = 5.0
"""After a Redis failure, reserve in-process for this long before trying Redis again."""
RETRY_AFTER_MARGIN_SECONDS = 0.1
SHARED_PAUSE_READ_SECONDS = 0.1
"""A request that draws on no budget learns of another process's 429 this late at most."""
MAX_LOCAL_KEYS = 4096

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Callback = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate` requests a second on average, `burst` of them at once."""

    rate: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


GROUP_LIMIT = Limit(rate=20 / 60, burst=3)
"""Telegram: 20 messages a minute in one group."""
PAID_BROADCAST_LIMIT = Limit(rate=1000, burst=100)


def bot_limit(per_second: float) -> Limit | None:
    """The bot's overall budget; a third of a second's worth may go at once. 0: no limit."""
    if per_second <= 0:
        return None
    return Limit(rate=per_second, burst=max(1, math.ceil(per_second / 3)))


@dataclass
class Counters:
    """What the limiter did, for tests and the bench (not timings: counts)."""

    requests: int = 0
    waited: int = 0
    """Requests that were held back at least once (over a limit, or paused by a 429)."""
    waited_seconds: float = 0.0
    retry_after: int = 0
    """429 answers received by this process."""
    redis_failures: int = 0


class Gcra:
    """The in-process slots: per key, the theoretical arrival time of the next request.

    Virtual scheduling with reservation: a request is sent at `now + wait`, the smallest wait
    that conforms to every limit it falls under, and it moves each key's next slot past it.
    Any window of `w` seconds then holds at most `burst + w * rate` requests of a key.

    The last limit is the queue (the bot's budget): a request may book a slot in its future.
    The others (a group's) are only booked at the moment a request goes, so that a request
    queued for its group neither holds the bot's budget for others nor sends later than the
    group's slot it booked: when a group binds, the answer is "not booked, retry after".
    """

    def __init__(self) -> None:
        self._next: dict[str, float] = {}

    def reserve(self, now: float, limits: list[tuple[str, Limit]]) -> tuple[float, bool]:
        """(wait, booked): when not booked, wait that long and ask again."""
        if not limits:
            return 0.0, True
        waits = [self._next.get(key, now) - limit.tolerance - now for key, limit in limits]
        others = max(waits[:-1], default=0.0)
        if others > 0 and others > waits[-1]:
            return others, False
        send_at = now + max(0.0, waits[-1], others)
        for key, limit in limits:
            self._next[key] = max(self._next.get(key, now), send_at) + limit.interval
        if len(self._next) > MAX_LOCAL_KEYS:
            self._next = {key: at for key, at in self._next.items() if at > now}
        return send_at - now, True


# The same algorithm in Redis. KEYS[1] is the pause key, KEYS[2..] the slot keys (the queue
# last); ARGV[1] is "now" in ms ('' = Redis' own clock, shared by every process), then for
# each slot key its interval and tolerance in ms. Returns {paused_ms, wait_us, booked}: a pause
# wins and books nothing.
_RESERVE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then return {paused, 0, 0} end
if #KEYS == 1 then return {0, 0, 1} end
local nexts = {}
local others = 0
local last = 0
for i = 2, #KEYS do
  local at = tonumber(redis.call('GET', KEYS[i]) or now)
  if at < now then at = now end
  nexts[i] = at
  local w = at - tonumber(ARGV[2 * i - 1]) - now
  if i == #KEYS then last = w elseif w > others then others = w end
end
if others > 0 and others > last then return {0, math.ceil(others * 1000), 0} end
local wait = math.max(0, last, others)
for i = 2, #KEYS do
  local at = math.max(nexts[i], now + wait) + tonumber(ARGV[2 * i - 2])
  redis.call('SET', KEYS[i], string.format('%.3f', at), 'PX', math.ceil(at - now) + 1000)
end
return {0, math.ceil(wait * 1000), 1}
"""

# Extends the pause to ARGV[1] ms from now unless it already lasts longer.
_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""


class SharedRateLimiter(BaseRateLimiter[int]):
    """PTB's rate-limiter interface over `Gcra`, in Redis when a client or URL is given."""

    def __init__(
        self,
        *,
        bot_id: int | str,
        per_second: float,
        redis_url: str | None = None,
        redis: aioredis.Redis | None = None,
        group_limit: Limit | None = GROUP_LIMIT,
        max_retries: int = 5,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        redis_retry_after_seconds: float = REDIS_RETRY_AFTER_SECONDS,
        redis_clock: Clock | None = None,
    ) -> None:
        """`redis_clock` (tests): the "now" the Redis script uses instead of Redis' own."""
        self.bot_limit = bot_limit(per_second)
        self.group_limit = group_limit
        self.counters = Counters()
        self._prefix = f"ratelimit:{bot_id}:"
        self._pause_key = self._prefix + "pause"
        self._redis_url = redis_url
        self._redis = redis
        self._owns_redis = False
        self._max_retries = max_retries
        self._clock = clock
        self._sleep = sleep
        self._local = Gcra()
        self._paused_until = 0.0
        self._breaker = CircuitBreaker(
            redis_retry_after_seconds,
            clock,
            logger=log,
            down="Redis is unreachable (%s); each process keeps its own rate limit "
            "until it is back",
            back="Redis is reachable again; the rate limit is shared again",
        )
        self._redis_clock = redis_clock
        self._pause_read_at = -math.inf
        self._prebooked: dict[object, tuple[float, asyncio.Task[tuple[float, float, bool]]]] = {}
        self._reserve_script: Any = None
        self._pause_script: Any = None
        if redis is not None:
            self._register(redis)

    @classmethod
    def for_bot(cls, token: str, per_second: float, redis_url: str | None) -> SharedRateLimiter:
        # The bot's id is the token's public part (never the secret after the colon).
        bot_id = token.split(":", 1)[0]
        return cls(bot_id=bot_id, per_second=per_second, redis_url=redis_url)

    def _register(self, client: aioredis.Redis) -> None:
        self._reserve_script = client.register_script(_RESERVE)
        self._pause_script = client.register_script(_PAUSE)

    @property
    def shared(self) -> bool:
        return self._redis is not None

    async def initialize(self) -> None:
        if self._redis is None and self._redis_url is not None:
            self._redis = connect_redis(self._redis_url)  # fails fast, as the cache's
            self._owns_redis = True
            self._register(self._redis)

    async def shutdown(self) -> None:
        if self._owns_redis and self._redis is not None:
            await self._redis.aclose()
            self._redis = None
            self._owns_redis = False

    # -- PTB's entry point ------------------------------------------------------------------

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        self.counters.requests += 1
        limits = self.limits_for(data)
        retries = rate_limit_args if rate_limit_args is not None else self._max_retries
        prebooked = await self._use_prebooked(data.get("chat_id"))
        for attempt in range(retries + 1):
            if not prebooked:
                await self.acquire(limits)
            prebooked = False
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                self.counters.retry_after += 1
                if attempt == retries:
                    log.error("%s: still rate limited after %d retries", endpoint, retries)
                    raise
                seconds = _retry_seconds(error) + RETRY_AFTER_MARGIN_SECONDS
                log.warning(
                    "Telegram asked to wait %.1f s (%s); every process pauses", seconds, endpoint
                )
                await self.pause(seconds)
        raise AssertionError("unreachable")  # pragma: no cover

    def prebook(self, chat_id: int) -> None:
        """Starts booking the slot of the reply to a command from `chat_id` now, while the
        command runs, so that the reply need not wait for the booking's round trip to Redis.
        The first request to that chat within `PREBOOK_SECONDS` takes the slot; a later one,
        or none (the slot goes unused), books its own: a reply goes at most that much later
        than the slot it was booked for."""
        limits = self.limits_for({"chat_id": chat_id})
        if not limits:
            return
        booking = asyncio.ensure_future(self.reserve(limits))
        booking.add_done_callback(_retrieve)
        self._prebooked[chat_id] = (self._clock(), booking)
        if len(self._prebooked) > MAX_PREBOOKED:
            stale = self._clock() - PREBOOK_SECONDS
            self._prebooked = {
                chat: entry for chat, entry in self._prebooked.items() if entry[0] >= stale
            }

    async def _use_prebooked(self, chat_id: object) -> bool:
        """Waits for the slot prebooked for `chat_id`, if any is still good; False when the
        request must book its own."""
        entry = self._prebooked.pop(chat_id, None) if chat_id is not None else None
        if entry is None:
            return False
        booked_at, booking = entry
        if self._clock() - booked_at > PREBOOK_SECONDS:
            return False
        try:
            paused, wait, booked = await booking
        except Exception:
            return False
        if paused > 0 or not booked:
            return False
        remaining = booked_at + wait - self._clock()
        if remaining > 0:
            self.counters.waited += 1
            await self._hold(remaining)
        return True

    def limits_for(self, data: dict[str, Any]) -> list[tuple[str, Limit]]:
        """The budgets a request draws on, the bot's (the queue) last: none without a chat
        (as PTB's limiter)."""
        chat_id = data.get("chat_id")
        if chat_id is None:
            return []
        if data.get("allow_paid_broadcast"):
            return [(self._prefix + "paid", PAID_BROADCAST_LIMIT)]
        limits: list[tuple[str, Limit]] = []
        if self.group_limit is not None and _is_group(chat_id):
            limits.append((f"{self._prefix}group:{chat_id}", self.group_limit))
        if self.bot_limit is not None:
            limits.append((self._prefix + "bot", self.bot_limit))
        return limits

    # -- reserving --------------------------------------------------------------------------

    async def acquire(self, limits: list[tuple[str, Limit]]) -> None:
        """Returns when a request under `limits` may go: at once while under them."""
        held = False
        while True:
            paused, wait, booked = await self.reserve(limits)
            if paused > 0:
                held = True
                await self._hold(paused)
                continue
            if wait <= 0:
                break
            held = True
            await self._hold(wait)
            if not booked:
                continue
            # A 429 may have paused everything while this request waited for its slot.
            remaining = await self.pause_remaining()
            if remaining <= 0:
                break
            await self._hold(remaining)
        if held:
            self.counters.waited += 1

    async def _hold(self, seconds: float) -> None:
        self.counters.waited_seconds += seconds
        await self._sleep(seconds)

    async def reserve(self, limits: list[tuple[str, Limit]]) -> tuple[float, float, bool]:
        """(pause left, wait, booked), in seconds: see `Gcra.reserve`."""
        now = self._clock()
        if self._paused_until > now:
            return self._paused_until - now, 0.0, False
        if not limits:
            # No budget to draw on (no chat, or a private chat with no overall limit): only a
            # pause holds it, and the shared one is read at most every SHARED_PAUSE_READ_SECONDS
            # instead of a round trip per request.
            if not self._use_redis() or now - self._pause_read_at < SHARED_PAUSE_READ_SECONDS:
                return 0.0, 0.0, True
            self._pause_read_at = now
            return await self.pause_remaining(), 0.0, True
        if self._use_redis():
            try:
                paused_ms, wait_us, booked = await self._reserve_script(
                    keys=[self._pause_key, *(key for key, _ in limits)],
                    args=[self._redis_now(), *_script_args(limits)],
                )
            except (RedisError, OSError, TimeoutError) as error:
                self._redis_failed(error)
            else:
                self._redis_ok()
                if paused_ms:  # known here too: the next requests wait without asking Redis
                    self._paused_until = max(self._paused_until, now + int(paused_ms) / 1000)
                return int(paused_ms) / 1000, int(wait_us) / 1_000_000, bool(booked)
        return (0.0, *self._local.reserve(now, limits))

    async def pause(self, seconds: float) -> None:
        """Holds every request of every process for `seconds` (a 429 said so)."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        if self._use_redis():
            try:
                await self._pause_script(keys=[self._pause_key], args=[math.ceil(seconds * 1000)])
            except (RedisError, OSError, TimeoutError) as error:
                self._redis_failed(error)
            else:
                self._redis_ok()

    async def pause_remaining(self) -> float:
        now = self._clock()
        local = max(0.0, self._paused_until - now)
        if not self._use_redis():
            return local
        assert self._redis is not None
        try:
            shared_ms = await self._redis.pttl(self._pause_key)
        except (RedisError, OSError, TimeoutError) as error:
            self._redis_failed(error)
            return local
        self._redis_ok()
        shared = max(0.0, int(shared_ms) / 1000)
        self._paused_until = max(self._paused_until, now + shared)
        return max(local, shared)

    def _redis_now(self) -> str:
        return "" if self._redis_clock is None else f"{self._redis_clock() * 1000:.3f}"

    def _use_redis(self) -> bool:
        return self._redis is not None and self._breaker.allows_call()

    def _redis_failed(self, error: BaseException) -> None:
        self.counters.redis_failures += 1
        self._breaker.record_failure(error)

    def _redis_ok(self) -> None:
        self._breaker.record_success()


def _retrieve(booking: asyncio.Task[Any]) -> None:
    """Marks a booking's error as seen: a booking nobody took must not warn at exit."""
    if not booking.cancelled():
        booking.exception()


def _script_args(limits: list[tuple[str, Limit]]) -> list[str]:
    args: list[str] = []
    for _, limit in limits:
        args += [f"{limit.interval * 1000:.6f}", f"{limit.tolerance * 1000:.6f}"]
    return args


def _is_group(chat_id: object) -> bool:
    """Groups, supergroups and channels: negative ids, or an @username (as PTB decides)."""
    if isinstance(chat_id, str):
        try:
            chat_id = int(chat_id)
        except ValueError:
            return True
    return isinstance(chat_id, int) and chat_id < 0


def _retry_seconds(error: RetryAfter) -> float:
    delta = getattr(error, "_retry_after", None)
    if isinstance(delta, timedelta):
        return delta.total_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
