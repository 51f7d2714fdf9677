"""The fakes keep the promises of `core.ports`, or the use-case tests prove nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from core.entities import (
    ChatFlow,
    Client,
    ClientKind,
    OneTimeToken,
    Session,
    Snippet,
    TokenPurpose,
    User,
)
from core.errors import EmailTaken, FlowConflict
from core.ports import CachedList, UnitOfWorkFactory

from .fakes import FakeClock, FakeDatabase, FakeSnippetCache, add_user

DAY = timedelta(days=1)


def _user(email: str, clock: FakeClock) -> User:
    return User(uuid.uuid4(), email, "!", False, clock())


def _snippet(owner: User, ref: int, clock: FakeClock, title: str = "t") -> Snippet:
    now = clock()
    return Snippet(uuid.uuid4(), owner.id, ref, title, "code", "Text", now, now)


async def test_unit_of_work_factory_matches_the_port(db: FakeDatabase) -> None:
    factory: UnitOfWorkFactory = db.unit_of_work
    async with factory() as uow:
        assert await uow.users.get(uuid.uuid4()) is None


async def test_commit_makes_changes_visible(db: FakeDatabase, clock: FakeClock) -> None:
    user = _user("ada@example.com", clock)
    async with db.unit_of_work() as uow:
        await uow.users.add(user)
        assert await uow.users.get(user.id) == user  # read-your-writes
        async with db.unit_of_work() as other:
            assert await other.users.get(user.id) is None  # not yet committed
        await uow.commit()
    async with db.unit_of_work() as uow:
        assert await uow.users.get(user.id) == user


async def test_exit_without_commit_discards_changes(db: FakeDatabase, clock: FakeClock) -> None:
    user = _user("ada@example.com", clock)
    async with db.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.attempts.add("k", clock())
    async with db.unit_of_work() as uow:
        assert await uow.users.get(user.id) is None
        assert await uow.attempts.count_since("k", clock() - timedelta(hours=1)) == 0
    assert db.commits == 0


async def test_exception_rolls_back(db: FakeDatabase, clock: FakeClock) -> None:
    user = _user("ada@example.com", clock)

    async def fail_inside() -> None:
        async with db.unit_of_work() as uow:
            await uow.users.add(user)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await fail_inside()
    assert db.user_by_email("ada@example.com") is None


async def test_rollback_then_commit_keeps_only_later_changes(
    db: FakeDatabase, clock: FakeClock
) -> None:
    first, second = _user("a@example.com", clock), _user("b@example.com", clock)
    async with db.unit_of_work() as uow:
        await uow.users.add(first)
        await uow.rollback()
        await uow.users.add(second)
        await uow.commit()
    assert db.user_by_email("a@example.com") is None
    assert db.user_by_email("b@example.com") == second


async def test_autocommit_commits_each_change_and_reads_the_latest_commit(
    db: FakeDatabase, clock: FakeClock
) -> None:
    first, second = _user("a@example.com", clock), _user("b@example.com", clock)
    async with db.unit_of_work() as uow:
        await uow.autocommit()
        await uow.users.add(first)
        assert db.user_by_email("a@example.com") == first  # committed at once
        async with db.unit_of_work() as other:
            await other.users.add(second)
            await other.commit()
        assert await uow.users.get(second.id) == second  # no snapshot: each read is fresh
        await uow.rollback()  # nothing to undo
    assert db.user_by_email("a@example.com") == first
    assert db.commits == 2


async def test_autocommit_must_come_before_the_first_change(
    db: FakeDatabase, clock: FakeClock
) -> None:
    async with db.unit_of_work() as uow:
        await uow.users.add(_user("a@example.com", clock))
        with pytest.raises(RuntimeError):
            await uow.autocommit()


async def test_autocommit_change_that_fails_leaves_nothing(
    db: FakeDatabase, clock: FakeClock
) -> None:
    await add_user(db, "a@example.com")
    async with db.unit_of_work() as uow:
        await uow.autocommit()
        with pytest.raises(EmailTaken):
            await uow.users.add(_user("A@example.com", clock))
    assert len(db.committed.users) == 1


async def test_duplicate_email_is_email_taken_case_insensitively(
    db: FakeDatabase, clock: FakeClock
) -> None:
    await add_user(db, "ada@example.com")
    async with db.unit_of_work() as uow:
        with pytest.raises(EmailTaken):
            await uow.users.add(_user("ADA@example.com", clock))
        assert (await uow.users.get_by_email("ada@EXAMPLE.com")) is not None


async def test_concurrent_signup_of_same_email_fails_at_insert(
    db: FakeDatabase, clock: FakeClock
) -> None:
    async with db.unit_of_work() as slow:
        await add_user(db, "ada@example.com")  # another transaction commits meanwhile
        assert await slow.users.get_by_email("ada@example.com") is None  # snapshot
        with pytest.raises(EmailTaken):
            await slow.users.add(_user("ada@example.com", clock))


async def test_snippet_refs_count_per_user_and_a_rollback_gives_them_back(
    db: FakeDatabase,
) -> None:
    ada, bob = await add_user(db, "ada@example.com"), await add_user(db, "bob@example.com")
    async with db.unit_of_work() as uow:
        assert [await uow.users.next_snippet_ref(ada.id) for _ in range(3)] == [1, 2, 3]
        assert await uow.users.next_snippet_ref(bob.id) == 1
        await uow.commit()
    async with db.unit_of_work() as uow:
        assert await uow.users.next_snippet_ref(ada.id) == 4  # rolled back below
    async with db.unit_of_work() as uow:
        assert await uow.users.next_snippet_ref(ada.id) == 4


async def test_snippet_refs_are_atomic_across_concurrent_transactions(db: FakeDatabase) -> None:
    ada = await add_user(db, "ada@example.com")

    async def take() -> int:
        async with db.unit_of_work() as uow:
            ref = await uow.users.next_snippet_ref(ada.id)
            await asyncio.sleep(0)  # let the others run while the row is held
            await uow.commit()
            return ref

    refs = await asyncio.gather(*(take() for _ in range(10)))
    assert sorted(refs) == list(range(1, 11))


async def test_flow_save_checks_versions(db: FakeDatabase, clock: FakeClock) -> None:
    async with db.unit_of_work() as uow:
        started = await uow.flows.save(ChatFlow(7, "login", "email"))
        await uow.commit()
    assert started.version == 1
    async with db.unit_of_work() as uow:
        moved = await uow.flows.save(ChatFlow(7, "login", "password", {"e": "x"}, version=1))
        await uow.commit()
    assert moved.version == 2
    async with db.unit_of_work() as uow:
        with pytest.raises(FlowConflict):
            await uow.flows.save(ChatFlow(7, "login", "password", version=1))  # stale
        with pytest.raises(FlowConflict):
            await uow.flows.save(ChatFlow(7, "signup", "email"))  # a live flow exists
        stored = await uow.flows.get(7)
    assert stored is not None
    assert (stored.step, stored.data, stored.version) == ("password", {"e": "x"}, 2)


async def test_flow_conflict_from_a_concurrent_commit(db: FakeDatabase) -> None:
    async with db.unit_of_work() as uow:
        await uow.flows.save(ChatFlow(7, "login", "email"))
        await uow.commit()
    async with db.unit_of_work() as first, db.unit_of_work() as second:
        await first.flows.save(ChatFlow(7, "login", "password", version=1))
        await first.commit()
        with pytest.raises(FlowConflict):
            await second.flows.save(ChatFlow(7, "login", "password", version=1))


async def test_expired_flow_is_gone_and_gives_way(db: FakeDatabase, clock: FakeClock) -> None:
    async with db.unit_of_work() as uow:
        await uow.flows.save(ChatFlow(7, "login", "email", expires_at=clock() + timedelta(1)))
        await uow.commit()
    clock.advance(days=2)
    async with db.unit_of_work() as uow:
        assert await uow.flows.get(7) is None
        restarted = await uow.flows.save(ChatFlow(7, "signup", "email"))
        await uow.flows.delete(8)  # deleting nothing is fine
        await uow.commit()
    assert restarted.version == 1


async def test_sessions_latest_for_client_skips_revoked(db: FakeDatabase, clock: FakeClock) -> None:
    user = await add_user(db, "ada@example.com")
    now, chat = clock(), Client.chat(1)
    async with db.unit_of_work() as uow:
        for jti in ("a", "b"):
            await uow.sessions.add(Session(jti, user.id, chat.kind, "1", "t", now, now + DAY))
        await uow.sessions.add(Session("c", user.id, ClientKind.API, None, "t", now, now + DAY))
        latest = await uow.sessions.latest_for_client(chat)
        assert latest is not None
        assert (latest.session.jti, latest.user) == ("b", user)
        assert await uow.sessions.latest_for_client(Client.chat(2)) is None
        assert await uow.sessions.latest_for_client(Client.api("10.0.0.1")) is None
        await uow.sessions.revoke("b", now)
        latest = await uow.sessions.latest_for_client(chat)
        assert latest is not None
        assert latest.session.jti == "a"
        await uow.sessions.revoke_user(user.id, now)
        assert await uow.sessions.latest_for_client(chat) is None


async def test_token_counts_and_use_all(db: FakeDatabase, clock: FakeClock) -> None:

    user = await add_user(db, "ada@example.com")
    now = clock()
    later = now + timedelta(hours=1)
    async with db.unit_of_work() as uow:
        for name in ("x", "y"):
            await uow.tokens.add(OneTimeToken(name, user.id, TokenPurpose.VERIFY_EMAIL, now, later))
        await uow.tokens.use_all(user.id, TokenPurpose.VERIFY_EMAIL, now)
        token = await uow.tokens.get("x")
        assert token is not None
        assert token.used_at == now
        assert await uow.tokens.count_since(user.id, TokenPurpose.VERIFY_EMAIL, now) == 2
        assert await uow.tokens.count_since(user.id, TokenPurpose.RESET_PASSWORD, now) == 0
        assert await uow.tokens.count_since(user.id, TokenPurpose.VERIFY_EMAIL, later) == 0


async def test_list_is_newest_first_and_search_ignores_case(
    db: FakeDatabase, clock: FakeClock
) -> None:
    user = await add_user(db, "ada@example.com")
    async with db.unit_of_work() as uow:
        for ref in (1, 2, 3):
            await uow.snippets.add(_snippet(user, ref, clock, title=f"Sort {ref}"))
            clock.advance(seconds=1)
        await uow.commit()
    async with db.unit_of_work() as uow:
        page = await uow.snippets.list(user.id, 0, 2)
        found = await uow.snippets.search(user.id, "SORT 2", 0, 10)
    assert [s.ref for s in page.items] == [3, 2]
    assert (page.total, page.has_next, page.has_previous) == (3, True, False)
    assert [s.ref for s in found.items] == [2]


# -- cache --------------------------------------------------------------------------------


async def test_cache_put_with_a_fresh_ticket_stores(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    snippet = _snippet(_user("a@example.com", clock), 1, clock)
    read = await cache.get_snippet(snippet.id)
    assert read.value is None
    await cache.put_snippet(snippet, read.ticket)
    assert (await cache.get_snippet(snippet.id)).value == snippet


async def test_cache_put_after_forget_with_an_old_ticket_is_refused(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    read = await cache.get_snippet(snippet.id)
    list_read = await cache.get_list(owner.id)
    await cache.forget_snippet(owner.id, snippet.id)
    await cache.put_snippet(snippet, read.ticket)
    await cache.put_list(owner.id, CachedList((), 0), list_read.ticket)
    assert (await cache.get_snippet(snippet.id)).value is None
    assert (await cache.get_list(owner.id)).value is None
    # A reader that starts after the forget may store again.
    fresh = await cache.get_snippet(snippet.id)
    await cache.put_snippet(snippet, fresh.ticket)
    assert (await cache.get_snippet(snippet.id)).value == snippet


async def test_cache_forget_list_invalidates_list_tickets_only(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    snippet_read = await cache.get_snippet(snippet.id)
    list_read = await cache.get_list(owner.id)
    await cache.forget_list(owner.id)
    await cache.put_list(owner.id, CachedList((), 0), list_read.ticket)
    await cache.put_snippet(snippet, snippet_read.ticket)
    assert (await cache.get_list(owner.id)).value is None
    assert (await cache.get_snippet(snippet.id)).value == snippet


async def test_cache_ticket_of_another_key_is_refused(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner, other = _user("a@example.com", clock), _user("b@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    for wrong in (
        (await cache.get_list(other.id)).ticket,
        (await cache.get_snippet(_snippet(owner, 2, clock).id)).ticket,
    ):
        await cache.put_snippet(snippet, wrong)
    assert (await cache.get_snippet(snippet.id)).value is None
    wrong_list = (await cache.get_snippet(snippet.id)).ticket
    await cache.put_list(owner.id, CachedList((), 0), wrong_list)
    assert (await cache.get_list(owner.id)).value is None


async def test_cache_first_read_by_ref_fills_the_snippet(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    first = await cache.get_by_ref(owner.id, 1)  # unknown ref: the ticket is the list's
    assert first.value is None
    await cache.put_snippet(snippet, first.ticket)
    assert (await cache.get_by_ref(owner.id, 1)).value == snippet
    assert (await cache.get_snippet(snippet.id)).value == snippet


async def test_cache_first_read_racing_an_edit_stores_nothing(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    first = await cache.get_by_ref(owner.id, 1)  # then the slow reader reads the database
    await cache.forget_snippet(owner.id, snippet.id)  # an edit commits meanwhile
    await cache.put_snippet(snippet, first.ticket)  # the old row must not be stored
    assert (await cache.get_snippet(snippet.id)).value is None
    assert (await cache.get_by_ref(owner.id, 1)).value is None


async def test_cache_entries_expire(clock: FakeClock) -> None:
    cache = FakeSnippetCache(clock=clock, ttl=timedelta(minutes=5))
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    assert (await cache.get_by_ref(owner.id, 1)) == await cache.get_snippet(snippet.id)
    clock.advance(minutes=5)
    assert (await cache.get_snippet(snippet.id)).value is None
    assert (await cache.get_by_ref(owner.id, 1)).value is None


async def test_cache_down_misses_and_ignores_writes(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    cache.down = True
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    await cache.forget_snippet(owner.id, snippet.id)
    cache.down = False
    assert (await cache.get_snippet(snippet.id)).value is None
    assert (await cache.get_by_ref(owner.id, 1)).value is None


async def test_cache_by_ref_reads_the_snippet_behind_a_known_ref(clock: FakeClock) -> None:
    cache = FakeSnippetCache()
    owner = _user("a@example.com", clock)
    snippet = _snippet(owner, 1, clock)
    assert (await cache.get_by_ref(owner.id, 1)).value is None  # unknown ref
    await cache.put_snippet(snippet, (await cache.get_snippet(snippet.id)).ticket)
    await cache.forget_snippet(owner.id, snippet.id)  # the ref stays known
    miss = await cache.get_by_ref(owner.id, 1)
    assert miss.value is None
    assert miss.ticket.key == FakeSnippetCache.snippet_key(snippet.id)
    await cache.put_snippet(snippet, miss.ticket)  # its ticket is the snippet key's
    hit = await cache.get_by_ref(owner.id, 1)
    assert hit.value == snippet
