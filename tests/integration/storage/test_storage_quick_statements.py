"""The quick statements (`Database.quick_statements`: asyncpg's own pool on Postgres, units of
work on SQLite) read and write exactly what the repositories do, and say "temporarily
unavailable" as they do."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest
from storage_builders import T0, SaveUser, free_port, new_email, new_snippet, save_snippets

from core.entities import Client, ClientKind, EmailKind, Session, User
from core.errors import StorageUnavailable
from core.ports import SessionRecord, UnitOfWorkFactory
from storage.bare import BareStatements
from storage.database import Database

UNAVAILABLE_BOUND_SECONDS = 10.0
"""A refused connection must be reported within this (a bound against hanging)."""


def _chat_session(user: User, chat_id: int, issued_minutes: int) -> Session:
    issued = T0 + timedelta(minutes=issued_minutes)
    return Session(
        jti=uuid.uuid4().hex,
        user_id=user.id,
        client_kind=ClientKind.CHAT,
        client_key=str(chat_id),
        token=f"header.payload-{uuid.uuid4().hex}.signature",
        issued_at=issued,
        expires_at=issued + timedelta(days=1),
        password_generation=3,
    )


async def test_the_latest_session_of_a_chat_is_what_the_repository_reads(
    database: Database, uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user(is_verified=True, password_generation=3)
    chat_id = 7_000_000_000 + uuid.uuid4().int % 1_000_000  # beyond 32 bits, like real chats
    chat = Client.chat(chat_id)
    old, newest = _chat_session(user, chat_id, 0), _chat_session(user, chat_id, 5)
    async with uow_factory() as uow:
        for session in (old, newest):
            await uow.sessions.add(session)
        await uow.commit()
    quick = database.quick_statements

    assert await quick.latest_session(chat) == SessionRecord(newest, user)
    async with uow_factory() as uow:
        assert await uow.sessions.latest_for_client(chat) == SessionRecord(newest, user)
        await uow.sessions.revoke(newest.jti, T0 + timedelta(hours=1))
        await uow.commit()
    found = await quick.latest_session(chat)
    assert found == SessionRecord(old, user)
    assert found is not None
    assert found.session.issued_at.utcoffset() == timedelta(0)  # aware UTC, as core expects
    assert isinstance(found.user.id, uuid.UUID)
    assert await quick.latest_session(Client.chat(chat_id + 1)) is None
    assert await quick.latest_session(Client.api("10.0.0.1")) is None  # API: no "latest"


async def test_a_session_by_its_jti_is_what_the_repository_reads_with_its_parent(
    database: Database, uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user(is_verified=True)
    parent = _chat_session(user, 77, 0)
    linked = replace(
        _chat_session(user, 77, 1),
        client_kind=ClientKind.API,
        client_key=None,
        parent_jti=parent.jti,
    )
    async with uow_factory() as uow:
        for session in (parent, linked):
            await uow.sessions.add(session)
        await uow.commit()
    quick = database.quick_statements

    assert await quick.session(linked.jti) == SessionRecord(linked, user, parent)
    assert await quick.session(parent.jti) == SessionRecord(parent, user)
    async with uow_factory() as uow:
        assert await uow.sessions.find(linked.jti) == SessionRecord(linked, user, parent)
    assert await quick.session("no-such-jti") is None


async def test_a_snippet_is_read_by_ref_or_id_as_the_repository_reads_it(
    database: Database, uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    owner = await saved_user()
    tagged = new_snippet(owner, 1, title="<b>Ünïcode</b>", code="print('é')\n", tags=("a", "b"))
    deleted = new_snippet(owner, 2)
    await save_snippets(uow_factory, tagged, deleted)
    async with uow_factory() as uow:
        await uow.tags.set(owner.id, tagged.id, tagged.tags)
        await uow.snippets.soft_delete(deleted.id, T0)
        await uow.commit()
    quick = database.quick_statements

    assert await quick.snippet(owner.id, 1) == tagged
    assert await quick.snippet(uuid.uuid4(), tagged.id) == tagged  # by id: core checks the owner
    async with uow_factory() as uow:
        assert await uow.snippets.get_by_ref(owner.id, 1) == tagged
    assert await quick.snippet(owner.id, 2) is None  # deleted: waiting for an undo
    assert await quick.snippet(owner.id, deleted.id) is None
    assert await quick.snippet(owner.id, 3) is None
    assert await quick.snippet(uuid.uuid4(), 1) is None


async def test_a_queued_copy_is_claimed_by_the_worker_as_it_was_written(
    database: Database,
) -> None:
    copy = new_email(
        T0 - timedelta(minutes=1),
        kind=EmailKind.SNIPPET_RETRIEVED,
        context={"title": "<b>Ünïcode</b> & 'quotes'", "code": "x = '\\u0000'\n", "tags": []},
    )
    await database.quick_statements.queue_copy(copy)

    [claimed] = await database.outbox_queue().claim(limit=10, lease_seconds=60)

    assert claimed.email == copy


@pytest.mark.postgres
async def test_an_unreachable_server_is_temporarily_unavailable_not_an_error() -> None:
    database = Database(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test",
        connect_timeout=1.0,
        checkout_timeout=2.0,
    )
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await database.quick_statements.latest_session(Client.chat(1))
        with pytest.raises(StorageUnavailable):
            await database.quick_statements.queue_copy(new_email())
        assert time.monotonic() - started < UNAVAILABLE_BOUND_SECONDS
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_after_its_connections_are_killed_the_pool_answers_again(
    fresh_postgres_url: str,
) -> None:
    """A restart of the server, or an administrator ending the backends: at most one call per
    dead connection says "temporarily unavailable", then new connections serve."""
    database = Database(fresh_postgres_url)
    quick = database.quick_statements
    assert isinstance(quick, BareStatements)
    admin = await asyncpg.connect(fresh_postgres_url.replace("+asyncpg", ""))
    try:
        chat = Client.chat(42)
        assert await quick.latest_session(chat) is None  # the pool now holds a connection
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND query LIKE 'SELECT sessions.jti%'"
        )
        assert ended >= 1
        failures = 0
        for _ in range(3):
            try:
                assert await quick.latest_session(chat) is None
                await quick.queue_copy(replace(new_email(), kind=EmailKind.SNIPPET_RETRIEVED))
            except StorageUnavailable:
                failures += 1
        assert failures <= 1
    finally:
        await admin.close()
        await database.dispose()


async def test_the_database_works_again_after_its_connections_are_closed(
    database: Database, uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user()
    chat = Client.chat(5)
    await database.quick_statements.latest_session(chat)
    await database.dispose()

    session = _chat_session(user, 5, 0)
    async with uow_factory() as uow:
        await uow.sessions.add(session)
        await uow.commit()
    assert await database.quick_statements.latest_session(chat) == SessionRecord(session, user)
