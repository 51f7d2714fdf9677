"""What core needs from the outside world, as Protocols; `storage/` and `mail/` implement them.
(`StatementsInUnitsOfWork` is the one implementation here: `QuickStatements` made of the
unit-of-work ports alone, the default where a store has nothing quicker.)

Repositories never commit: the unit of work owns the transaction, and leaving it without
`commit()` rolls everything back.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar
from uuid import UUID

from core.entities import (
    ChatFlow,
    Client,
    OneTimeToken,
    OutboxItem,
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

T = TypeVar("T")

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""


def utc_now() -> datetime:
    """The real `Clock`; tests hand the composition root one of their own."""
    return datetime.now(UTC)


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises `core.errors.EmailTaken` when the (normalised) email exists."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """`email` is already normalised (lower-case); matching is case-insensitive."""

    async def set_verified(self, user_id: UUID) -> None: ...

    async def set_password(self, user_id: UUID, hashed_password: str) -> None: ...

    async def next_snippet_ref(self, user_id: UUID) -> int:
        """Atomically hands out the user's next snippet ref (1, 2, 3, …); never reuses one."""

    async def reserve_snippet_refs(self, user_id: UUID, count: int) -> int:
        """Atomically hands out `count` consecutive refs at once; returns the first."""


class SnippetRepository(Protocol):
    async def add(self, snippet: Snippet) -> None: ...

    async def add_all(self, snippets: Sequence[Snippet]) -> None:
        """Adds them in as few statements as the database allows (an import)."""

    async def get(self, snippet_id: UUID) -> Snippet | None: ...

    async def get_by_ref(self, owner_id: UUID, ref: int) -> Snippet | None: ...

    async def list(self, owner_id: UUID, offset: int, limit: int) -> Page[SnippetSummary]:
        """The owner's snippets, newest first (ties broken by ref, descending)."""

    async def search(
        self, owner_id: UUID, text: str, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        """Case-insensitive substring match on title or code, newest first."""

    async def update(self, snippet: Snippet) -> None:
        """Stores title, code, language and updated_at of an existing snippet."""

    async def delete(self, snippet_id: UUID) -> None: ...

    async def soft_delete(self, snippet_id: UUID, at: datetime) -> None:
        """Hides the snippet everywhere (get, list, search) until `undelete` or the purge."""

    async def get_deleted(self, owner_id: UUID, key: UUID | int, since: datetime) -> Snippet | None:
        """The owner's snippet (by id or ref) deleted at or after `since`, else None."""

    async def undelete(self, snippet_id: UUID) -> bool:
        """False when it is no longer there to bring back (the purge was first)."""

    async def purge_deleted(self, before: datetime) -> int:
        """Removes for good what was deleted before `before`; returns how many."""

    async def filter(
        self, owner_id: UUID, tag: str | None, text: str | None, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        """Like `search`, narrowed to a tag; `text` also matches tags. Newest first."""

    async def all_of(self, owner_id: UUID) -> Sequence[Snippet]:
        """Every live snippet of the owner, oldest first, with tags (for export)."""


class TagRepository(Protocol):
    async def set(self, owner_id: UUID, snippet_id: UUID, tags: Sequence[str]) -> None:
        """Replaces the snippet's tags."""

    async def add_all(self, owner_id: UUID, tags: Mapping[UUID, Sequence[str]]) -> None:
        """Tags new snippets (by snippet id), in as few statements as the database allows."""

    async def counts(self, owner_id: UUID) -> list[tuple[str, int]]:
        """The owner's tags on live snippets with how many each, most used first."""


class RevisionRepository(Protocol):
    async def add(self, revision: Revision) -> None: ...

    async def add_all(self, revisions: Sequence[Revision]) -> None:
        """Adds kept versions of new snippets, in as few statements as the database allows."""

    async def last_number(self, snippet_id: UUID) -> int:
        """0 when the snippet has no kept version yet."""

    async def list(self, snippet_id: UUID) -> list[Revision]:
        """Oldest first."""

    async def of_owner(self, owner_id: UUID) -> dict[UUID, builtins.list[Revision]]:
        """The kept versions of each of the owner's live snippets (by snippet id), oldest
        first; a snippet without any is absent."""

    async def get(self, snippet_id: UUID, number: int) -> Revision | None: ...

    async def trim(self, snippet_id: UUID, keep: int) -> None:
        """Drops all but the newest `keep` versions."""


class ShareRepository(Protocol):
    async def add(self, link: ShareLink) -> None: ...

    async def open(self, token_hash: str, now: datetime) -> tuple[ShareLink, SharedSnippet] | None:
        """The live link (not expired, revoked or used; its snippet not deleted) and what it
        shows, else None."""

    async def use(self, link_id: UUID, at: datetime) -> bool:
        """Marks a single-use link used; False if another view used it first."""

    async def live(self, owner_id: UUID, now: datetime) -> list[ShareLink]:
        """The owner's live links, newest first, with their snippet's ref and title."""

    async def revoke(self, owner_id: UUID, link_id: UUID, at: datetime) -> bool:
        """False when the owner has no such live link."""

    async def revoke_snippet(self, snippet_id: UUID, at: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session with what judging it needs, read together in one statement."""

    session: Session
    user: User
    parent: Session | None = None
    """The session it was opened from (`Session.parent_jti`), if any and still stored."""


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...

    async def find(self, jti: str) -> SessionRecord | None:
        """The session named by a token, its user and its parent (every API call reads it)."""

    async def latest_for_client(self, client: Client) -> SessionRecord | None:
        """The newest session bound to the client (its kind and `Client.binding`) that is not
        revoked (it may have expired), with its user: every chat command checks it first."""

    async def revoke(self, jti: str, at: datetime) -> None: ...

    async def revoke_client(self, client: Client, at: datetime) -> None:
        """Revokes every session bound to a chat client. API sessions are bound to no
        caller, so an API client is refused (`ValueError`): revoke those by `jti`."""

    async def revoke_user(self, user_id: UUID, at: datetime) -> None: ...


class OneTimeTokenRepository(Protocol):
    async def add(self, token: OneTimeToken) -> None: ...

    async def get(self, token_hash: str) -> OneTimeToken | None: ...

    async def use_all(self, user_id: UUID, purpose: TokenPurpose, at: datetime) -> None:
        """Marks every unused token of that user and purpose as used."""

    async def count_since(self, user_id: UUID, purpose: TokenPurpose, since: datetime) -> int:
        """How many tokens of that purpose were issued since `since` (rate limits emails)."""


class AttemptRepository(Protocol):
    """Attempts, by key (`login:email:<hash>`, `login:chat:<id>`, …), shared by processes."""

    async def add(self, key: str, at: datetime) -> int:
        """Records an attempt; returns its id (for `discard`)."""

    async def count_since(self, key: str, since: datetime) -> int: ...

    async def oldest_since(self, key: str, since: datetime) -> datetime | None: ...

    async def latest_since(
        self, key: str, since: datetime, *, excluding: int | None = None
    ) -> datetime | None:
        """The newest attempt of the key since `since`, leaving out the one `excluding` names."""

    async def discard(self, attempt_ids: Sequence[int]) -> None:
        """Forgets attempts that turned out not to count (a success, a refusal)."""

    async def clear(self, key: str) -> None: ...

    async def purge_before(self, before: datetime, *, sparing: str = "") -> int:
        """Deletes the attempts made before `before`, except under keys that start with
        `sparing` (when given); returns how many went."""


class FlowRepository(Protocol):
    async def get(self, chat_id: int) -> ChatFlow | None:
        """The chat's flow, or None when there is none or it expired."""

    async def save(self, flow: ChatFlow) -> ChatFlow:
        """Insert (version 0 → 1) or update where the stored version equals `flow.version`.

        Returns the flow with its new version; raises `core.errors.FlowConflict` when another
        update moved the version on meanwhile.
        """

    async def delete(self, chat_id: int) -> None: ...


class Outbox(Protocol):
    async def add(self, email: OutgoingEmail) -> None: ...


class UnitOfWork(Protocol):
    users: UserRepository
    snippets: SnippetRepository
    sessions: SessionRepository
    tokens: OneTimeTokenRepository
    attempts: AttemptRepository
    flows: FlowRepository
    outbox: Outbox
    tags: TagRepository
    revisions: RevisionRepository
    shares: ShareRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Rolls back whatever was not committed."""

    async def autocommit(self) -> None:
        """From here on, every statement is a transaction of its own, committed as it runs:
        no BEGIN, COMMIT or ROLLBACK round trips. Call it right after entering, before any
        statement, and only where each statement stands alone (a read, or a single write);
        `commit()` and `rollback()` then have nothing left to do."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class QuickStatements(Protocol):
    """The statements on the path of most updates, each standing alone (autocommitted), for a
    store that can run them for less than a unit of work costs (`storage.bare` on Postgres):
    every chat command and API call reads its session first, and a `/get` reads the snippet
    when the cache misses and queues the email copy."""

    async def latest_session(self, client: Client) -> SessionRecord | None:
        """`SessionRepository.latest_for_client`: every chat command's first read."""

    async def session(self, jti: str) -> SessionRecord | None:
        """`SessionRepository.find`: every API call's first read."""

    async def snippet(self, owner_id: UUID, key: int | UUID) -> Snippet | None:
        """A live snippet by id, or by the owner's ref (`SnippetRepository.get`, `get_by_ref`):
        what a `/get` reads when the cache misses."""

    async def queue_copy(self, email: OutgoingEmail) -> None:
        """Queues the email copy of what a user was just shown. Its commit may return before
        the server's disk has it: losing it to a crash of the database server costs nothing
        the user cannot get again."""


class StatementsInUnitsOfWork:
    """`QuickStatements`, each in a unit of work of its own (where nothing quicker exists)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def latest_session(self, client: Client) -> SessionRecord | None:
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.sessions.latest_for_client(client)

    async def session(self, jti: str) -> SessionRecord | None:
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.sessions.find(jti)

    async def snippet(self, owner_id: UUID, key: int | UUID) -> Snippet | None:
        async with self._uow() as uow:
            await uow.autocommit()
            if isinstance(key, UUID):
                return await uow.snippets.get(key)
            return await uow.snippets.get_by_ref(owner_id, key)

    async def queue_copy(self, email: OutgoingEmail) -> None:
        async with self._uow() as uow:
            await uow.autocommit()
            await uow.outbox.add(email)
            await uow.commit()


class OutboxQueue(Protocol):
    """The worker's side of the outbox: claim due emails, then record how sending went."""

    async def claim(self, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Atomically takes up to `limit` due emails (pending, or `sending` whose lease ran out).

        Claimed rows become `sending` with attempts + 1 until the lease ends, so no other
        worker takes them meanwhile (`FOR UPDATE SKIP LOCKED` on Postgres).
        """

    async def mark_all_sent(self, email_ids: Sequence[UUID], at: datetime) -> None:
        """Records a batch as sent, in one statement."""

    async def retry_later(self, email_id: UUID, error: str, at: datetime) -> None:
        """Back to pending, due at `at`."""

    async def mark_failed(self, email_id: UUID, error: str) -> None:
        """Parked for good (a 5xx answer, or too many attempts); shown by `snippetvault check`.

        Like `mark_sent`, drops the email's context: its codes and links are kept no longer."""

    async def purge_finished(self, before: datetime) -> int:
        """Deletes the sent and failed emails created before `before`; returns how many."""

    async def counts(self) -> dict[str, int]:
        """Number of emails per status, for `check` and the bench."""


@dataclass(frozen=True, slots=True)
class CacheTicket:
    """What a cache miss saw; a later `put` stores only if nothing changed since."""

    key: str
    generation: str | None


@dataclass(frozen=True, slots=True)
class CacheRead(Generic[T]):
    value: T | None
    ticket: CacheTicket


@dataclass(frozen=True, slots=True)
class CachedList:
    """The newest snippets of one owner (at most `SnippetCache.LIST_LIMIT`) and their total."""

    items: tuple[SnippetSummary, ...]
    total: int


class SnippetCache(Protocol):
    """Cache-aside for snippets; every method swallows backend failures (a miss, a no-op).

    Keys: `snippet:<id>`, `user:<owner_id>:snippets`. A `put` after a `forget_*` of the same
    key (with the ticket taken before it) never stores: that is what keeps edits and deletes
    from being undone by a slow reader.
    """

    LIST_LIMIT: int

    async def get_snippet(self, snippet_id: UUID) -> CacheRead[Snippet]: ...

    async def put_snippet(self, snippet: Snippet, ticket: CacheTicket) -> None:
        """Stores the snippet, and its owner's ref to it, unless the ticket's key (the
        snippet's own, or its owner's list) was forgotten after the ticket was taken."""

    async def get_by_ref(self, owner_id: UUID, ref: int) -> CacheRead[Snippet]:
        """The snippet behind an owner's ref, in one read of the backend: its value, or None
        on a miss, with the ticket for `put_snippet` of what the database then holds.

        When the cache knows the ref, the ticket is that of `snippet:<id>`; when it does not
        (the first read), that of the owner's list: every change of a snippet forgets its
        owner's list too, so that ticket guards the snippet as well, and the first read
        fills `snippet:<id>` race-free. Refs never change meaning; the snippet behind one may
        be gone (a delete keeps the ref).
        """

    async def get_list(self, owner_id: UUID) -> CacheRead[CachedList]: ...

    async def put_list(self, owner_id: UUID, value: CachedList, ticket: CacheTicket) -> None: ...

    async def forget_snippet(self, owner_id: UUID, snippet_id: UUID) -> None:
        """Drops the snippet and the owner's list."""

    async def forget_list(self, owner_id: UUID) -> None: ...
