"""Fixtures of the storage tests; builders live in `storage_builders`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from storage_builders import T0, FakeClock, new_user

from core.entities import User
from core.ports import UnitOfWorkFactory
from storage.database import Database


@pytest.fixture
def uow_factory(database: Database) -> UnitOfWorkFactory:
    return database.uow_factory()


@pytest.fixture
def saved_user(uow_factory: UnitOfWorkFactory) -> Callable[..., Awaitable[User]]:
    """Stores a new user (committed) and returns it."""

    async def save(**overrides: Any) -> User:
        user = new_user(**overrides)
        async with uow_factory() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user

    return save


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)
