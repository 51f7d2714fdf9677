"""Users: storage, case-insensitive email, verification, password, snippet refs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from storage_builders import SaveUser, new_user

from core.errors import EmailTaken
from core.ports import UnitOfWorkFactory


async def test_a_stored_user_reads_back_equal(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user(is_verified=True)
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.get_by_email(user.email) == user


async def test_unknown_users_are_none(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        assert await uow.users.get(new_user().id) is None
        assert await uow.users.get_by_email("nobody@example.com") is None


async def test_email_is_stored_lower_case_and_found_in_any_case(
    uow_factory: UnitOfWorkFactory,
) -> None:
    user = new_user(email="Mixed.Case@Example.COM")
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()

    async with uow_factory() as uow:
        found = await uow.users.get_by_email("MIXED.case@example.com")
    assert found is not None
    assert found.id == user.id
    assert found.email == "mixed.case@example.com"


async def test_a_taken_email_in_another_case_raises_email_taken_and_keeps_the_transaction(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    first = await saved_user(email="taken@example.com")
    other = new_user()
    async with uow_factory() as uow:
        with pytest.raises(EmailTaken):
            await uow.users.add(new_user(email="TAKEN@example.com"))
        # The failed insert did not poison the transaction.
        await uow.users.add(other)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.users.get_by_email("taken@example.com") == first
        assert await uow.users.get(other.id) == other


async def test_set_verified_and_set_password(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user()
    async with uow_factory() as uow:
        await uow.users.set_verified(user.id)
        await uow.users.set_password(user.id, "new-hash")
        await uow.commit()

    async with uow_factory() as uow:
        stored = await uow.users.get(user.id)
    assert stored is not None
    assert stored.is_verified
    assert stored.hashed_password == "new-hash"


async def test_datetimes_come_back_aware_utc(uow_factory: UnitOfWorkFactory) -> None:
    plus_three = timezone(timedelta(hours=3))
    created = datetime(2025, 6, 1, 15, 30, 0, 123456, tzinfo=plus_three)
    user = new_user(created_at=created)
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()

    async with uow_factory() as uow:
        stored = await uow.users.get(user.id)
    assert stored is not None
    assert stored.created_at == created
    assert stored.created_at.tzinfo == UTC
    assert stored.created_at.hour == 12


async def test_snippet_refs_count_up_per_user(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    alice, bob = await saved_user(), await saved_user()
    async with uow_factory() as uow:
        refs = [await uow.users.next_snippet_ref(alice.id) for _ in range(3)]
        bobs = await uow.users.next_snippet_ref(bob.id)
        await uow.commit()
    assert refs == [1, 2, 3]
    assert bobs == 1


async def test_a_rolled_back_ref_is_handed_out_again_a_committed_one_never(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user()
    async with uow_factory() as uow:
        assert await uow.users.next_snippet_ref(user.id) == 1
    async with uow_factory() as uow:
        assert await uow.users.next_snippet_ref(user.id) == 1
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.users.next_snippet_ref(user.id) == 2


async def test_concurrent_ref_allocation_hands_out_each_ref_once(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user()

    async def allocate() -> int:
        async with uow_factory() as uow:
            ref = await uow.users.next_snippet_ref(user.id)
            await asyncio.sleep(0.01)  # hold the transaction open so others must wait
            await uow.commit()
            return ref

    refs = await asyncio.gather(*(allocate() for _ in range(20)))
    assert sorted(refs) == list(range(1, 21))
