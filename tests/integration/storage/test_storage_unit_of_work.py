"""The unit of work owns the transaction: commit keeps, anything else rolls back."""

from __future__ import annotations

import pytest
from storage_builders import new_email, new_snippet, new_user

from core.ports import UnitOfWorkFactory
from storage.database import Database


async def test_leaving_without_commit_rolls_back(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    async with uow_factory() as uow:
        await uow.users.add(user)
        assert await uow.users.get(user.id) == user  # visible inside the transaction

    async with uow_factory() as uow:
        assert await uow.users.get(user.id) is None


async def test_an_error_inside_rolls_back_and_propagates(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()

    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.users.add(user)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await add_then_fail()

    async with uow_factory() as uow:
        assert await uow.users.get(user.id) is None


async def test_explicit_rollback_discards_and_the_unit_of_work_goes_on(
    uow_factory: UnitOfWorkFactory,
) -> None:
    discarded, kept = new_user(), new_user()
    async with uow_factory() as uow:
        await uow.users.add(discarded)
        await uow.rollback()
        await uow.users.add(kept)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.users.get(discarded.id) is None
        assert await uow.users.get(kept.id) == kept


async def test_in_autocommit_each_statement_commits_as_it_runs(
    uow_factory: UnitOfWorkFactory,
) -> None:
    kept, added_meanwhile = new_user(), new_user()
    async with uow_factory() as uow:
        await uow.autocommit()
        await uow.users.add(kept)
        async with uow_factory() as other:
            assert await other.users.get(kept.id) == kept  # committed already
            await other.users.add(added_meanwhile)
            await other.commit()
        assert await uow.users.get(added_meanwhile.id) == added_meanwhile  # no snapshot
        await uow.rollback()  # nothing left to undo

    async with uow_factory() as uow:
        assert await uow.users.get(kept.id) == kept


async def test_autocommit_comes_before_the_first_statement(
    uow_factory: UnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        await uow.users.get(new_user().id)
        with pytest.raises(RuntimeError, match="before the first statement"):
            await uow.autocommit()


async def test_autocommit_is_not_carried_over_to_the_next_unit_of_work(
    uow_factory: UnitOfWorkFactory,
) -> None:
    for _ in range(3):  # the pool hands the same connection back
        async with uow_factory() as uow:
            await uow.autocommit()
            await uow.users.get(new_user().id)
    discarded = new_user()
    async with uow_factory() as uow:
        await uow.users.add(discarded)
    async with uow_factory() as uow:
        assert await uow.users.get(discarded.id) is None


async def test_work_after_a_commit_needs_its_own_commit(uow_factory: UnitOfWorkFactory) -> None:
    committed, uncommitted = new_user(), new_user()
    async with uow_factory() as uow:
        await uow.users.add(committed)
        await uow.commit()
        await uow.users.add(uncommitted)

    async with uow_factory() as uow:
        assert await uow.users.get(committed.id) == committed
        assert await uow.users.get(uncommitted.id) is None


async def test_the_outbox_row_shares_the_fate_of_the_transaction(database: Database) -> None:
    uow_factory, queue = database.uow_factory(), database.outbox_queue()
    owner = new_user()
    async with uow_factory() as uow:
        await uow.users.add(owner)
        await uow.snippets.add(new_snippet(owner, 1))
        await uow.outbox.add(new_email())
        # no commit: the snippet and its email go together

    assert (await queue.counts())["pending"] == 0

    async with uow_factory() as uow:
        await uow.users.add(owner)
        await uow.outbox.add(new_email())
        await uow.commit()

    assert (await queue.counts())["pending"] == 1


async def test_a_unit_of_work_is_not_reentrant(uow_factory: UnitOfWorkFactory) -> None:
    uow = uow_factory()
    async with uow:
        with pytest.raises(RuntimeError):
            await uow.__aenter__()


async def test_units_of_work_do_not_see_each_others_uncommitted_work(
    fresh_postgres_url: str,
) -> None:
    # Postgres only: SQLite runs one writer at a time, the reader would wait for the writer.
    database = Database(fresh_postgres_url)
    user = new_user()
    uow_factory = database.uow_factory()
    try:
        async with uow_factory() as writer:
            await writer.users.add(user)
            async with uow_factory() as reader:
                assert await reader.users.get(user.id) is None
            await writer.commit()
        async with uow_factory() as reader:
            assert await reader.users.get(user.id) == user
    finally:
        await database.dispose()


async def test_a_unit_of_work_used_again_is_transactional_again_on_its_new_connection(
    uow_factory: UnitOfWorkFactory,
) -> None:
    uow = uow_factory()
    kept, discarded = new_user(), new_user()
    async with uow:
        await uow.autocommit()
        await uow.users.add(kept)
        await uow.commit()
    async with uow:  # its repositories are on this connection, in a transaction again
        assert await uow.users.get(kept.id) == kept
        await uow.users.add(discarded)
    with pytest.raises(RuntimeError, match="inside `async with`"):
        _ = uow.users
    async with uow_factory() as other:
        assert await other.users.get(discarded.id) is None
