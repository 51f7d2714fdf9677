"""Snippet caches: Redis (shared by every process) and in-process memory (the embedded default).

Both follow one race-free protocol. A read returns the value together with a ticket naming the
key's generation; `forget_*` bumps the generation and drops the value in one step; a `put`
stores only if the generation is still the one on its ticket. So a slow reader that fetched
the old row before an edit cannot write it back after the edit's `forget`.

Keys: `snippet:<id>`, `user:<owner_id>:snippets`, `user:<owner_id>:ref:<ref>`; a value key's
generation lives at `<key>:gen`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.entities import Snippet, SnippetSummary
from core.ports import CachedList, CacheRead, CacheTicket, SnippetCache
from core.settings import Settings
from storage.breaker import CircuitBreaker
from storage.mapping import from_json, to_json

logger = logging.getLogger(__name__)

T = TypeVar("T")

LIST_LIMIT = 50
GENERATION_TTL_SECONDS = 7 * 24 * 3600
"""Far longer than any read can take: an expired generation would let an old ticket match."""
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_RETRY_AFTER_SECONDS = 1.0
MEMORY_MAX_ENTRIES = 10_000
DECODED_LISTS_KEPT = 128
"""Owners whose cached list stays decoded in the process (see `_DecodedLists`)."""
MAX_PENDING_INVALIDATIONS = 10_000

_NEVER_MATCHES = "unavailable"
"""The generation on a ticket taken while the backend was unreachable: its put never stores."""


SNIPPET_KEY_PREFIX = "snippet:"
GENERATION_KEY_SUFFIX = ":gen"


def snippet_key(snippet_id: UUID) -> str:
    return f"{SNIPPET_KEY_PREFIX}{snippet_id}"


def list_key(owner_id: UUID) -> str:
    return f"user:{owner_id}:snippets"


def ref_key(owner_id: UUID, ref: int) -> str:
    return f"user:{owner_id}:ref:{ref}"


def generation_key(key: str) -> str:
    return f"{key}{GENERATION_KEY_SUFFIX}"


class ManagedSnippetCache(SnippetCache, Protocol):
    """A snippet cache with the lifecycle the composition root needs."""

    backend: str
    """"redis" or "memory", for `snippetvault check`."""

    async def close(self) -> None: ...


def create_snippet_cache(settings: Settings) -> ManagedSnippetCache:
    """Redis when `REDIS_URL` is set (needed with more than one process), else in-process."""
    if settings.redis_url:
        return RedisSnippetCache(
            connect_redis(settings.redis_url), settings.snippet_cache_ttl_seconds
        )
    return MemorySnippetCache(settings.snippet_cache_ttl_seconds)


def connect_redis(url: str, *, timeout: float = REDIS_TIMEOUT_SECONDS) -> aioredis.Redis:
    """A client that fails fast: short timeouts, one immediate retry on a dropped connection
    (a pooled connection that died while Redis restarted), none on timeouts."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )


# Values as JSON -----------------------------------------------------------------------------


def encode_snippet(snippet: Snippet) -> str:
    return json.dumps(to_json(snippet))


def decode_snippet(raw: str | bytes) -> Snippet:
    return from_json(Snippet, json.loads(raw))


def encode_list(value: CachedList) -> str:
    return json.dumps({"total": value.total, "items": [to_json(item) for item in value.items]})


def decode_list(raw: str | bytes) -> CachedList:
    data = json.loads(raw)
    return CachedList(
        items=tuple(from_json(SnippetSummary, item) for item in data["items"]),
        total=int(data["total"]),
    )


def _decoded(decode: Callable[[str | bytes], T], raw: str | bytes | None) -> T | None:
    if raw is None:
        return None
    try:
        return decode(raw)
    except (ValueError, KeyError, TypeError):
        # Written by another version of the code, or damaged: a miss, rebuilt from the database.
        logger.debug("undecodable cache value, treated as a miss", exc_info=True)
        return None


class _DecodedLists:
    """The lists last decoded, each kept with the exact value it came from.

    A cached list is read far more often than it changes (every /list, every page turn, the
    Mini App), and decoding its `LIST_LIMIT` summaries costs more CPU than the rest of a cached
    /list. A read whose value is byte for byte the one decoded before reuses the entities
    (immutable); any other value is decoded again, so what is served is always what Redis
    holds. Bounded: the least recently read owners' lists are dropped first."""

    def __init__(self, max_entries: int = DECODED_LISTS_KEPT) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[str | bytes, CachedList]] = OrderedDict()

    def decode(self, key: str, raw: str | bytes) -> CachedList:
        entry = self._entries.get(key)
        if entry is not None and entry[0] == raw:
            self._entries.move_to_end(key)
            return entry[1]
        value = decode_list(raw)  # raises on a damaged value: nothing kept
        self._entries[key] = (raw, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return value


def _text(raw: str | bytes | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


# Redis --------------------------------------------------------------------------------------

# KEYS: value key, generation key. ARGV: expected generation ("" = none yet), value, TTL.
_PUT_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[2])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

# KEYS: the snippet's key, the generation key of the ticket (the snippet's or its owner's
# list's), the owner's ref key. ARGV: expected generation ("" = none yet), value, TTL, the id.
_PUT_SNIPPET_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[2])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3])
return 1
"""

# KEYS: the ref key, the generation key of the owner's list. ARGV: the snippet key prefix, the
# generation key suffix. Returns {id, value, generation, list generation}: the ref and the
# snippet in one round trip (id false for an unknown ref). It reads keys it derives itself,
# which a single Redis allows (Redis Cluster would not).
_GET_BY_REF = """
local list_generation = redis.call('GET', KEYS[2])
local id = redis.call('GET', KEYS[1])
if not id then return {false, false, false, list_generation} end
local key = ARGV[1] .. id
return {id, redis.call('GET', key), redis.call('GET', key .. ARGV[2]), list_generation}
"""


# KEYS: pairs of (value key, its generation key). ARGV: the generation keys' TTL. Bumps each
# generation and drops each value in one step: one script call, cheaper to send and to read
# back than MULTI, three commands a key and EXEC.
_BUMP_AND_DROP = """
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i + 1])
  redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
  redis.call('DEL', KEYS[i])
