"""In-memory fakes of the ports in `core.ports`, faithful enough to test the use cases on.

`FakeDatabase` holds the committed tables. A `FakeUnitOfWork` works on a private copy of them
(read-your-writes) and journals every change; `commit()` replays the journal onto a copy of the
committed tables and swaps it in, so a commit is all-or-nothing and an exit without commit
leaves nothing behind. After `autocommit()` it reads the committed tables as they are at each
statement and commits every change on its own, as it is made. Constraint checks run both when
a change is made and when it is committed, the way a database raises on insert and on a
conflicting concurrent commit.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import itertools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

from core.entities import (
    ChatFlow,
    Client,
    EmailKind,
    OneTimeToken,
    OutgoingEmail,
    Page,
    Revision,
    Session,
    SharedSnippet,
    ShareLink,
    Snippet,
    SnippetSummary,
    TokenPurpose,
    User,
)
from core.errors import EmailTaken, FlowConflict
from core.notifications import VerificationLinks
from core.ports import (
    AttemptRepository,
    CachedList,
    CacheRead,
    CacheTicket,
    FlowRepository,
    OneTimeTokenRepository,
    Outbox,
    SessionRecord,
    SessionRepository,
    SnippetRepository,
    UserRepository,
)

T = TypeVar("T")
Hook = Callable[[], Awaitable[None]]

# The settings the unit tests build services with (see conftest.py).
JWT_SECRET = "unit-test-secret-" + "x" * 48  # long enough to sign HS512 forgeries too
JWT_TTL = timedelta(hours=24)
LINK_BASE = "https://t.me/snippetvault_test_bot"
WEB_BASE = "https://vault.example.com"


def verify_links(payload: str) -> VerificationLinks:
    """The `core.notifications.VerifyLinks` the unit tests build services with."""
    return VerificationLinks(f"{LINK_BASE}?start={payload}", f"{WEB_BASE}/app/#verify={payload}")


MAX_SNIPPET_BYTES = 1024
LIST_LIMIT = 5


# -- the clock ----------------------------------------------------------------------------


class FakeClock:
    """A `core.ports.Clock` that stands still until told to move."""

    START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self.now += (delta or timedelta()) + timedelta(**parts)
        return self.now


# -- the database -------------------------------------------------------------------------


@dataclass
class Tables:
    users: dict[UUID, User] = field(default_factory=dict)
    snippet_seq: dict[UUID, int] = field(default_factory=dict)
    snippets: dict[UUID, Snippet] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    tokens: dict[str, OneTimeToken] = field(default_factory=dict)
    attempts: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    """By id: (key, at)."""
    flows: dict[int, ChatFlow] = field(default_factory=dict)
    outbox: list[OutgoingEmail] = field(default_factory=list)
    deleted: dict[UUID, datetime] = field(default_factory=dict)
    tags: dict[UUID, tuple[str, ...]] = field(default_factory=dict)
    revisions: dict[UUID, list[Revision]] = field(default_factory=dict)
    shares: dict[UUID, ShareLink] = field(default_factory=dict)


Change = Callable[[Tables], Any]


class FakeDatabase:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.committed = Tables()
        self.commits = 0
        self.after_enter: list[Hook] = []
        """One-shot hooks run right after the next unit of work took its snapshot: a seam
        for forcing races (another transaction commits while this one is open)."""
        self._row_locks: dict[UUID, asyncio.Lock] = {}

    def unit_of_work(self) -> FakeUnitOfWork:
        """A `core.ports.UnitOfWorkFactory`."""
        return FakeUnitOfWork(self)

    def row_lock(self, user_id: UUID) -> asyncio.Lock:
        return self._row_locks.setdefault(user_id, asyncio.Lock())

    # What tests look at: committed state only.

    @property
    def outbox(self) -> list[OutgoingEmail]:
        return list(self.committed.outbox)

    def emails(self, to: str | None = None, kind: EmailKind | None = None) -> list[OutgoingEmail]:
        return [
            email
            for email in self.committed.outbox
            if (to is None or email.to == to) and (kind is None or email.kind is kind)
        ]

    def user_by_email(self, email: str) -> User | None:
        return next(
            (u for u in self.committed.users.values() if u.email.lower() == email.lower()), None
        )

    def sessions_of(self, user_id: UUID) -> list[Session]:
        return [s for s in self.committed.sessions.values() if s.user_id == user_id]


class FakeUnitOfWork:
    """A `core.ports.UnitOfWork`; see the module docstring for the transaction model."""

    users: UserRepository
    snippets: SnippetRepository
    sessions: SessionRepository
    tokens: OneTimeTokenRepository
    attempts: AttemptRepository
    flows: FlowRepository
    outbox: Outbox

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self._tables: Tables | None = None
        self._journal: list[Change] = []
        self._locks: list[asyncio.Lock] = []
        self._autocommit = False
        self.users = FakeUserRepository(self)
        self.snippets = FakeSnippetRepository(self)
        self.sessions = FakeSessionRepository(self)
        self.tokens = FakeTokenRepository(self)
        self.attempts = FakeAttemptRepository(self)
        self.flows = FakeFlowRepository(self)
        self.outbox = FakeOutbox(self)
        self.tags = FakeTagRepository(self)
        self.revisions = FakeRevisionRepository(self)
        self.shares = FakeShareRepository(self)

    async def __aenter__(self) -> Self:
        if self._tables is not None:
            raise RuntimeError("this unit of work is already open")
        self._tables = copy.deepcopy(self.db.committed)
        while self.db.after_enter:
            await self.db.after_enter.pop(0)()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()
        self._tables = None
        self._autocommit = False

    async def autocommit(self) -> None:
        if self._tables is None:
            raise RuntimeError("the unit of work is not open (use `async with`)")
        if self._journal or self._locks:
            raise RuntimeError("autocommit() must come before the first statement")
        self._autocommit = True

    async def commit(self) -> None:
        if self._autocommit:
            return  # every change committed as it was made
        tables = copy.deepcopy(self.db.committed)
        try:
            for change in self._journal:
                change(tables)
        finally:
            self._journal = []
            self._release()
        self.db.committed = tables
        self.db.commits += 1
        self._tables = copy.deepcopy(tables)

    async def rollback(self) -> None:
        self._journal = []
        self._release()
        if self._tables is not None:
            self._tables = copy.deepcopy(self.db.committed)

    # For the repositories.

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            raise RuntimeError("the unit of work is not open (use `async with`)")
        return self.db.committed if self._autocommit else self._tables

    def change(self, change: Callable[[Tables], T]) -> T:
        """Applies a change to this transaction's view and journals it for `commit`; after
        `autocommit()`, commits it on its own (all or nothing) instead."""
        if self._autocommit:
            tables = copy.deepcopy(self.tables)
            result = change(tables)
            self.db.committed = tables
            self.db.commits += 1
            return result
        result = change(self.tables)
        self._journal.append(change)
        return result

    async def lock_user_row(self, user_id: UUID) -> None:
        """Like `UPDATE users … WHERE id = …`: held until commit or rollback (in autocommit,
        for the statement only)."""
        lock = self.db.row_lock(user_id)
        if lock in self._locks:
            return
        if self._autocommit:
            async with lock:
                return
        await lock.acquire()
        self._locks.append(lock)
        # The row may have moved on since the snapshot: read the committed value.
        seq = self.db.committed.snippet_seq.get(user_id)
        if seq is not None:
            self.tables.snippet_seq[user_id] = seq

    def _release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks = []


class _Repository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    @property
    def _t(self) -> Tables:
        return self._uow.tables


class FakeUserRepository(_Repository):
    async def add(self, user: User) -> None:
        def add(tables: Tables) -> None:
            if user.id in tables.users:
                raise ValueError(f"duplicate user id {user.id}")
            if any(u.email.lower() == user.email.lower() for u in tables.users.values()):
                raise EmailTaken("That email already has an account.")
            tables.users[user.id] = user
            tables.snippet_seq[user.id] = 0

        # A concurrent transaction that committed the same email makes the insert fail now.
        if any(
            u.email.lower() == user.email.lower() for u in self._uow.db.committed.users.values()
        ):
            raise EmailTaken("That email already has an account.")
        self._uow.change(add)

    async def get(self, user_id: UUID) -> User | None:
        return self._t.users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self._t.users.values() if u.email.lower() == email.lower()), None)

    async def set_verified(self, user_id: UUID) -> None:
        def set_verified(tables: Tables) -> None:
            if user_id in tables.users:
                tables.users[user_id] = replace(tables.users[user_id], is_verified=True)

        self._uow.change(set_verified)

    async def set_password(self, user_id: UUID, hashed_password: str) -> None:
        def set_password(tables: Tables) -> None:
            if user_id in tables.users:
                user = tables.users[user_id]
                tables.users[user_id] = replace(
                    user,
                    hashed_password=hashed_password,
                    password_generation=user.password_generation + 1,
                )

        self._uow.change(set_password)

    async def next_snippet_ref(self, user_id: UUID) -> int:
        return await self.reserve_snippet_refs(user_id, 1)

    async def reserve_snippet_refs(self, user_id: UUID, count: int) -> int:
        if user_id not in self._t.users and user_id not in self._uow.db.committed.users:
            raise LookupError(f"no user {user_id}")
        await self._uow.lock_user_row(user_id)

        def reserve(tables: Tables) -> int:
            tables.snippet_seq[user_id] = tables.snippet_seq.get(user_id, 0) + count
            return tables.snippet_seq[user_id] - count + 1

        return self._uow.change(reserve)


def _summary(snippet: Snippet) -> SnippetSummary:
    return SnippetSummary(
        snippet.id, snippet.ref, snippet.title, snippet.language, snippet.created_at, snippet.tags
    )


def _page(snippets: list[Snippet], offset: int, limit: int) -> Page[SnippetSummary]:
    ordered = sorted(snippets, key=lambda s: (s.created_at, s.ref), reverse=True)
    items = tuple(_summary(s) for s in ordered[offset : offset + limit])
    return Page(items, len(ordered), offset, limit)


class FakeSnippetRepository(_Repository):
    async def add(self, snippet: Snippet) -> None:
        def add(tables: Tables) -> None:
            if snippet.id in tables.snippets:
                raise ValueError(f"duplicate snippet id {snippet.id}")
            if any(
                s.owner_id == snippet.owner_id and s.ref == snippet.ref
                for s in tables.snippets.values()
            ):
                raise ValueError(f"duplicate ref {snippet.ref} for {snippet.owner_id}")
            if snippet.owner_id not in tables.users:
                raise ValueError(f"no owner {snippet.owner_id}")
            tables.snippets[snippet.id] = replace(snippet, tags=())

        self._uow.change(add)

    async def add_all(self, snippets: Sequence[Snippet]) -> None:
        for snippet in snippets:
            await self.add(snippet)

    def _live(self) -> list[Snippet]:
        tables = self._t
        return [
            replace(s, tags=tables.tags.get(s.id, ()))
            for s in tables.snippets.values()
            if s.id not in tables.deleted
        ]

    async def get(self, snippet_id: UUID) -> Snippet | None:
        return next((s for s in self._live() if s.id == snippet_id), None)

    async def get_by_ref(self, owner_id: UUID, ref: int) -> Snippet | None:
        return next(
            (s for s in self._live() if s.owner_id == owner_id and s.ref == ref),
            None,
        )

    async def list(self, owner_id: UUID, offset: int, limit: int) -> Page[SnippetSummary]:
        owned = [s for s in self._live() if s.owner_id == owner_id]
        return _page(owned, offset, limit)

    async def search(
        self, owner_id: UUID, text: str, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        needle = text.casefold()
        found = [
            s
            for s in self._live()
            if s.owner_id == owner_id
            and (needle in s.title.casefold() or needle in s.code.casefold())
        ]
        return _page(found, offset, limit)

    async def filter(
        self, owner_id: UUID, tag: str | None, text: str | None, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        needle = (text or "").casefold()
        found = [
            s
            for s in self._live()
            if s.owner_id == owner_id
            and (tag is None or tag in s.tags)
            and (
                not needle
                or needle in s.title.casefold()
                or needle in s.code.casefold()
                or needle.removeprefix("#") in s.tags
            )
        ]
        return _page(found, offset, limit)

    async def all_of(self, owner_id: UUID) -> list[Snippet]:
        owned = [s for s in self._live() if s.owner_id == owner_id]
        return sorted(owned, key=lambda s: (s.created_at, s.ref))

    async def update(self, snippet: Snippet) -> None:
        def update(tables: Tables) -> None:
            stored = tables.snippets.get(snippet.id)
            if stored is not None:
                tables.snippets[snippet.id] = replace(
                    stored,
                    title=snippet.title,
                    code=snippet.code,
                    language=snippet.language,
                    updated_at=snippet.updated_at,
                )

        self._uow.change(update)

    async def delete(self, snippet_id: UUID) -> None:
        def delete(tables: Tables) -> None:
            tables.snippets.pop(snippet_id, None)
            for table in (tables.deleted, tables.tags, tables.revisions):
                table.pop(snippet_id, None)

        self._uow.change(delete)

    async def soft_delete(self, snippet_id: UUID, at: datetime) -> None:
        def hide(tables: Tables) -> None:
            if snippet_id in tables.snippets:
                tables.deleted.setdefault(snippet_id, at)

        self._uow.change(hide)

    async def get_deleted(self, owner_id: UUID, key: UUID | int, since: datetime) -> Snippet | None:
        tables = self._t
        snippet = next(
            (
                s
                for s in tables.snippets.values()
                if s.owner_id == owner_id and key in (s.id, s.ref) and s.id in tables.deleted
            ),
            None,
        )
        if snippet is None:
            return None
        snippet_id = snippet.id
        deleted_at = tables.deleted.get(snippet_id)
        if snippet is None or snippet.owner_id != owner_id or deleted_at is None:
            return None
        if deleted_at < since:
            return None
        return replace(snippet, tags=tables.tags.get(snippet_id, ()))

    async def undelete(self, snippet_id: UUID) -> bool:
        return self._uow.change(lambda tables: tables.deleted.pop(snippet_id, None)) is not None

    async def purge_deleted(self, before: datetime) -> int:
        def purge(tables: Tables) -> int:
            gone = [i for i, at in tables.deleted.items() if at < before]
            for snippet_id in gone:
                tables.snippets.pop(snippet_id, None)
                for table in (tables.deleted, tables.tags, tables.revisions):
                    table.pop(snippet_id, None)
            return len(gone)

        return self._uow.change(purge)


class FakeTagRepository(_Repository):
    async def set(self, owner_id: UUID, snippet_id: UUID, tags: Sequence[str]) -> None:
        def set_tags(tables: Tables) -> None:
            tables.tags[snippet_id] = tuple(sorted(tags))

        self._uow.change(set_tags)

    async def add_all(self, owner_id: UUID, tags: Mapping[UUID, Sequence[str]]) -> None:
        for snippet_id, names in tags.items():
            await self.set(owner_id, snippet_id, names)

    async def counts(self, owner_id: UUID) -> list[tuple[str, int]]:
        counted: dict[str, int] = {}
        tables = self._t
        for snippet_id, tags in tables.tags.items():
            snippet = tables.snippets.get(snippet_id)
            if snippet is None or snippet.owner_id != owner_id or snippet_id in tables.deleted:
                continue
            for tag in tags:
                counted[tag] = counted.get(tag, 0) + 1
        return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


class FakeRevisionRepository(_Repository):
    async def add(self, revision: Revision) -> None:
        self._uow.change(
            lambda tables: tables.revisions.setdefault(revision.snippet_id, []).append(revision)
        )

    async def add_all(self, revisions: Sequence[Revision]) -> None:
        for revision in revisions:
            await self.add(revision)

    async def last_number(self, snippet_id: UUID) -> int:
        kept = self._t.revisions.get(snippet_id, [])
        return kept[-1].number if kept else 0

    async def list(self, snippet_id: UUID) -> list[Revision]:
        return list(self._t.revisions.get(snippet_id, []))

    async def of_owner(self, owner_id: UUID) -> dict[UUID, builtins.list[Revision]]:
        tables = self._t
        return {
            snippet_id: list(kept)
            for snippet_id, kept in tables.revisions.items()
            if kept
            and snippet_id in tables.snippets
            and tables.snippets[snippet_id].owner_id == owner_id
            and snippet_id not in tables.deleted
        }

    async def get(self, snippet_id: UUID, number: int) -> Revision | None:
        return next((r for r in self._t.revisions.get(snippet_id, []) if r.number == number), None)

    async def trim(self, snippet_id: UUID, keep: int) -> None:
        def trim(tables: Tables) -> None:
            kept = tables.revisions.get(snippet_id, [])
            tables.revisions[snippet_id] = kept[-keep:] if keep else []

        self._uow.change(trim)


class FakeShareRepository(_Repository):
    async def add(self, link: ShareLink) -> None:
        def add(tables: Tables) -> None:
            tables.shares[link.id] = link

        self._uow.change(add)

    def _is_live(self, link: ShareLink, now: datetime) -> bool:
        tables = self._t
        return (
            link.revoked_at is None
            and link.used_at is None
            and link.expires_at > now
            and link.snippet_id in tables.snippets
            and link.snippet_id not in tables.deleted
        )

    def _with_snippet(self, link: ShareLink) -> ShareLink:
        snippet = self._t.snippets[link.snippet_id]
        return replace(link, snippet_ref=snippet.ref, snippet_title=snippet.title)

    async def open(self, token_hash: str, now: datetime) -> tuple[ShareLink, SharedSnippet] | None:
        for link in self._t.shares.values():
            if link.token_hash == token_hash and self._is_live(link, now):
                snippet = self._t.snippets[link.snippet_id]
                shared = SharedSnippet(snippet.title, snippet.language, snippet.code)
                return self._with_snippet(link), shared
        return None

    async def use(self, link_id: UUID, at: datetime) -> bool:
        def use(tables: Tables) -> bool:
            link = tables.shares.get(link_id)
            if link is None or link.used_at is not None:
                return False
            tables.shares[link_id] = replace(link, used_at=at)
            return True

        return self._uow.change(use)

    async def live(self, owner_id: UUID, now: datetime) -> list[ShareLink]:
        found = [
            self._with_snippet(link)
            for link in self._t.shares.values()
            if link.owner_id == owner_id and self._is_live(link, now)
        ]
        return sorted(found, key=lambda link: link.created_at, reverse=True)

    async def revoke(self, owner_id: UUID, link_id: UUID, at: datetime) -> bool:
        def revoke(tables: Tables) -> bool:
            link = tables.shares.get(link_id)
            if link is None or link.owner_id != owner_id or link.revoked_at is not None:
                return False
            tables.shares[link_id] = replace(link, revoked_at=at)
            return True

        return self._uow.change(revoke)

    async def revoke_snippet(self, snippet_id: UUID, at: datetime) -> int:
        def revoke(tables: Tables) -> int:
            ended = [
                link
                for link in tables.shares.values()
                if link.snippet_id == snippet_id and link.revoked_at is None
            ]
            for link in ended:
                tables.shares[link.id] = replace(link, revoked_at=at)
            return len(ended)

        return self._uow.change(revoke)


class FakeSessionRepository(_Repository):
    async def add(self, session: Session) -> None:
        def add(tables: Tables) -> None:
            if session.jti in tables.sessions:
                raise ValueError(f"duplicate jti {session.jti}")
            tables.sessions[session.jti] = session

        self._uow.change(add)

    async def find(self, jti: str) -> SessionRecord | None:
        tables = self._t  # one snapshot for all, like the one statement of the real one
        session = tables.sessions.get(jti)
        if session is None or session.user_id not in tables.users:
            return None
        parent = tables.sessions.get(session.parent_jti) if session.parent_jti else None
        return SessionRecord(session, tables.users[session.user_id], parent)

    async def latest_for_client(self, client: Client) -> SessionRecord | None:
        tables = self._t
        if client.binding is None:
            return None
        live = [
            s
            for s in tables.sessions.values()
            if (s.client_kind, s.client_key) == (client.kind, client.binding)
            and s.revoked_at is None
            and s.user_id in tables.users
        ]
        # Newest by issue time; among equal times the one added last.
        session = max(reversed(live), key=lambda s: s.issued_at, default=None)
        return None if session is None else SessionRecord(session, tables.users[session.user_id])

    async def revoke(self, jti: str, at: datetime) -> None:
        self._revoke_where(lambda s: s.jti == jti, at)

    async def revoke_client(self, client: Client, at: datetime) -> None:
        if client.binding is None:
            raise ValueError("API sessions are bound to no caller: revoke them by jti")
        self._revoke_where(
            lambda s: (s.client_kind, s.client_key) == (client.kind, client.binding), at
        )

    async def revoke_user(self, user_id: UUID, at: datetime) -> None:
        self._revoke_where(lambda s: s.user_id == user_id, at)

    def _revoke_where(self, matches: Callable[[Session], bool], at: datetime) -> None:
        def revoke(tables: Tables) -> None:
            for jti, stored in tables.sessions.items():
                if matches(stored) and stored.revoked_at is None:
                    tables.sessions[jti] = replace(stored, revoked_at=at)

        self._uow.change(revoke)


class FakeTokenRepository(_Repository):
    async def add(self, token: OneTimeToken) -> None:
        def add(tables: Tables) -> None:
            if token.token_hash in tables.tokens:
                raise ValueError("duplicate token hash")
            tables.tokens[token.token_hash] = token

        self._uow.change(add)

    async def get(self, token_hash: str) -> OneTimeToken | None:
        return self._t.tokens.get(token_hash)

    async def use_all(self, user_id: UUID, purpose: TokenPurpose, at: datetime) -> None:
        def use_all(tables: Tables) -> None:
            for key, token in tables.tokens.items():
                if token.user_id == user_id and token.purpose is purpose and token.used_at is None:
                    tables.tokens[key] = replace(token, used_at=at)

        self._uow.change(use_all)

    async def count_since(self, user_id: UUID, purpose: TokenPurpose, since: datetime) -> int:
        return sum(
            1
            for t in self._t.tokens.values()
            if t.user_id == user_id and t.purpose is purpose and t.created_at >= since
        )


class FakeAttemptRepository(_Repository):
    async def add(self, key: str, at: datetime) -> int:
        attempt_id = next(_attempt_ids)  # like a sequence: never reused, even on rollback

        def add(tables: Tables) -> int:
            tables.attempts[attempt_id] = (key, at)
            return attempt_id

        return self._uow.change(add)

    def _times(self, key: str, since: datetime, excluding: int | None = None) -> list[datetime]:
        return [
            at
            for attempt_id, (stored, at) in self._t.attempts.items()
            if stored == key and at >= since and attempt_id != excluding
        ]

    async def count_since(self, key: str, since: datetime) -> int:
        return len(self._times(key, since))

    async def oldest_since(self, key: str, since: datetime) -> datetime | None:
        return min(self._times(key, since), default=None)

    async def latest_since(
        self, key: str, since: datetime, *, excluding: int | None = None
    ) -> datetime | None:
        return max(self._times(key, since, excluding), default=None)

    async def discard(self, attempt_ids: Sequence[int]) -> None:
        def discard(tables: Tables) -> None:
            for attempt_id in attempt_ids:
                tables.attempts.pop(attempt_id, None)

        self._uow.change(discard)

    async def clear(self, key: str) -> None:
        def clear(tables: Tables) -> None:
            for attempt_id in [i for i, (stored, _) in tables.attempts.items() if stored == key]:
                del tables.attempts[attempt_id]

        self._uow.change(clear)

    async def purge_before(self, before: datetime, *, sparing: str = "") -> int:
        def purge(tables: Tables) -> int:
            old = [
                attempt_id
                for attempt_id, (key, at) in tables.attempts.items()
                if at < before and not (sparing and key.startswith(sparing))
            ]
            for attempt_id in old:
                del tables.attempts[attempt_id]
            return len(old)

        return self._uow.change(purge)


_attempt_ids = itertools.count(1)


class FakeFlowRepository(_Repository):
    async def get(self, chat_id: int) -> ChatFlow | None:
        flow = self._t.flows.get(chat_id)
        if flow is None or not _live(flow, self._uow.db.clock()):
            return None
        return replace(flow, data=dict(flow.data))

    async def save(self, flow: ChatFlow) -> ChatFlow:
        now = self._uow.db.clock()
        saved = replace(flow, data=dict(flow.data), version=flow.version + 1)

        def save(tables: Tables) -> ChatFlow:
            if _flow_conflict(tables.flows.get(flow.chat_id), flow, now):
                raise FlowConflict("This step was changed meanwhile; please send that again.")
            tables.flows[flow.chat_id] = saved
            return replace(saved, data=dict(saved.data))

        # Another transaction's committed save is seen at once, as a row lock would.
        if _flow_conflict(self._uow.db.committed.flows.get(flow.chat_id), flow, now):
            raise FlowConflict("This step was changed meanwhile; please send that again.")
        return self._uow.change(save)

    async def delete(self, chat_id: int) -> None:
        self._uow.change(lambda tables: tables.flows.pop(chat_id, None))


def _live(flow: ChatFlow, now: datetime) -> bool:
    return flow.expires_at is None or flow.expires_at > now


def _flow_conflict(stored: ChatFlow | None, flow: ChatFlow, now: datetime) -> bool:
    if flow.version == 0:
        # Starting a flow: an expired leftover gives way, a live one wins.
        return stored is not None and _live(stored, now)
    return stored is None or stored.version != flow.version


class FakeOutbox(_Repository):
    async def add(self, email: OutgoingEmail) -> None:
        def add(tables: Tables) -> None:
            if any(e.id == email.id for e in tables.outbox):
                raise ValueError(f"duplicate email id {email.id}")
            tables.outbox.append(email)

        self._uow.change(add)


async def add_user(
    db: FakeDatabase, email: str, *, verified: bool = True, hashed_password: str = "!"
) -> User:
    """Seeds a committed user straight into the fake database."""
    user = User(uuid.uuid4(), email, hashed_password, verified, db.clock())
    async with db.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.commit()
    return user


# -- the cache ----------------------------------------------------------------------------


class FakeSnippetCache:
    """A `core.ports.SnippetCache` with the ticket/generation protocol.

    Every `forget_*` gives the key a new generation; a `put` stores only when the key's
    generation is still the one its ticket saw. `down = True` behaves like an unreachable
    backend: reads miss and writes do nothing (nothing raises).
    """

    def __init__(
        self,
        list_limit: int = 50,
        *,
        clock: FakeClock | None = None,
        ttl: timedelta | None = None,
    ) -> None:
        self.LIST_LIMIT = list_limit
        self.down = False
        self.before_next_put: list[Hook] = []
        """One-shot hooks run at the start of the next `put_snippet`/`put_list`, i.e. after
        the reader took its ticket and read the database: a seam for forcing races."""
        self._clock = clock
        self._ttl = ttl
        self._values: dict[str, tuple[object, datetime | None]] = {}
        self._generations: dict[str, str] = {}
        self.stores = 0
        self.refused = 0

    @staticmethod
    def snippet_key(snippet_id: UUID) -> str:
        return f"snippet:{snippet_id}"

    @staticmethod
    def list_key(owner_id: UUID) -> str:
        return f"user:{owner_id}:snippets"

    @staticmethod
    def ref_key(owner_id: UUID, ref: int) -> str:
        return f"user:{owner_id}:ref:{ref}"

    def peek(self, key: str) -> object | None:
        """What the cache holds for `key` right now (for assertions)."""
        return self._read(key)

    async def get_snippet(self, snippet_id: UUID) -> CacheRead[Snippet]:
        return self._get(self.snippet_key(snippet_id), Snippet)

    async def put_snippet(self, snippet: Snippet, ticket: CacheTicket) -> None:
        await self._run_hooks()
        guards = {self.snippet_key(snippet.id), self.list_key(snippet.owner_id)}
        if ticket.key in guards and self._put(self.snippet_key(snippet.id), snippet, ticket):
            self._store(self.ref_key(snippet.owner_id, snippet.ref), snippet.id)

    async def get_by_ref(self, owner_id: UUID, ref: int) -> CacheRead[Snippet]:
        snippet_id = self._read(self.ref_key(owner_id, ref)) if not self.down else None
        if not isinstance(snippet_id, UUID):
            read = self._get(self.list_key(owner_id), CachedList)
            return CacheRead(None, read.ticket)
        return self._get(self.snippet_key(snippet_id), Snippet)

    async def get_list(self, owner_id: UUID) -> CacheRead[CachedList]:
        return self._get(self.list_key(owner_id), CachedList)

    async def put_list(self, owner_id: UUID, value: CachedList, ticket: CacheTicket) -> None:
        await self._run_hooks()
        if ticket.key == self.list_key(owner_id):
            self._put(self.list_key(owner_id), value, ticket)

    async def forget_snippet(self, owner_id: UUID, snippet_id: UUID) -> None:
        self._forget(self.snippet_key(snippet_id))
        self._forget(self.list_key(owner_id))

    async def forget_list(self, owner_id: UUID) -> None:
        self._forget(self.list_key(owner_id))

    def _get(self, key: str, kind: type[T]) -> CacheRead[T]:
        if self.down:
            return CacheRead(None, CacheTicket(key, None))
        value = self._read(key)
        ticket = CacheTicket(key, self._generations.get(key))
        return CacheRead(value if isinstance(value, kind) else None, ticket)

    def _put(self, key: str, value: object, ticket: CacheTicket) -> bool:
        """Stores under `key` if nothing forgot the ticket's key since (a snippet's ticket
        may be its owner's list's: see `SnippetCache.get_by_ref`)."""
        if self.down:
            return False
        if self._generations.get(ticket.key) != ticket.generation:
            self.refused += 1
            return False
        self._store(key, value)
        return True

    def _forget(self, key: str) -> None:
        if self.down:
            return
        self._values.pop(key, None)
        self._generations[key] = uuid.uuid4().hex

    def _store(self, key: str, value: object) -> None:
        expires = self._clock() + self._ttl if self._clock and self._ttl else None
        self._values[key] = (value, expires)
        self.stores += 1

    def _read(self, key: str) -> object | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and self._clock is not None and expires <= self._clock():
            del self._values[key]
            return None
        return value

    async def _run_hooks(self) -> None:
        while self.before_next_put:
            await self.before_next_put.pop(0)()
