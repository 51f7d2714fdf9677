"""Snippet caches, Redis and in-process, held to the same behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from storage_builders import new_snippet, new_user

from core.entities import Snippet, SnippetSummary
from core.ports import CachedList, CacheTicket
from storage.cache import (
    ManagedSnippetCache,
    MemorySnippetCache,
    RedisSnippetCache,
    connect_redis,
)

TTL_SECONDS = 300


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[ManagedSnippetCache]:
    cache: ManagedSnippetCache
    if request.param == "memory":
        cache = MemorySnippetCache(TTL_SECONDS, max_entries=100)
    else:
        cache = RedisSnippetCache(connect_redis(request.getfixturevalue("redis_url")), TTL_SECONDS)
    yield cache
    await cache.close()


def _snippet() -> Snippet:
    return new_snippet(new_user(), 1, title="Ünïcode ✓", code="print('héllo')\n\tdone")


def _list_of(*snippets: Snippet) -> CachedList:
    return CachedList(
        items=tuple(
            SnippetSummary(s.id, s.ref, s.title, s.language, s.created_at) for s in snippets
        ),
        total=len(snippets),
    )


async def test_a_snippet_is_missed_then_put_then_hit(cache: ManagedSnippetCache) -> None:
    snippet = _snippet()

    miss = await cache.get_snippet(snippet.id)
    await cache.put_snippet(snippet, miss.ticket)
    hit = await cache.get_snippet(snippet.id)

    assert miss.value is None
    assert miss.ticket.key == f"snippet:{snippet.id}"
    assert hit.value == snippet
    assert hit.value.created_at.utcoffset() == timedelta(0)


async def test_a_list_is_missed_then_put_then_hit(cache: ManagedSnippetCache) -> None:
    owner = new_user()
    value = _list_of(new_snippet(owner, 2), new_snippet(owner, 1))

    miss = await cache.get_list(owner.id)
    await cache.put_list(owner.id, value, miss.ticket)

    assert miss.value is None
    assert miss.ticket.key == f"user:{owner.id}:snippets"
    assert (await cache.get_list(owner.id)).value == value


async def test_refs_map_to_snippets_in_one_read(cache: ManagedSnippetCache) -> None:
    owner = new_user()
    snippet = new_snippet(owner, 3)

    first = await cache.get_by_ref(owner.id, 3)  # an unknown ref: the list's ticket
    assert first.value is None
    assert first.ticket.key == f"user:{owner.id}:snippets"
    await cache.put_snippet(snippet, first.ticket)  # the first read fills snippet:<id>
    hit = await cache.get_by_ref(owner.id, 3)
    assert hit.value == snippet
    assert (await cache.get_snippet(snippet.id)).value == snippet

    await cache.forget_snippet(owner.id, snippet.id)
    miss = await cache.get_by_ref(owner.id, 3)  # a known ref: the snippet's own ticket
    assert miss.value is None
    assert miss.ticket == (await cache.get_snippet(snippet.id)).ticket
    assert (await cache.get_by_ref(owner.id, 4)).value is None
    assert (await cache.get_by_ref(new_user().id, 3)).value is None


@pytest.mark.parametrize("known_ref", [True, False], ids=["ref-cached", "first-read"])
async def test_a_ref_read_before_a_forget_cannot_store(
    cache: ManagedSnippetCache, known_ref: bool
) -> None:
    owner = new_user()
    snippet = new_snippet(owner, 1)
    if known_ref:
        await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
        await cache.forget_snippet(owner.id, snippet.id)
    slow_read = await cache.get_by_ref(owner.id, 1)  # misses, then reads the database
    await cache.forget_snippet(owner.id, snippet.id)  # an edit commits and forgets

    await cache.put_snippet(snippet, slow_read.ticket)

    assert (await cache.get_by_ref(owner.id, 1)).value is None
    assert (await cache.get_snippet(snippet.id)).value is None


async def test_a_ticket_of_another_owners_list_cannot_store(cache: ManagedSnippetCache) -> None:
    owner = new_user()
    snippet = new_snippet(owner, 1)
    foreign = await cache.get_by_ref(new_user().id, 1)
    await cache.put_snippet(snippet, foreign.ticket)
    assert (await cache.get_snippet(snippet.id)).value is None


async def test_forget_snippet_drops_the_snippet_and_the_owners_list(
    cache: ManagedSnippetCache,
) -> None:
    owner = new_user()
    snippet, other = new_snippet(owner, 1), new_snippet(owner, 2)
    for item in (snippet, other):
        await cache.put_snippet(item, (await cache.get_snippet(item.id)).ticket)
    await cache.put_list(owner.id, _list_of(snippet), (await cache.get_list(owner.id)).ticket)

    await cache.forget_snippet(owner.id, snippet.id)

    assert (await cache.get_snippet(snippet.id)).value is None
    assert (await cache.get_list(owner.id)).value is None
    assert (await cache.get_snippet(other.id)).value == other


async def test_forget_list_keeps_the_snippets(cache: ManagedSnippetCache) -> None:
    owner = new_user()
    snippet = new_snippet(owner, 1)
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    await cache.put_list(owner.id, _list_of(snippet), (await cache.get_list(owner.id)).ticket)

    await cache.forget_list(owner.id)

    assert (await cache.get_list(owner.id)).value is None
    assert (await cache.get_snippet(snippet.id)).value == snippet


async def test_a_reader_that_started_before_an_edit_cannot_store_the_old_snippet(
    cache: ManagedSnippetCache,
) -> None:
    old = _snippet()
    edited = replace(old, code="print('edited')")

    slow_read = await cache.get_snippet(old.id)  # 1. reader misses, then reads `old` from the db
    await cache.forget_snippet(old.owner_id, old.id)  # 2. writer commits the edit and forgets
    await cache.put_snippet(old, slow_read.ticket)  # 3. reader, late, tries to cache `old`

    fresh_read = await cache.get_snippet(old.id)
    assert fresh_read.value is None
    await cache.put_snippet(edited, fresh_read.ticket)  # a read after the edit may cache it
    assert (await cache.get_snippet(old.id)).value == edited


async def test_a_reader_that_started_before_a_change_cannot_store_the_old_list(
    cache: ManagedSnippetCache,
) -> None:
    owner = new_user()
    first = new_snippet(owner, 1)
    before = _list_of(first)

    slow_read = await cache.get_list(owner.id)
    await cache.forget_list(owner.id)  # a snippet was created meanwhile
    await cache.put_list(owner.id, before, slow_read.ticket)

    assert (await cache.get_list(owner.id)).value is None


async def test_a_forgotten_hit_cannot_be_put_back_with_its_old_ticket(
    cache: ManagedSnippetCache,
) -> None:
    snippet = _snippet()
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    stale = await cache.get_snippet(snippet.id)
    await cache.forget_snippet(snippet.owner_id, snippet.id)

    await cache.put_snippet(snippet, stale.ticket)

    assert (await cache.get_snippet(snippet.id)).value is None


async def test_a_ticket_for_another_key_stores_nothing(cache: ManagedSnippetCache) -> None:
    snippet, other = _snippet(), _snippet()
    other_ticket = (await cache.get_snippet(other.id)).ticket

    await cache.put_snippet(snippet, other_ticket)
    await cache.put_snippet(snippet, CacheTicket(f"snippet:{snippet.id}", "not-a-generation"))

    assert (await cache.get_snippet(snippet.id)).value is None


async def test_memory_entries_expire_after_the_ttl() -> None:
    now = [1000.0]
    cache = MemorySnippetCache(ttl_seconds=10, clock=lambda: now[0])
    snippet = _snippet()
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)

    now[0] += 9.9
    assert (await cache.get_snippet(snippet.id)).value == snippet
    now[0] += 0.2
    assert (await cache.get_snippet(snippet.id)).value is None
    assert (await cache.get_by_ref(snippet.owner_id, 1)).value is None


async def test_memory_keeps_at_most_max_entries_dropping_the_least_recently_used() -> None:
    # Each snippet takes two entries: itself and its owner's ref to it.
    cache = MemorySnippetCache(ttl_seconds=60, max_entries=6)
    snippets = [_snippet() for _ in range(4)]
    for snippet in snippets[:3]:
        await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    await cache.get_snippet(snippets[0].id)  # used: now the newest

    await cache.put_snippet(snippets[3], (await cache.get_snippet(snippets[3].id)).ticket)

    present = [(await cache.get_snippet(s.id)).value is not None for s in snippets]
    assert present == [True, False, True, True]


async def test_memory_stays_race_free_after_forgetting_many_keys() -> None:
    cache = MemorySnippetCache(ttl_seconds=60, max_entries=2)
    snippet = _snippet()
    slow_read = await cache.get_snippet(snippet.id)
    await cache.forget_snippet(snippet.owner_id, snippet.id)
    for _ in range(5):  # pushes the stamp of the forget above out of memory
        await cache.forget_list(new_user().id)

    await cache.put_snippet(snippet, slow_read.ticket)

    assert (await cache.get_snippet(snippet.id)).value is None


@pytest.mark.redis
async def test_redis_uses_the_contract_keys_with_the_configured_ttl(redis_url: str) -> None:
    cache = RedisSnippetCache(connect_redis(redis_url), ttl_seconds=120)
    client = aioredis.Redis.from_url(redis_url)
    try:
        owner = new_user()
        snippet = new_snippet(owner, 1)
        await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
        await cache.put_list(owner.id, _list_of(snippet), (await cache.get_list(owner.id)).ticket)

        for key in (f"snippet:{snippet.id}", f"user:{owner.id}:snippets"):
            assert 0 < await client.ttl(key) <= 120
    finally:
        await client.aclose()
        await cache.close()


@pytest.mark.redis
async def test_redis_entries_expire_after_the_ttl(redis_url: str) -> None:
    cache = RedisSnippetCache(connect_redis(redis_url), ttl_seconds=1)
    try:
        snippet = _snippet()
        await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
        assert (await cache.get_snippet(snippet.id)).value == snippet

        await _sleep_until_expired(cache, snippet)
    finally:
        await cache.close()


async def _sleep_until_expired(cache: RedisSnippetCache, snippet: Snippet) -> None:
    for _ in range(30):
        await asyncio.sleep(0.1)
        if (await cache.get_snippet(snippet.id)).value is None:
            return
    pytest.fail("the cached snippet outlived its TTL")


@pytest.mark.redis
async def test_two_processes_share_the_protocol(redis_url: str) -> None:
    reader = RedisSnippetCache(connect_redis(redis_url), TTL_SECONDS)
    writer = RedisSnippetCache(connect_redis(redis_url), TTL_SECONDS)
    try:
        old = _snippet()
        slow_read = await reader.get_snippet(old.id)
        await writer.forget_snippet(old.owner_id, old.id)
        await reader.put_snippet(old, slow_read.ticket)

        assert (await writer.get_snippet(old.id)).value is None
    finally:
        await reader.close()
        await writer.close()


@pytest.mark.redis
async def test_redis_serves_a_list_as_it_now_is_however_often_it_was_read(redis_url: str) -> None:
    reader = RedisSnippetCache(connect_redis(redis_url), TTL_SECONDS)
    writer = RedisSnippetCache(connect_redis(redis_url), TTL_SECONDS)
    client = aioredis.Redis.from_url(redis_url)
    try:
        owner = new_user()
        first, second = new_snippet(owner, 1), new_snippet(owner, 2)
        await writer.put_list(owner.id, _list_of(first), (await writer.get_list(owner.id)).ticket)
        read = (await reader.get_list(owner.id)).value
        again = (await reader.get_list(owner.id)).value
        assert read == _list_of(first)
        assert again is read  # an unchanged value is not decoded again

        # Another process changes the list: the next read serves the new one.
        await writer.forget_list(owner.id)
        await writer.put_list(
            owner.id, _list_of(second, first), (await writer.get_list(owner.id)).ticket
        )
        assert (await reader.get_list(owner.id)).value == _list_of(second, first)

        # A damaged value is a miss, even right after a good one was read.
        await client.set(
            f"user:{owner.id}:snippets", b'{"total": 1, "items": [{"id": "not-an-id"}]}'
        )
        assert (await reader.get_list(owner.id)).value is None
    finally:
        await client.aclose()
        await reader.close()
        await writer.close()