end
return 1
"""


class RedisSnippetCache:
    """The shared cache. Takes ownership of `client` (`close()` closes it)."""

    LIST_LIMIT = LIST_LIMIT
    backend = "redis"

    def __init__(
        self,
        client: aioredis.Redis,
        ttl_seconds: int,
        *,
        retry_after_seconds: float = REDIS_RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` (seconds, monotonic) times the pause after a failure."""
        self._redis = client
        self._ttl = ttl_seconds
        self._breaker = CircuitBreaker(
            retry_after_seconds,
            clock,
            logger=logger,
            down="Redis is unreachable (%s); serving snippets from the database until it is back",
            back="Redis is reachable again; snippet caching resumed",
        )
        self._put_if_unchanged = client.register_script(_PUT_IF_UNCHANGED)
        self._put_snippet_if_unchanged = client.register_script(_PUT_SNIPPET_IF_UNCHANGED)
        self._get_by_ref = client.register_script(_GET_BY_REF)
        self._bump_and_drop_script = client.register_script(_BUMP_AND_DROP)
        # Invalidations that could not reach Redis; sent first once it answers again, so an
        # edit made during an outage does not leave the old value cached.
        self._pending_forgets: dict[str, None] = {}
        self._lists = _DecodedLists()

    async def get_snippet(self, snippet_id: UUID) -> CacheRead[Snippet]:
        return await self._read(snippet_key(snippet_id), decode_snippet)

    async def put_snippet(self, snippet: Snippet, ticket: CacheTicket) -> None:
        key = snippet_key(snippet.id)
        if ticket.key not in (key, list_key(snippet.owner_id)) or (
            ticket.generation == _NEVER_MATCHES
        ):
            return
        await self._call(
            lambda: self._put_snippet_if_unchanged(
                keys=[key, generation_key(ticket.key), ref_key(snippet.owner_id, snippet.ref)],
                args=[ticket.generation or "", encode_snippet(snippet), self._ttl, str(snippet.id)],
            ),
            None,
        )

    async def get_by_ref(self, owner_id: UUID, ref: int) -> CacheRead[Snippet]:
        owner_list = list_key(owner_id)
        raw: list[Any] | None = await self._call(
            lambda: self._get_by_ref(
                keys=[ref_key(owner_id, ref), generation_key(owner_list)],
                args=[SNIPPET_KEY_PREFIX, GENERATION_KEY_SUFFIX],
            ),
            None,
        )
        if raw is None:
            return CacheRead(None, CacheTicket(owner_list, _NEVER_MATCHES))
        raw_id, value, generation, list_generation = raw
        try:
            snippet_id = UUID(_text(raw_id))
        except (ValueError, TypeError):
            # Unknown (or damaged): read from the database, and cached under the list's ticket.
            return CacheRead(None, CacheTicket(owner_list, _text(list_generation)))
        key = snippet_key(snippet_id)
        return CacheRead(_decoded(decode_snippet, value), CacheTicket(key, _text(generation)))

    async def get_list(self, owner_id: UUID) -> CacheRead[CachedList]:
        key = list_key(owner_id)
        return await self._read(key, lambda raw: self._lists.decode(key, raw))

    async def put_list(self, owner_id: UUID, value: CachedList, ticket: CacheTicket) -> None:
        await self._write(list_key(owner_id), encode_list(value), ticket)

    async def forget_snippet(self, owner_id: UUID, snippet_id: UUID) -> None:
        await self._forget([snippet_key(snippet_id), list_key(owner_id)])

    async def forget_list(self, owner_id: UUID) -> None:
        await self._forget([list_key(owner_id)])

    async def close(self) -> None:
        await self._redis.aclose()

    async def _read(self, key: str, decode: Callable[[str | bytes], T]) -> CacheRead[T]:
        raw: list[Any] | None = await self._call(
            lambda: self._redis.mget(key, generation_key(key)), None
        )
        if raw is None:
            return CacheRead(None, CacheTicket(key, _NEVER_MATCHES))
        value, generation = raw
        return CacheRead(_decoded(decode, value), CacheTicket(key, _text(generation)))

    async def _write(self, key: str, value: str, ticket: CacheTicket) -> None:
        if ticket.key != key or ticket.generation == _NEVER_MATCHES:
            return
        expected = ticket.generation or ""
        await self._call(
            lambda: self._put_if_unchanged(
                keys=[key, generation_key(key)], args=[expected, value, self._ttl]
            ),
            None,
        )

    async def _forget(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not await self._call(lambda: self._bump_and_drop(keys), False):
            self._remember_forgets(keys)

    async def _bump_and_drop(self, keys: Iterable[str]) -> bool:
        pairs = [name for key in keys for name in (key, generation_key(key))]
        await self._bump_and_drop_script(keys=pairs, args=[GENERATION_TTL_SECONDS])
        return True

    def _remember_forgets(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._pending_forgets[key] = None
        while len(self._pending_forgets) > MAX_PENDING_INVALIDATIONS:
            del self._pending_forgets[next(iter(self._pending_forgets))]

    async def _call(self, operation: Callable[[], Awaitable[Any]], fallback: Any) -> Any:
        if not self._breaker.allows_call():
            return fallback
        try:
            if self._pending_forgets:
                pending = list(self._pending_forgets)
                await self._bump_and_drop(pending)
                for key in pending:
                    self._pending_forgets.pop(key, None)
            result = await operation()
        except (RedisError, OSError, TimeoutError) as error:
            self._breaker.record_failure(error)
            return fallback
        self._breaker.record_success()
        return result


# In-process ---------------------------------------------------------------------------------


class MemorySnippetCache:
    """The cache of a single process (the embedded default): an LRU with expiry.

    Generations are epochs: every forget advances one counter and stamps the keys it drops. A
    ticket carries the epoch it was taken at, and a put stores only if its key was not stamped
    later. Stamps are bounded too; forgetting an old stamp raises a floor that every unknown
    key is assumed to have been stamped at, which errs on the side of not storing.
    """

    LIST_LIMIT = LIST_LIMIT
    backend = "memory"

    def __init__(
        self,
        ttl_seconds: int,
        max_entries: int = MEMORY_MAX_ENTRIES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._epoch = 0
        self._stamps: OrderedDict[str, int] = OrderedDict()
        self._stamp_floor = 0

    async def get_snippet(self, snippet_id: UUID) -> CacheRead[Snippet]:
        return self._read(snippet_key(snippet_id))

    async def put_snippet(self, snippet: Snippet, ticket: CacheTicket) -> None:
        if ticket.key in (snippet_key(snippet.id), list_key(snippet.owner_id)) and self._write(
            snippet_key(snippet.id), snippet, ticket
        ):
            self._set(ref_key(snippet.owner_id, snippet.ref), snippet.id)

    async def get_by_ref(self, owner_id: UUID, ref: int) -> CacheRead[Snippet]:
        snippet_id: UUID | None = self._get(ref_key(owner_id, ref))
        if snippet_id is None:
            return CacheRead(None, CacheTicket(list_key(owner_id), str(self._epoch)))
        return self._read(snippet_key(snippet_id))

    async def get_list(self, owner_id: UUID) -> CacheRead[CachedList]:
        return self._read(list_key(owner_id))

    async def put_list(self, owner_id: UUID, value: CachedList, ticket: CacheTicket) -> None:
        if ticket.key == list_key(owner_id):
            self._write(list_key(owner_id), value, ticket)

    async def forget_snippet(self, owner_id: UUID, snippet_id: UUID) -> None:
        self._forget(snippet_key(snippet_id), list_key(owner_id))

    async def forget_list(self, owner_id: UUID) -> None:
        self._forget(list_key(owner_id))

    async def close(self) -> None:
        self._values.clear()

    def _read(self, key: str) -> CacheRead[Any]:
        return CacheRead(self._get(key), CacheTicket(key, str(self._epoch)))

    def _write(self, key: str, value: Any, ticket: CacheTicket) -> bool:
        """Stores under `key` unless the ticket's key was forgotten after it was taken (the
        caller checks that the ticket's key guards `key`)."""
        if not (ticket.generation or "").isdigit():
            return False
        if self._stamps.get(ticket.key, self._stamp_floor) > int(ticket.generation or 0):
            return False  # forgotten after the ticket was taken
        self._set(key, value)
        return True

    def _forget(self, *keys: str) -> None:
        self._epoch += 1
        for key in keys:
            self._values.pop(key, None)
            self._stamps[key] = self._epoch
            self._stamps.move_to_end(key)
        while len(self._stamps) > self._max_entries:
            _, stamp = self._stamps.popitem(last=False)
            self._stamp_floor = max(self._stamp_floor, stamp)

    def _get(self, key: str) -> Any:
        entry = self._values.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._values[key]
            return None
        self._values.move_to_end(key)
        return value

    def _set(self, key: str, value: Any) -> None:
        self._values[key] = (self._clock() + self._ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self._max_entries:
            self._values.popitem(last=False)
