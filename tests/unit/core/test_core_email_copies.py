"""The email of a snippet just shown is a copy of what the user has: it is queued through the
quick statements (whose commit need not wait for the disk), and no other email is; every chat
command's session is read there too."""

from __future__ import annotations

import pytest

from core.accounts import AccountService
from core.entities import Client, EmailKind, OutgoingEmail, User
from core.errors import NotLoggedIn
from core.ports import SessionRecord, StatementsInUnitsOfWork
from core.security import PasswordHasher, SessionTokens
from core.snippets import SnippetService

from .fakes import (
    MAX_SNIPPET_BYTES,
    FakeClock,
    FakeDatabase,
    FakeSnippetCache,
    add_user,
    verify_links,
)


class CountedQuickStatements(StatementsInUnitsOfWork):
    """The quick statements on the same fake database, each call recorded."""

    def __init__(self, db: FakeDatabase) -> None:
        super().__init__(db.unit_of_work)
        self.copies: list[EmailKind] = []
        self.session_reads = 0

    async def latest_session(self, client: Client) -> SessionRecord | None:
        self.session_reads += 1
        return await super().latest_session(client)

    async def session(self, jti: str) -> SessionRecord | None:
        self.session_reads += 1
        return await super().session(jti)

    async def queue_copy(self, email: OutgoingEmail) -> None:
        self.copies.append(email.kind)
        await super().queue_copy(email)


async def test_only_the_email_of_a_shown_snippet_is_queued_as_a_copy(
    db: FakeDatabase, cache: FakeSnippetCache, clock: FakeClock
) -> None:
    quick = CountedQuickStatements(db)
    snippets = SnippetService(db.unit_of_work, cache, clock, MAX_SNIPPET_BYTES, quick=quick)
    ada = await add_user(db, "ada@example.com")

    saved = await snippets.create(ada, "Add", "def add(a, b):\n    return a + b\n")
    await snippets.edit(ada, saved.snippet.ref, "def add(a, b):\n    return b + a\n")
    assert quick.copies == []

    shown = await snippets.get(ada, saved.snippet.ref)

    assert shown.emailed
    assert quick.copies == [EmailKind.SNIPPET_RETRIEVED]
    await snippets.delete(ada, saved.snippet.ref)
    assert quick.copies == [EmailKind.SNIPPET_RETRIEVED]
    assert [email.kind for email in db.outbox] == [
        EmailKind.SNIPPET_CREATED,
        EmailKind.SNIPPET_RETRIEVED,
        EmailKind.SNIPPET_DELETED,
    ]


PASSWORD = "correct horse battery"


@pytest.fixture
def quick(db: FakeDatabase) -> CountedQuickStatements:
    return CountedQuickStatements(db)


@pytest.fixture
async def accounts_and_ada(
    db: FakeDatabase,
    clock: FakeClock,
    hasher: PasswordHasher,
    session_tokens: SessionTokens,
    quick: CountedQuickStatements,
) -> tuple[AccountService, User]:
    accounts = AccountService(
        db.unit_of_work, hasher, session_tokens, clock, verify_links, quick=quick
    )
    ada = await add_user(db, "ada@example.com", hashed_password=await hasher.hash(PASSWORD))
    return accounts, ada


async def test_an_api_callers_session_is_read_through_the_quick_statements(
    accounts_and_ada: tuple[AccountService, User], quick: CountedQuickStatements
) -> None:
    accounts, ada = accounts_and_ada
    caller = Client.api("10.0.0.1")
    login = await accounts.login(ada.email, PASSWORD, caller)

    assert (await accounts.authenticate(login.token, caller)).id == ada.id
    assert quick.session_reads == 1


async def test_a_chats_logged_in_user_is_read_through_the_quick_statements(
    accounts_and_ada: tuple[AccountService, User], quick: CountedQuickStatements
) -> None:
    accounts, ada = accounts_and_ada
    chat = Client.chat(1)
    await accounts.login(ada.email, PASSWORD, chat)

    assert (await accounts.current_user(chat)).id == ada.id
    assert quick.session_reads == 1
    with pytest.raises(NotLoggedIn):
        await accounts.current_user(Client.chat(2))
    assert quick.session_reads == 2
