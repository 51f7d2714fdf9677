"""Tags, soft deletes, kept versions and share links, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from storage_builders import T0, SaveUser, new_snippet, save_snippets

from core.entities import Revision, ShareLink
from core.organise import OrganiseService
from core.ports import UnitOfWorkFactory
from core.snippets import SnippetService
from storage.cache import MemorySnippetCache


async def test_tags_read_back_with_the_snippet_and_filter_lists(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner, other = await saved_user(), await saved_user()
    first = new_snippet(owner, 1, title="Sort", created_at=T0, updated_at=T0)
    second = new_snippet(owner, 2, title="Sum", created_at=T0 + timedelta(1), updated_at=T0)
    theirs = new_snippet(other, 1, title="Sort")
    await save_snippets(uow_factory, first, second, theirs)
    async with uow_factory() as uow:
        await uow.tags.set(owner.id, first.id, ("python", "sorting"))
        await uow.tags.set(owner.id, second.id, ("python",))
        await uow.tags.set(other.id, theirs.id, ("python",))
        await uow.commit()

    async with uow_factory() as uow:
        assert (await uow.snippets.get_by_ref(owner.id, 1)).tags == ("python", "sorting")  # type: ignore[union-attr]
        page = await uow.snippets.list(owner.id, 0, 10)
        assert [item.tags for item in page.items] == [("python",), ("python", "sorting")]
        assert (await uow.snippets.filter(owner.id, "sorting", None, 0, 10)).total == 1
        assert (await uow.snippets.filter(owner.id, "python", "sum", 0, 10)).total == 1
        assert (await uow.snippets.filter(owner.id, None, "#sorting", 0, 10)).total == 1
        assert await uow.tags.counts(owner.id) == [("python", 2), ("sorting", 1)]
        await uow.tags.set(owner.id, first.id, ())
        assert await uow.tags.counts(owner.id) == [("python", 1)]


async def test_a_soft_deleted_snippet_is_hidden_until_undeleted_or_purged(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    snippet = new_snippet(owner, 1, title="Doomed", code="needle")
    await save_snippets(uow_factory, snippet)
    async with uow_factory() as uow:
        await uow.tags.set(owner.id, snippet.id, ("kept",))
        await uow.snippets.soft_delete(snippet.id, T0)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.snippets.get(snippet.id) is None
        assert await uow.snippets.get_by_ref(owner.id, 1) is None
        assert (await uow.snippets.list(owner.id, 0, 10)).total == 0
        assert (await uow.snippets.search(owner.id, "needle", 0, 10)).total == 0
        assert await uow.snippets.all_of(owner.id) == []
        assert await uow.tags.counts(owner.id) == []
        assert await uow.snippets.get_deleted(owner.id, snippet.id, T0 + timedelta(1)) is None
        found = await uow.snippets.get_deleted(owner.id, snippet.id, T0)
        assert found is not None and found.tags == ("kept",)
        assert await uow.snippets.undelete(snippet.id) is True
        assert await uow.snippets.undelete(snippet.id) is False  # live already
        await uow.commit()

    async with uow_factory() as uow:
        assert (await uow.snippets.get(snippet.id)).tags == ("kept",)  # type: ignore[union-attr]
        await uow.snippets.soft_delete(snippet.id, T0)
        assert await uow.snippets.purge_deleted(T0) == 0
        assert await uow.snippets.purge_deleted(T0 + timedelta(seconds=1)) == 1
        assert await uow.snippets.undelete(snippet.id) is False  # the purge came first
        await uow.commit()
        assert await uow.snippets.get_deleted(owner.id, snippet.id, T0) is None


async def test_revisions_are_numbered_and_trimmed_to_the_newest(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    snippet = new_snippet(owner, 1)
    await save_snippets(uow_factory, snippet)
    async with uow_factory() as uow:
        assert await uow.revisions.last_number(snippet.id) == 0
        for number in range(1, 6):
            await uow.revisions.add(
                Revision(snippet.id, number, f"v{number}", f"code {number}", "Python", T0)
            )
        await uow.revisions.trim(snippet.id, 3)
        await uow.commit()

    async with uow_factory() as uow:
        assert [r.number for r in await uow.revisions.list(snippet.id)] == [3, 4, 5]
        assert await uow.revisions.last_number(snippet.id) == 5
        assert (await uow.revisions.get(snippet.id, 4)).code == "code 4"  # type: ignore[union-attr]
        assert await uow.revisions.get(snippet.id, 1) is None


async def test_share_links_live_use_and_revoke(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner, other = await saved_user(), await saved_user()
    snippet = new_snippet(owner, 1, title="Shared", code="print(1)")
    await save_snippets(uow_factory, snippet)
    once = ShareLink(uuid.uuid4(), "a" * 64, snippet.id, owner.id, T0, T0 + timedelta(1), True)
    week = ShareLink(uuid.uuid4(), "b" * 64, snippet.id, owner.id, T0, T0 + timedelta(7), False)
    async with uow_factory() as uow:
        await uow.shares.add(once)
        await uow.shares.add(week)
        await uow.commit()

    async with uow_factory() as uow:
        found = await uow.shares.open("a" * 64, T0)
        assert found is not None and found[1].code == "print(1)" and found[0].snippet_ref == 1
        assert await uow.shares.use(once.id, T0) is True
        assert await uow.shares.use(once.id, T0) is False
        assert await uow.shares.open("a" * 64, T0) is None
        assert await uow.shares.open("b" * 64, T0 + timedelta(8)) is None  # expired
        assert [link.id for link in await uow.shares.live(owner.id, T0)] == [week.id]
        assert await uow.shares.revoke(other.id, week.id, T0) is False  # not theirs
        assert await uow.shares.revoke_snippet(snippet.id, T0) == 2  # used ones too
        assert await uow.shares.open("b" * 64, T0) is None
        assert await uow.shares.revoke(owner.id, week.id, T0) is False
        await uow.commit()


async def test_a_share_of_a_deleted_snippet_does_not_open(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    snippet = new_snippet(owner, 1)
    await save_snippets(uow_factory, snippet)
    link = ShareLink(uuid.uuid4(), "c" * 64, snippet.id, owner.id, T0, T0 + timedelta(7), False)
    async with uow_factory() as uow:
        await uow.shares.add(link)
        await uow.snippets.soft_delete(snippet.id, T0)
        await uow.commit()
        assert await uow.shares.open("c" * 64, T0) is None
        assert await uow.shares.live(owner.id, T0) == []


async def test_concurrent_edits_of_one_snippet_each_keep_a_version(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    service = SnippetService(uow_factory, MemorySnippetCache(60), lambda: T0, 10_000)
    await service.create(owner, "Race", "v = 0")

    await asyncio.gather(*(service.edit(owner, 1, f"v = {n}") for n in range(1, 6)))

    async with uow_factory() as uow:
        snippet = await uow.snippets.get_by_ref(owner.id, 1)
        assert snippet is not None
        kept = await uow.revisions.list(snippet.id)
    assert [revision.number for revision in kept] == [1, 2, 3, 4, 5]


async def test_concurrent_tag_changes_of_one_snippet_do_not_fail(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    cache = MemorySnippetCache(60)
    service = SnippetService(uow_factory, cache, lambda: T0, 10_000)
    organise = OrganiseService(uow_factory, cache, lambda: T0)
    await service.create(owner, "Race", "v = 0")

    await asyncio.gather(*(organise.tag(owner, 1, ["python", f"t{n}"]) for n in range(5)))

    async with uow_factory() as uow:
        snippet = await uow.snippets.get_by_ref(owner.id, 1)
    assert snippet is not None and "python" in snippet.tags
