"""Step-by-step chat flows: optimistic versions, conflicts and expiry."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from storage_builders import T0, FakeClock

from core.entities import ChatFlow
from core.errors import FlowConflict
from core.ports import UnitOfWorkFactory
from storage.database import Database


@pytest.fixture
async def flows_db(database_url: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    database = Database(database_url, clock=clock)
    yield database.uow_factory()
    await database.dispose()


def _chat() -> int:
    return uuid.uuid4().int % 10**12


def _flow(chat_id: int, **overrides: object) -> ChatFlow:
    flow = ChatFlow(
        chat_id=chat_id,
        name="login",
        step="email",
        data={"started": "yes"},
        expires_at=T0 + timedelta(minutes=10),
    )
    return replace(flow, **overrides)  # type: ignore[arg-type]


async def test_a_new_flow_is_saved_as_version_1_and_read_back(
    flows_db: UnitOfWorkFactory,
) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        saved = await uow.flows.save(_flow(chat_id))
        await uow.commit()

    async with flows_db() as uow:
        stored = await uow.flows.get(chat_id)
    assert saved.version == 1
    assert stored == saved
    assert stored.data == {"started": "yes"}


async def test_each_save_moves_the_version_on(flows_db: UnitOfWorkFactory) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        first = await uow.flows.save(_flow(chat_id))
        second = await uow.flows.save(replace(first, step="password", data={"email": "a@b.c"}))
        await uow.commit()

    async with flows_db() as uow:
        assert await uow.flows.get(chat_id) == second
    assert second.version == 2


async def test_saving_a_stale_version_is_a_conflict(flows_db: UnitOfWorkFactory) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        first = await uow.flows.save(_flow(chat_id))
        await uow.commit()
    async with flows_db() as uow:
        await uow.flows.save(replace(first, step="password"))
        await uow.commit()

    async with flows_db() as uow:
        with pytest.raises(FlowConflict):
            await uow.flows.save(replace(first, step="from a stale update"))

    async with flows_db() as uow:
        stored = await uow.flows.get(chat_id)
    assert stored is not None
    assert (stored.step, stored.version) == ("password", 2)


async def test_starting_a_flow_twice_is_a_conflict_for_the_second(
    flows_db: UnitOfWorkFactory,
) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        await uow.flows.save(_flow(chat_id, name="signup"))
        await uow.commit()

    async with flows_db() as uow:
        with pytest.raises(FlowConflict):
            await uow.flows.save(_flow(chat_id, name="login"))
        # The conflict left the transaction usable.
        assert (await uow.flows.get(chat_id)) is not None

    async with flows_db() as uow:
        stored = await uow.flows.get(chat_id)
    assert stored is not None
    assert stored.name == "signup"


async def test_an_expired_flow_is_gone_and_a_new_one_takes_its_place(
    flows_db: UnitOfWorkFactory, clock: FakeClock
) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        await uow.flows.save(_flow(chat_id, name="signup"))
        await uow.commit()

    clock.now = T0 + timedelta(minutes=11)
    async with flows_db() as uow:
        assert await uow.flows.get(chat_id) is None
        fresh = await uow.flows.save(
            _flow(chat_id, name="login", expires_at=clock.now + timedelta(minutes=10))
        )
        await uow.commit()

    async with flows_db() as uow:
        assert await uow.flows.get(chat_id) == fresh
    assert fresh.version == 1


async def test_a_flow_without_expiry_lives_on(
    flows_db: UnitOfWorkFactory, clock: FakeClock
) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        saved = await uow.flows.save(_flow(chat_id, expires_at=None))
        await uow.commit()
    clock.now = T0 + timedelta(days=365)
    async with flows_db() as uow:
        assert await uow.flows.get(chat_id) == saved


async def test_delete_ends_the_flow(flows_db: UnitOfWorkFactory) -> None:
    chat_id = _chat()
    async with flows_db() as uow:
        await uow.flows.save(_flow(chat_id))
        await uow.flows.delete(chat_id)
        await uow.flows.delete(_chat())  # deleting nothing is fine
        await uow.commit()
    async with flows_db() as uow:
        assert await uow.flows.get(chat_id) is None
