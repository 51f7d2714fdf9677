from __future__ import annotations

from datetime import timedelta

import pytest

from core.accounts import AccountService
from core.security import PasswordHasher, SessionTokens
from core.snippets import SnippetService

from .fakes import (
    JWT_SECRET,
    JWT_TTL,
    LIST_LIMIT,
    MAX_SNIPPET_BYTES,
    FakeClock,
    FakeDatabase,
    FakeSnippetCache,
    verify_links,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(clock: FakeClock) -> FakeDatabase:
    return FakeDatabase(clock)


@pytest.fixture
def cache(clock: FakeClock) -> FakeSnippetCache:
    return FakeSnippetCache(LIST_LIMIT, clock=clock, ttl=timedelta(minutes=5))


@pytest.fixture
def session_tokens() -> SessionTokens:
    return SessionTokens(JWT_SECRET, JWT_TTL)


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=4)


@pytest.fixture
def accounts(
    db: FakeDatabase, clock: FakeClock, hasher: PasswordHasher, session_tokens: SessionTokens
) -> AccountService:
    return AccountService(db.unit_of_work, hasher, session_tokens, clock, verify_links)


@pytest.fixture
def snippets(db: FakeDatabase, cache: FakeSnippetCache, clock: FakeClock) -> SnippetService:
    return SnippetService(db.unit_of_work, cache, clock, MAX_SNIPPET_BYTES)
