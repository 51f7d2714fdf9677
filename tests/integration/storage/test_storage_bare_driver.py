"""The hot statements a /get runs under `autocommit()` (the chat's session read, the email's
outbox INSERT) go to asyncpg directly on Postgres: the same results as through SQLAlchemy, and
never inside a transaction, where the outbox row must stay with the change that caused it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import pytest
from storage_builders import T0, new_email

import storage.repositories
from core.entities import Client, ClientKind, EmailKind, Session, User
from core.errors import StorageUnavailable
from core.ports import SessionRecord, UnitOfWorkFactory
from storage.database import Database

SaveUser = Callable[..., Awaitable[User]]


def _chat_session(user: User, chat_id: int, minutes: int) -> Session:
    issued = T0 + timedelta(minutes=minutes)
    return Session(
        jti=uuid.uuid4().hex,
        user_id=user.id,
        client_kind=ClientKind.CHAT,
        client_key=str(chat_id),
        token=f"header.payload-{uuid.uuid4().hex}.signature",
        issued_at=issued,
        expires_at=issued + timedelta(days=1),
    )


async def _outbox_rows(uow_factory: UnitOfWorkFactory) -> list[tuple[object, ...]]:
    async with uow_factory() as uow:
        await uow.autocommit()
        rows = await uow.outbox._execute(  # type: ignore[attr-defined]
            storage.repositories.sa.text(
                "SELECT id, message_id, recipient, kind, context, status, attempts, "
                "next_attempt_at, created_at FROM outbox ORDER BY message_id"
            )
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize("bare", [True, False])
async def test_the_session_read_is_the_same_either_way(
    uow_factory: UnitOfWorkFactory,
    saved_user: SaveUser,
    monkeypatch: pytest.MonkeyPatch,
    bare: bool,
) -> None:
    monkeypatch.setattr(storage.repositories, "BARE_DRIVER", bare)
    user = await saved_user()
    chat_id = 7_000_000_000 + uuid.uuid4().int % 1_000_000
    old, newest = _chat_session(user, chat_id, 0), _chat_session(user, chat_id, 5)
    async with uow_factory() as uow:
        for session in (old, newest):
            await uow.sessions.add(session)
        await uow.commit()
    async with uow_factory() as uow:
        await uow.autocommit()
        found = await uow.sessions.latest_for_client(Client.chat(chat_id))
        assert found == SessionRecord(newest, user)
        assert found.session.issued_at.tzinfo is not None
        assert await uow.sessions.latest_for_client(Client.chat(chat_id + 1)) is None


async def test_an_autocommitted_outbox_row_is_the_same_either_way(
    uow_factory: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = {"title": 'Ünïcode "quoted"', "code": "x = 1\n", "ref": 3, "nested": [1, None]}
    for bare, message_id in ((True, "<a@x>"), (False, "<b@x>")):
        monkeypatch.setattr(storage.repositories, "BARE_DRIVER", bare)
        async with uow_factory() as uow:
            await uow.autocommit()
            await uow.outbox.add(
                new_email(
                    kind=EmailKind.SNIPPET_RETRIEVED,
                    message_id=message_id,
                    to="ada@example.com",
                    context=context,
                )
            )
    first, second = await _outbox_rows(uow_factory)
    assert (first[1], second[1]) == ("<a@x>", "<b@x>")
    assert first[2:] == second[2:]
    stored = first[4]
    assert (json.loads(stored) if isinstance(stored, str) else stored) == context


async def test_an_outbox_row_in_a_transaction_goes_with_it(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    """The email of a change must not outlive the change: no bare (autocommitting) INSERT."""
    user = await saved_user()
    async with uow_factory() as uow:
        await uow.outbox.add(new_email(message_id="<rolled-back@x>"))
        await uow.sessions.add(_chat_session(user, 42, 0))
        # leaving without commit() rolls back
    async with uow_factory() as uow:
        await uow.outbox.add(new_email(message_id="<first-in-transaction@x>"))
        await uow.rollback()
    assert await _outbox_rows(uow_factory) == []


@pytest.mark.postgres
async def test_a_dead_connection_is_storage_unavailable_and_dropped(
    fresh_postgres_url: str,
) -> None:
    database = Database(fresh_postgres_url)
    uow_factory = database.uow_factory()
    try:
        async with uow_factory() as uow:
            await uow.autocommit()
            raw = await uow.outbox._bare()  # type: ignore[attr-defined]
            assert raw is not None
            pid = raw.get_server_pid()
            dsn = fresh_postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
            admin = await asyncpg.connect(dsn)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
            with pytest.raises(StorageUnavailable):
                await uow.outbox.add(new_email())
        async with uow_factory() as uow:  # a fresh connection: the dead one was dropped
            await uow.autocommit()
            await uow.outbox.add(new_email(message_id="<after@x>"))
    finally:
        await database.dispose()
