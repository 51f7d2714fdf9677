"""Snippet use cases. Every call names its owner; someone else's snippet is `NotFound`.

Reads go through the cache (cache-aside). Writes commit first and then drop the cached copies,
and a reader that missed before a write cannot store what it read afterwards (see
`core.ports.SnippetCache`), so an edited or deleted snippet is never served again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from uuid import UUID

from core.entities import OutgoingEmail, Page, Snippet, SnippetSummary, User
from core.errors import BadRef, EmptySearch, NotFound, SearchTooLong
from core.events import Event, SnippetCreated, SnippetDeleted, SnippetRetrieved
from core.notifications import email_for, wants_email
from core.organise import keep_version, load_owned, split_title_tags
from core.ports import (
    CachedList,
    CacheRead,
    Clock,
    QuickStatements,
    SnippetCache,
    StatementsInUnitsOfWork,
    UnitOfWork,
    UnitOfWorkFactory,
)
from core.text import (
    PLAIN_TEXT,
    check_code,
    clean_title,
    decode_file,
    detect_language_quickly,
    guess_sample,
)

MAX_REF = 2**31 - 1
SnippetKey = int | UUID
"""How an owner names a snippet: its short ref (`3`, what people type), or its id (the API)."""
MAX_SEARCH_CHARS = 200

GuessLanguage = Callable[[str, str | None], Awaitable[str]]
"""Pygments' guess for a sample of code and the file's name (when it came as a file), bounded
in time (`core.text.LanguageGuesser`)."""


async def _no_guess(sample: str, filename: str | None) -> str:
    return PLAIN_TEXT


@dataclass(frozen=True, slots=True)
class Saved:
    snippet: Snippet
    emailed: bool
    """False when the owner's address is unverified, so no email was queued."""


@dataclass(frozen=True, slots=True)
class Shown:
    """A snippet read to be shown, and the email copy of its code it owes its owner (None when
    the address is unverified)."""

    snippet: Snippet
    copy: OutgoingEmail | None


def parse_ref(raw: str) -> int:
    """`3`, `#3` → 3. Anything else is `BadRef`."""
    text = raw.strip().removeprefix("#")
    if (
        not text.isascii()
        or not text.isdigit()
        # Checked before `int()`, which refuses strings of more than 4300 digits.
        or len(text) > len(str(MAX_REF))
        or not 0 < int(text) <= MAX_REF
    ):
        raise BadRef(raw)
    return int(text)


