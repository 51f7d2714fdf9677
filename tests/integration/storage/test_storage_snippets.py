"""Snippets: storage, refs, newest-first pages, search, update and delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storage_builders import T0, SaveUser, new_snippet, save_snippets

from core.entities import Snippet
from core.ports import UnitOfWorkFactory


async def test_a_stored_snippet_reads_back_by_id_and_ref(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    snippet = new_snippet(owner, 1, code="def f():\n    return 'ünïcode ✓'\n")
    await save_snippets(uow_factory, snippet)

    async with uow_factory() as uow:
        assert await uow.snippets.get(snippet.id) == snippet
        assert await uow.snippets.get_by_ref(owner.id, 1) == snippet


async def test_a_ref_belongs_to_its_owner(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    alice, bob = await saved_user(), await saved_user()
    await save_snippets(uow_factory, new_snippet(alice, 1))

    async with uow_factory() as uow:
        assert await uow.snippets.get_by_ref(bob.id, 1) is None
        assert await uow.snippets.get_by_ref(alice.id, 2) is None


async def test_list_is_newest_first_ties_by_ref_and_paged(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner, other = await saved_user(), await saved_user()
    same_time = T0 + timedelta(days=1)
    await save_snippets(
        uow_factory,
        new_snippet(owner, 1),
        new_snippet(owner, 2, created_at=same_time),
        new_snippet(owner, 3, created_at=same_time),
        new_snippet(owner, 4, created_at=T0 - timedelta(days=1)),
        new_snippet(other, 1),
    )

    async with uow_factory() as uow:
        first = await uow.snippets.list(owner.id, offset=0, limit=3)
        second = await uow.snippets.list(owner.id, offset=3, limit=3)

    assert [item.ref for item in first.items] == [3, 2, 1]
    assert [item.ref for item in second.items] == [4]
    assert (first.total, first.has_previous, first.has_next) == (4, False, True)
    assert (second.total, second.has_previous, second.has_next) == (4, True, False)
    assert first.items[0].title == "snippet 3"
    assert first.items[0].created_at == same_time


async def test_a_page_past_the_end_still_counts_the_total(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    await save_snippets(uow_factory, new_snippet(owner, 1), new_snippet(owner, 2))

    async with uow_factory() as uow:
        await uow.autocommit()
        past = await uow.snippets.list(owner.id, offset=5, limit=3)
        found_past = await uow.snippets.search(owner.id, "snippet", offset=2, limit=3)

    assert (past.items, past.total) == ((), 2)
    assert (found_past.items, found_past.total) == ((), 2)


async def test_an_empty_list(uow_factory: UnitOfWorkFactory, saved_user: SaveUser) -> None:
    owner = await saved_user()
    async with uow_factory() as uow:
        page = await uow.snippets.list(owner.id, offset=0, limit=10)
    assert (page.items, page.total) == ((), 0)


async def test_search_matches_title_or_code_ignoring_case_within_the_owner(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner, other = await saved_user(), await saved_user()
    await save_snippets(
        uow_factory,
        new_snippet(owner, 1, title="Quick SORT", code="pass"),
        new_snippet(owner, 2, title="merge", code="# sorted() is stable"),
        new_snippet(owner, 3, title="unrelated", code="x = 1"),
        new_snippet(other, 1, title="sort of someone else", code="sort"),
    )

    async with uow_factory() as uow:
        page = await uow.snippets.search(owner.id, "Sort", offset=0, limit=10)
        paged = await uow.snippets.search(owner.id, "sort", offset=1, limit=1)

    assert [item.ref for item in page.items] == [2, 1]
    assert page.total == 2
    assert [item.ref for item in paged.items] == [1]


@pytest.mark.parametrize(
    ("text", "expected_refs"),
    [
        ("100%", [1]),
        ("a_b", [2]),
        ("C:\\temp", [3]),
        ("%", [1]),
        ("_", [2]),
        ("ПРИВЕТ", [4]),
    ],
)
async def test_search_takes_wildcards_literally_and_folds_any_script(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser, text: str, expected_refs: list[int]
) -> None:
    owner = await saved_user()
    await save_snippets(
        uow_factory,
        new_snippet(owner, 1, title="coverage", code="# 100% done"),
        new_snippet(owner, 2, title="names", code="a_b = 1"),
        new_snippet(owner, 3, title="paths", code="open('C:\\temp')"),
        new_snippet(owner, 4, title="greeting", code="print('Привет')"),
        new_snippet(owner, 5, title="decoy", code="100 percent, aXb, C:/temp"),
    )

    async with uow_factory() as uow:
        page = await uow.snippets.search(owner.id, text, offset=0, limit=10)

    assert sorted(item.ref for item in page.items) == expected_refs


async def test_update_replaces_title_code_language_and_updated_at(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    snippet = new_snippet(owner, 1)
    await save_snippets(uow_factory, snippet)
    edited = Snippet(
        id=snippet.id,
        owner_id=owner.id,
        ref=1,
        title="renamed",
        code="fn main() {}",
        language="rust",
        created_at=snippet.created_at,
        updated_at=snippet.updated_at + timedelta(hours=1),
    )

    async with uow_factory() as uow:
        await uow.snippets.update(edited)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.snippets.get(snippet.id) == edited


async def test_delete_removes_the_snippet_and_its_ref_is_not_reused(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    async with uow_factory() as uow:
        ref = await uow.users.next_snippet_ref(owner.id)
        snippet = new_snippet(owner, ref)
        await uow.snippets.add(snippet)
        await uow.commit()

    async with uow_factory() as uow:
        await uow.snippets.delete(snippet.id)
        next_ref = await uow.users.next_snippet_ref(owner.id)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.snippets.get(snippet.id) is None
        assert (await uow.snippets.list(owner.id, 0, 10)).total == 0
    assert next_ref == 2
