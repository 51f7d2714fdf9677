"""Snippet use cases. Every call names its owner; someone else's snippet is `NotFound`.

Reads go through the cache (cache-aside). Writes commit first and then drop the cached copies,
and a reader that missed before a write cannot store what it read afterwards (see
`core.ports.SnippetCache`), so an edited or deleted snippet is never served again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from core.entities import Page, Snippet, SnippetSummary, User
from core.errors import NotFound, ValidationError
from core.events import Event, SnippetCreated, SnippetDeleted, SnippetRetrieved
from core.notifications import email_for, wants_email
from core.ports import (
    CachedList,
    CacheRead,
    Clock,
    SnippetCache,
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
MAX_SEARCH_CHARS = 200

GuessLanguage = Callable[[str], Awaitable[str]]
"""Pygments' guess for a sample of code, bounded in time (`core.text.LanguageGuesser`)."""


async def _no_guess(sample: str) -> str:
    return PLAIN_TEXT


@dataclass(frozen=True, slots=True)
class Saved:
    snippet: Snippet
    emailed: bool
    """False when the owner's address is unverified, so no email was queued."""


def parse_ref(raw: str) -> int:
    """`3`, `#3` → 3. Anything else is a `ValidationError` a person can act on."""
    text = raw.strip().removeprefix("#")
    if (
        not text.isascii()
        or not text.isdigit()
        # Checked before `int()`, which refuses strings of more than 4300 digits.
        or len(text) > len(str(MAX_REF))
        or not 0 < int(text) <= MAX_REF
    ):
        raise ValidationError(
            f"“{raw.strip()[:20]}” is not a snippet number. Send /list to see yours."
        )
    return int(text)


class SnippetService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cache: SnippetCache,
        clock: Clock,
        max_snippet_bytes: int,
        guess_language: GuessLanguage = _no_guess,
    ) -> None:
        self._uow = uow
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
            )
            await uow.snippets.add(snippet)
            emailed = await self._notify(uow, owner, SnippetCreated(owner, snippet))
            await uow.commit()
        await self._cache.forget_list(owner.id)
        return Saved(snippet, emailed)

    async def create_from_file(
        self, owner: User, data: bytes, filename: str, title: str | None = None
    ) -> Saved:
        code = decode_file(data, self.max_snippet_bytes)
        return await self.create(owner, title or filename, code, filename=filename)

    async def get(self, owner: User, ref: int) -> Saved:
        """The snippet, and its code queued as an email to the owner."""
        read = await self._cache.get_by_ref(owner.id, ref)
        cached = _cached(read, owner, ref)
        async with self._uow() as uow:
            # The read (on a miss) and the email's INSERT need not be one transaction: the
            # email holds what was read, and a failed INSERT leaves nothing to undo.
            await uow.autocommit()
            snippet = cached or await self._load(uow, owner, ref)
            emailed = await self._notify(uow, owner, SnippetRetrieved(owner, snippet))
            await uow.commit()
        if cached is None:
            await self._fill(owner, ref, snippet, read)
        return Saved(snippet, emailed)

    async def view(self, owner: User, ref: int) -> Snippet:
        """The snippet without emailing it (for previews and confirmations)."""
        read = await self._cache.get_by_ref(owner.id, ref)
        snippet = _cached(read, owner, ref)
        if snippet is not None:
            return snippet
        async with self._uow() as uow:
            await uow.autocommit()
            snippet = await self._load(uow, owner, ref)
        await self._fill(owner, ref, snippet, read)
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
            raise ValidationError("Tell me what to look for, e.g. /search quicksort")
        if len(query) > MAX_SEARCH_CHARS:
            raise ValidationError(f"Search for at most {MAX_SEARCH_CHARS} characters.")
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.snippets.search(owner.id, query, offset, limit)

    async def edit(
        self, owner: User, ref: int, code: str, *, language_hint: str | None = None
    ) -> Snippet:
        """Replaces the code; the language stays unless a fence names a new one."""
        code = check_code(code, self.max_snippet_bytes)
        # Detected before the transaction: a guess may take its deadline.
        language = await self._detect_language(code, hint=language_hint) if language_hint else None
        async with self._uow() as uow:
            snippet = await self._load(uow, owner, ref)
            language = language or snippet.language
            snippet = replace(snippet, code=code, language=language, updated_at=self._now())
            await uow.snippets.update(snippet)
            await uow.commit()
        await self._cache.forget_snippet(owner.id, snippet.id)
        return snippet

    async def rename(self, owner: User, ref: int, title: str) -> Snippet:
        title = clean_title(title)
        async with self._uow() as uow:
            snippet = await self._load(uow, owner, ref)
            snippet = replace(snippet, title=title, updated_at=self._now())
            await uow.snippets.update(snippet)
            await uow.commit()
        await self._cache.forget_snippet(owner.id, snippet.id)
        return snippet

    async def delete(self, owner: User, ref: int) -> Saved:
        async with self._uow() as uow:
            snippet = await self._load(uow, owner, ref)
            await uow.snippets.delete(snippet.id)
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
        return quick if quick is not None else await self._guess_language(guess_sample(code))

    async def _fill(
        self, owner: User, ref: int, snippet: Snippet, read: CacheRead[Snippet] | None
    ) -> None:
        """Caches what a miss read from the database: first the ref, then (on the next miss,
        whose ticket was taken before its read) the snippet itself."""
        if read is None:
            await self._cache.put_ref(owner.id, ref, snippet.id)
        else:
            # The ticket names `snippet:<id>` of the id the cached ref gave; `put_snippet`
            # stores nothing if that is not this snippet's key or it changed since.
            await self._cache.put_snippet(snippet, read.ticket)

    async def _load(self, uow: UnitOfWork, owner: User, ref: int) -> Snippet:
        snippet = await uow.snippets.get_by_ref(owner.id, ref)
        if snippet is None or snippet.owner_id != owner.id:
            raise NotFound(_not_found(ref))
        return snippet

    async def _notify(self, uow: UnitOfWork, owner: User, event: Event) -> bool:
        email = email_for(event, self._now())
        if not wants_email(owner, email.kind):
            return False
        await uow.outbox.add(email)
        return True


def _cached(read: CacheRead[Snippet] | None, owner: User, ref: int) -> Snippet | None:
    """The snippet a cache read found; None on a miss (the caller reads the database)."""
    if read is None or read.value is None:
        return None
    return _owned(read.value, owner, ref)


def _owned(snippet: Snippet, owner: User, ref: int) -> Snippet:
    if snippet.owner_id != owner.id or snippet.ref != ref:
        raise NotFound(_not_found(ref))
    return snippet


def _not_found(ref: int) -> str:
    return f"There is no snippet {ref} among yours. Send /list to see them."
