"""Cache races: thousands of concurrent reads, edits and deletes over a few snippets, with
deliberately slow database reads, never serve an edited or deleted snippet's old state.

A read that starts after an edit (or delete) returned must see that edit (or "not found"), even
though slow readers that fetched the old row before the edit keep trying to cache it afterwards.
The real `SnippetService`, PostgreSQL and Redis; only the database reads are slowed down.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

import pytest

from core.entities import Page, Snippet, SnippetSummary, User
from core.errors import NotFound
from core.ports import SnippetRepository, UnitOfWork, UnitOfWorkFactory, utc_now
from core.snippets import SnippetService
from storage.cache import RedisSnippetCache, connect_redis
from storage.database import Database

if TYPE_CHECKING:
    from tests.conftest import ThrowawayRedis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

OPERATIONS = 3_000
"""Enough to race: with the cache's compare-and-set replaced by a plain SET, 2,000 operations
already serve over a hundred stale reads."""
CONCURRENCY = 24
"""Operations in flight at once (the pool has 15 connections; slow readers hold one each)."""
SLOTS = 4
"""Snippets alive at any time; a deleted one is replaced by a new one."""
MAX_READ_DELAY = 0.004
"""Seconds a database read may be held back after it returned its rows."""
SEED = 20250105
_VERSION = re.compile(r"^# version (\d+)$", re.MULTILINE)


def code_of(version: int) -> str:
    return f"# version {version}\nprint({version})"


def version_of(snippet: Snippet) -> int:
    found = _VERSION.search(snippet.code)
    assert found is not None, snippet.code
    return int(found.group(1))


# Slow database reads --------------------------------------------------------------------------


class SlowSnippetReads:
    """The real repository; reads hand their (by then possibly old) rows back late."""

    def __init__(self, inner: SnippetRepository, rng: random.Random) -> None:
        self._inner = inner
        self._rng = rng

    async def _late(self) -> None:
        await asyncio.sleep(self._rng.uniform(0, MAX_READ_DELAY))

    async def get(self, snippet_id: UUID) -> Snippet | None:
        found = await self._inner.get(snippet_id)
        await self._late()
        return found

    async def get_by_ref(self, owner_id: UUID, ref: int) -> Snippet | None:
        found = await self._inner.get_by_ref(owner_id, ref)
        await self._late()
        return found

    async def list(self, owner_id: UUID, offset: int, limit: int) -> Page[SnippetSummary]:
        page = await self._inner.list(owner_id, offset, limit)
        await self._late()
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SlowReadsUnitOfWork:
    def __init__(self, inner: UnitOfWork, rng: random.Random) -> None:
        self._inner = inner
        self._rng = rng

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.snippets = SlowSnippetReads(self._inner.snippets, self._rng)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def with_slow_reads(factory: UnitOfWorkFactory, rng: random.Random) -> UnitOfWorkFactory:
    def new_unit_of_work() -> UnitOfWork:
        return SlowReadsUnitOfWork(factory(), rng)  # type: ignore[return-value]

    return new_unit_of_work


# What the readers may see -----------------------------------------------------------------------


@dataclass
class RefState:
    """One snippet, as the writers left it. Writers of one slot take turns; readers do not."""

    snippet_id: UUID
    completed: int = 0
    """The newest version whose edit returned: reads starting later must see it or newer."""
    started: int = 0
    """The newest version any edit began writing: nobody can see a newer one."""
    deleting: bool = False
    deleted: bool = False
    """The delete returned: reads starting later must find nothing."""


@dataclass
class Slot:
    ref: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Race:
    service: SnippetService
    owner: User
    rng: random.Random
    refs: dict[int, RefState] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    overlapping_reads: int = 0
    """Reads during which a write to the same snippet returned: the races the test is about."""

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def create(self) -> int:
        saved = await self.service.create(self.owner, "raced", code_of(0))
        self.refs[saved.snippet.ref] = RefState(saved.snippet.id)
        return saved.snippet.ref

    async def read(self) -> None:
        slot_ref = self.rng.choice(self.slots).ref
        ref = slot_ref if self.rng.random() < 0.85 else self.rng.choice(list(self.refs))
        state = self.refs[ref]
        seen, deleted_before = state.completed, state.deleted
        try:
            snippet = (await self.service.get(self.owner, ref)).snippet
        except NotFound:
            self.count("get: not found")
            if not state.deleting:
                self.stale.append(f"#{ref} not found, though never deleted")
            return
        self.count("get")
        version = version_of(snippet)
        if state.completed != seen or state.deleted != deleted_before:
            self.overlapping_reads += 1
        if snippet.id != state.snippet_id or snippet.ref != ref:
            self.stale.append(f"#{ref}: another snippet served ({snippet.id})")
        elif deleted_before:
            self.stale.append(f"#{ref}: served after its delete returned (version {version})")
        elif version < seen:
            self.stale.append(f"#{ref}: version {version} served after {seen} was saved")
        elif version > state.started:
            self.stale.append(f"#{ref}: version {version} was never written")

    async def list(self) -> None:
        gone = {ref for ref, state in self.refs.items() if state.deleted}
        present = {ref for ref, state in self.refs.items() if not state.deleting}
        page = await self.service.list(self.owner, 0, 50)
        self.count("list")
        listed = {item.ref for item in page.items}
        if listed & gone:
            self.stale.append(f"list shows deleted {sorted(listed & gone)}")
        # A snippet whose delete began meanwhile may or may not be listed.
        missing = {ref for ref in present - listed if not self.refs[ref].deleting}
        if missing:
            self.stale.append(f"list misses created {sorted(missing)}")

    async def edit(self) -> None:
        slot = self.rng.choice(self.slots)
        async with slot.lock:
            state = self.refs[slot.ref]
            state.started += 1
            await self.service.edit(self.owner, slot.ref, code_of(state.started))
            state.completed = state.started
        self.count("edit")

    async def delete(self) -> None:
        slot = self.rng.choice(self.slots)
        async with slot.lock:
            state = self.refs[slot.ref]
            state.deleting = True
            await self.service.delete(self.owner, slot.ref)
            state.deleted = True
            slot.ref = await self.create()
        self.count("delete")

    async def one(self) -> None:
        roll = self.rng.random()
        if roll < 0.65:
            await self.read()
        elif roll < 0.75:
            await self.list()
        elif roll < 0.95:
            await self.edit()
        else:
            await self.delete()


@pytest.fixture
async def race_database(fresh_postgres_url: str) -> Any:
    database = Database(fresh_postgres_url)
    yield database
    await database.dispose()


@pytest.fixture
async def redis_cache(throwaway_redis: ThrowawayRedis) -> Any:
    cache = RedisSnippetCache(connect_redis(throwaway_redis.url, timeout=5), 300)
    yield cache
    await cache.close()


async def test_no_stale_reads_under_concurrent_gets_edits_and_deletes(
    race_database: Database, redis_cache: RedisSnippetCache
) -> None:
    database = race_database
    rng = random.Random(SEED)
    owner = User(
        id=uuid.uuid4(),
        email=f"racer-{uuid.uuid4().hex[:8]}@example.com",
        hashed_password="$2b$04$" + "x" * 53,
        is_verified=False,  # no emails: only the cache and the database are exercised
        created_at=datetime.now(UTC),
    )
    async with database.uow_factory()() as uow:
        await uow.users.add(owner)
        await uow.commit()
    service = SnippetService(
        with_slow_reads(database.uow_factory(), rng), redis_cache, utc_now, 524288
    )
    race = Race(service, owner, rng)
    race.slots = [Slot(await race.create()) for _ in range(SLOTS)]

    remaining = OPERATIONS

    async def runner() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await race.one()

    started = time.monotonic()
    async with asyncio.timeout(240):
        await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))
    took = time.monotonic() - started

    assert race.stale == [], f"{len(race.stale)} stale reads, e.g. {race.stale[:5]}"
    assert sum(race.counts.values()) == OPERATIONS
    deletes, edits = race.counts.get("delete", 0), race.counts.get("edit", 0)
    assert deletes >= OPERATIONS // 100 and edits >= OPERATIONS // 10, race.counts
    # The run must really race: many reads overlapped a write to their snippet.
    assert race.overlapping_reads >= OPERATIONS // 50, (race.overlapping_reads, race.counts, took)
