"""Sessions, one-time tokens and failed-attempt counters."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from storage_builders import T0, SaveUser

from core.entities import Client, ClientKind, OneTimeToken, Session, TokenPurpose, User
from core.ports import SessionRecord, UnitOfWorkFactory


def _session(
    user: User, chat_id: int | None, issued_minutes: int, parent: Session | None = None
) -> Session:
    """A chat's session, or with `chat_id=None` an API one (opened from `parent`, if given)."""
    issued = T0 + timedelta(minutes=issued_minutes)
    return Session(
        jti=uuid.uuid4().hex,
        user_id=user.id,
        client_kind=ClientKind.API if chat_id is None else ClientKind.CHAT,
        client_key=None if chat_id is None else str(chat_id),
        token=f"header.payload-{uuid.uuid4().hex}.signature",
        issued_at=issued,
        expires_at=issued + timedelta(days=1),
        parent_jti=parent.jti if parent else None,
    )


def _token(user: User, purpose: TokenPurpose, created_minutes: int) -> OneTimeToken:
    created = T0 + timedelta(minutes=created_minutes)
    return OneTimeToken(
        token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
        user_id=user.id,
        purpose=purpose,
        created_at=created,
        expires_at=created + timedelta(hours=1),
    )


async def test_a_session_reads_back_and_the_chat_gets_its_newest_unrevoked_one(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user()
    chat_id = 7_000_000_000 + uuid.uuid4().int % 1_000_000  # beyond 32 bits, like real chats
    chat = Client.chat(chat_id)
    old, newest, other_chat, api = (
        _session(user, chat_id, 0),
        _session(user, chat_id, 5),
        _session(user, chat_id + 1, 10),
        _session(user, None, 20),
    )
    async with uow_factory() as uow:
        for session in (old, newest, other_chat, api):
            await uow.sessions.add(session)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.sessions.find(old.jti) == SessionRecord(old, user)
        assert await uow.sessions.find(api.jti) == SessionRecord(api, user)
        assert await uow.sessions.find("no-such-jti") is None
        assert await uow.sessions.latest_for_client(chat) == SessionRecord(newest, user)
        assert await uow.sessions.latest_for_client(Client.api("10.0.0.1")) is None
        await uow.sessions.revoke(newest.jti, T0 + timedelta(hours=1))
        await uow.commit()

    async with uow_factory() as uow:
        revoked = await uow.sessions.find(newest.jti)
        assert revoked is not None
        assert revoked.session.revoked_at == T0 + timedelta(hours=1)
        assert await uow.sessions.latest_for_client(chat) == SessionRecord(old, user)


async def test_a_linked_session_reads_back_with_its_parent(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user = await saved_user()
    parent = _session(user, uuid.uuid4().int % 10**9, 0)
    child = _session(user, None, 1, parent=parent)
    orphan = replace(_session(user, None, 2), parent_jti="purged-parent")
    async with uow_factory() as uow:
        for session in (parent, child, orphan):
            await uow.sessions.add(session)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.sessions.find(child.jti) == SessionRecord(child, user, parent)
        assert await uow.sessions.find(orphan.jti) == SessionRecord(orphan, user, None)
        await uow.sessions.revoke(parent.jti, T0 + timedelta(hours=1))
        await uow.commit()

    async with uow_factory() as uow:
        found = await uow.sessions.find(child.jti)
    assert found is not None
    assert found.parent is not None
    assert found.parent.revoked_at == T0 + timedelta(hours=1)


async def test_revoke_client_and_revoke_user(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    alice, bob = await saved_user(), await saved_user()
    chat_a, chat_b = uuid.uuid4().int % 10**9, uuid.uuid4().int % 10**9 + 10**9
    in_a, bob_in_b, alice_in_b, alice_api = (
        _session(alice, chat_a, 0),
        _session(bob, chat_b, 0),
        _session(alice, chat_b, 1),
        _session(alice, None, 2),
    )
    async with uow_factory() as uow:
        for session in (in_a, bob_in_b, alice_in_b, alice_api):
            await uow.sessions.add(session)
        await uow.commit()

    at = T0 + timedelta(hours=2)
    async with uow_factory() as uow:
        await uow.sessions.revoke_client(Client.chat(chat_a), at)
        with pytest.raises(ValueError, match="jti"):
            await uow.sessions.revoke_client(Client.api("10.0.0.1"), at)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.sessions.latest_for_client(Client.chat(chat_a)) is None
        assert await uow.sessions.latest_for_client(Client.chat(chat_b)) == SessionRecord(
            alice_in_b, alice
        )
        api = await uow.sessions.find(alice_api.jti)
        assert api is not None
        assert api.session.revoked_at is None
        await uow.sessions.revoke_user(alice.id, at + timedelta(minutes=1))
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.sessions.latest_for_client(Client.chat(chat_b)) == SessionRecord(
            bob_in_b, bob
        )
        first_revocation = await uow.sessions.find(in_a.jti)
        api = await uow.sessions.find(alice_api.jti)
    assert first_revocation is not None
    assert first_revocation.session.revoked_at == at  # revoking again keeps the first time
    assert api is not None
    assert api.session.revoked_at == at + timedelta(minutes=1)


async def test_tokens_read_back_are_used_together_and_counted_by_purpose(
    uow_factory: UnitOfWorkFactory, saved_user: SaveUser
) -> None:
    user, other = await saved_user(), await saved_user()
    verify_old = _token(user, TokenPurpose.VERIFY_EMAIL, 0)
    verify_new = _token(user, TokenPurpose.VERIFY_EMAIL, 30)
    reset = _token(user, TokenPurpose.RESET_PASSWORD, 30)
    others = _token(other, TokenPurpose.VERIFY_EMAIL, 30)
    async with uow_factory() as uow:
        for token in (verify_old, verify_new, reset, others):
            await uow.tokens.add(token)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.tokens.get(verify_old.token_hash) == verify_old
        assert await uow.tokens.get("0" * 64) is None
        since = T0 + timedelta(minutes=10)
        assert await uow.tokens.count_since(user.id, TokenPurpose.VERIFY_EMAIL, since) == 1
        assert await uow.tokens.count_since(user.id, TokenPurpose.VERIFY_EMAIL, T0) == 2
        assert await uow.tokens.count_since(user.id, TokenPurpose.RESET_PASSWORD, T0) == 1
        await uow.tokens.use_all(user.id, TokenPurpose.VERIFY_EMAIL, T0 + timedelta(hours=1))
        await uow.commit()

    async with uow_factory() as uow:
        used = [await uow.tokens.get(t.token_hash) for t in (verify_old, verify_new)]
        untouched = [await uow.tokens.get(t.token_hash) for t in (reset, others)]
    assert [token and token.used_at for token in used] == [T0 + timedelta(hours=1)] * 2
    assert untouched == [reset, others]


async def test_attempts_are_counted_per_key_within_a_window_and_cleared(
    uow_factory: UnitOfWorkFactory,
) -> None:
    key, other_key = f"login:user:{uuid.uuid4()}", f"login:chat:{uuid.uuid4()}"
    async with uow_factory() as uow:
        for minutes in (0, 5, 10):
            await uow.attempts.add(key, T0 + timedelta(minutes=minutes))
        await uow.attempts.add(other_key, T0)
        await uow.commit()

    since = T0 + timedelta(minutes=3)
    async with uow_factory() as uow:
        assert await uow.attempts.count_since(key, since) == 2
        assert await uow.attempts.oldest_since(key, since) == T0 + timedelta(minutes=5)
        assert await uow.attempts.oldest_since(key, T0 + timedelta(hours=1)) is None
        await uow.attempts.clear(key)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.attempts.count_since(key, T0) == 0
        assert await uow.attempts.count_since(other_key, T0) == 1


async def test_attempts_before_a_time_are_purged_except_the_spared_keys(
    uow_factory: UnitOfWorkFactory,
) -> None:
    tag = uuid.uuid4().hex
    spared = f"known_{tag}:"  # `_` and `%` are no wildcards here
    kept, look_alike, plain = f"{spared}ada", f"knownX{tag}:ada", f"login:chat:{tag}"
    async with uow_factory() as uow:
        for key in (kept, look_alike, plain):
            await uow.attempts.add(key, T0)
            await uow.attempts.add(key, T0 + timedelta(hours=2))
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.attempts.purge_before(T0 + timedelta(hours=1), sparing=spared) == 2
        await uow.commit()
    async with uow_factory() as uow:
        counts = [await uow.attempts.count_since(key, T0) for key in (kept, look_alike, plain)]
        assert counts == [2, 1, 1]
        assert await uow.attempts.purge_before(T0 + timedelta(hours=1)) == 1
        assert await uow.attempts.purge_before(T0 + timedelta(hours=3)) == 3
        await uow.commit()
    async with uow_factory() as uow:
        left = [await uow.attempts.count_since(key, T0) for key in (kept, look_alike, plain)]
        assert left == [0, 0, 0]