class SnippetService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cache: SnippetCache,
        clock: Clock,
        max_snippet_bytes: int,
        guess_language: GuessLanguage = _no_guess,
        quick: QuickStatements | None = None,
    ) -> None:
        """`quick`: where the email copy of a snippet just shown is queued (by default, a unit
        of work)."""
        self._uow = uow
        self._quick = quick or StatementsInUnitsOfWork(uow)
        self._cache = cache
        self._now = clock
        self.max_snippet_bytes = max_snippet_bytes
        self._guess_language = guess_language

    async def create(
        self,
        owner: User,
        title: str,
        code: str,
        *,
        language_hint: str | None = None,
        filename: str | None = None,
    ) -> Saved:
        title, tags = split_title_tags(title)
        title = clean_title(title)
        code = check_code(code, self.max_snippet_bytes)
        language = await self._detect_language(code, hint=language_hint, filename=filename)
        now = self._now()
        async with self._uow() as uow:
            snippet = Snippet(
                id=uuid.uuid4(),
                owner_id=owner.id,
                ref=await uow.users.next_snippet_ref(owner.id),
                title=title,
                code=code,
                language=language,
                created_at=now,
                updated_at=now,
                tags=tags,
            )
            await uow.snippets.add(snippet)
            if tags:
                await uow.tags.set(owner.id, snippet.id, tags)
            emailed = await self._notify(uow, owner, SnippetCreated(owner, snippet))
            await uow.commit()
        await self._cache.forget_list(owner.id)
        return Saved(snippet, emailed)

    async def create_from_file(
        self, owner: User, data: bytes, filename: str, title: str | None = None
    ) -> Saved:
        # In a thread: detecting the charset of a file that is not UTF-8 takes up to 150 ms of
        # CPU (512 KB), which on the event loop would hold every other user's replies.
        code = await asyncio.to_thread(decode_file, data, self.max_snippet_bytes)
        return await self.create(owner, title or filename, code, filename=filename)

    async def get(self, owner: User, key: SnippetKey, *, snippet_id: UUID | None = None) -> Saved:
        """The snippet, and its code queued as an email to the owner (`show`, then
        `queue_copy`)."""
        shown = await self.show(owner, key, snippet_id=snippet_id)
        await self.queue_copy(shown)
        return Saved(shown.snippet, shown.copy is not None)

    async def show(self, owner: User, key: SnippetKey, *, snippet_id: UUID | None = None) -> Shown:
        """The snippet, with the email copy of its code that it owes the owner, not yet queued:
        an edge may show the snippet while `queue_copy` queues it, rather than after.

        `snippet_id`, where given (a button made for one snippet), is what is looked up, so an
        old button never acts on what its ref means for whoever is logged in now."""
        snippet = await self.view(owner, key, snippet_id=snippet_id)
        copy = email_for(SnippetRetrieved(owner, snippet), self._now())
        return Shown(snippet, copy if wants_email(owner, copy.kind) else None)

    async def queue_copy(self, shown: Shown) -> None:
        """Queues the email copy of a shown snippet (nothing when it owes none). Its commit need
        not wait for the disk (`QuickStatements.queue_copy`): the owner has the code already."""
        if shown.copy is not None:
            await self._quick.queue_copy(shown.copy)

    async def view(
        self, owner: User, key: SnippetKey, *, snippet_id: UUID | None = None
    ) -> Snippet:
        """The snippet without emailing it (for previews and confirmations)."""
        if snippet_id is not None:
            with _shown_as(key):
                return await self.view(owner, snippet_id)
        read = await self._read(owner, key)
        snippet = _cached(read, owner, key)
        if snippet is not None:
            return snippet
        snippet = _owned(await self._quick.snippet(owner.id, key), owner, key)
        await self._cache.put_snippet(snippet, read.ticket)
        return snippet

    async def list(self, owner: User, offset: int, limit: int) -> Page[SnippetSummary]:
        read = await self._cache.get_list(owner.id)
        cached = read.value
        if cached is None:
            async with self._uow() as uow:
                await uow.autocommit()
                first = await uow.snippets.list(owner.id, 0, self._cache.LIST_LIMIT)
            cached = CachedList(first.items, first.total)
            await self._cache.put_list(owner.id, cached, read.ticket)
        if offset + limit <= len(cached.items) or len(cached.items) == cached.total:
            return Page(cached.items[offset : offset + limit], cached.total, offset, limit)
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.snippets.list(owner.id, offset, limit)

    async def search(self, owner: User, text: str, offset: int, limit: int) -> Page[SnippetSummary]:
        query = " ".join(text.split())
        if not query:
            raise EmptySearch
        if len(query) > MAX_SEARCH_CHARS:
            raise SearchTooLong(MAX_SEARCH_CHARS)
        if "\x00" in query:
            # No title or code holds NUL (they are refused), and Postgres cannot even be asked.
            return Page((), 0, offset, limit)
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.snippets.search(owner.id, query, offset, limit)

    async def edit(
        self,
        owner: User,
        key: SnippetKey,
        code: str,
        *,
        language_hint: str | None = None,
        snippet_id: UUID | None = None,
    ) -> Snippet:
        """Replaces the code; the language stays unless a fence names a new one."""
        if snippet_id is not None:
            with _shown_as(key):
                return await self.update(owner, snippet_id, code=code, language=language_hint)
        return await self.update(owner, key, code=code, language=language_hint)

    async def rename(self, owner: User, key: SnippetKey, title: str) -> Snippet:
        return await self.update(owner, key, title=title)

    async def update(
        self,
        owner: User,
        key: SnippetKey,
        *,
        title: str | None = None,
        code: str | None = None,
        language: str | None = None,
    ) -> Snippet:
        """Changes what is given and keeps the rest. A language is a name or alias; one that
        names nothing known is detected from the code instead."""
        title = clean_title(title) if title is not None else None
        code = check_code(code, self.max_snippet_bytes) if code is not None else None
        # Detected before the transaction: a guess may take its deadline.
        detected = (
            await self._detect_language(code, hint=language)
            if code is not None and language is not None
            else None
        )
        async with self._uow() as uow:
            before = await self._load(uow, owner, key)
            new_code = before.code if code is None else code
            snippet = replace(
                before,
                title=before.title if title is None else title,
                code=new_code,
                language=before.language
                if language is None
                else detected
                or detect_language_quickly(new_code, hint=language)
                or before.language,
                updated_at=self._now(),
            )
            if (snippet.title, snippet.code, snippet.language) == (
                before.title,
                before.code,
                before.language,
            ):
                return before  # nothing changed: no new version
            # The UPDATE first: its row lock orders concurrent edits of this snippet, so the
            # next version number is read after the other edit's commit.
            await uow.snippets.update(snippet)
            await keep_version(uow, before)
            await uow.commit()
        await self._cache.forget_snippet(owner.id, snippet.id)
        return snippet

    async def delete(
        self, owner: User, key: SnippetKey, *, snippet_id: UUID | None = None
    ) -> Saved:
        if snippet_id is not None:
            with _shown_as(key):
                return await self.delete(owner, snippet_id)
        async with self._uow() as uow:
            snippet = await self._load(uow, owner, key)
            # Hidden, not gone: an undo brings it back for a while (`core.organise`), and
            # its share links end now, for good.
            await uow.snippets.soft_delete(snippet.id, self._now())
            await uow.shares.revoke_snippet(snippet.id, self._now())
            emailed = await self._notify(uow, owner, SnippetDeleted(owner, snippet))
            await uow.commit()
        await self._cache.forget_snippet(owner.id, snippet.id)
        return Saved(snippet, emailed)

    async def _detect_language(
        self, code: str, *, hint: str | None = None, filename: str | None = None
    ) -> str:
        """Never blocks the event loop: what is left after the hint, the file name and the
        telling lines is guessed by Pygments elsewhere, within a deadline."""
        quick = detect_language_quickly(code, hint=hint, filename=filename)
        if quick is not None:
            return quick
        return await self._guess_language(guess_sample(code), filename)

    async def _read(self, owner: User, key: SnippetKey) -> CacheRead[Snippet]:
        if isinstance(key, UUID):
            return await self._cache.get_snippet(key)
        return await self._cache.get_by_ref(owner.id, key)

    async def _load(self, uow: UnitOfWork, owner: User, key: SnippetKey) -> Snippet:
        return await load_owned(uow, owner, key)

    async def _notify(self, uow: UnitOfWork, owner: User, event: Event) -> bool:
        email = email_for(event, self._now())
        if not wants_email(owner, email.kind):
            return False
        await uow.outbox.add(email)
        return True


@contextmanager
def _shown_as(key: SnippetKey) -> Iterator[None]:
    """A snippet looked up by its id (a button's) is missing under the name its owner knows."""
    try:
        yield
    except NotFound:
        raise NotFound(key) from None


def _cached(read: CacheRead[Snippet], owner: User, key: SnippetKey) -> Snippet | None:
    """The snippet a cache read found; None on a miss (the caller reads the database)."""
    return None if read.value is None else _owned(read.value, owner, key)


def _owned(snippet: Snippet | None, owner: User, key: SnippetKey) -> Snippet:
    if snippet is None or snippet.owner_id != owner.id or key not in (snippet.ref, snippet.id):
        raise NotFound(key)
    return snippet
