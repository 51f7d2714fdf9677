"""Organising snippets: tags, kept versions with restore, undo of a delete, share links.

Every call names its owner, and anything of someone else (a snippet, a version, a link) is
`NotFound`, worded exactly like a missing one. Changes commit first, then drop the cached
copies they make stale (see `core.snippets`).
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from core.entities import Page, Revision, SharedSnippet, ShareLink, Snippet, SnippetSummary, User
from core.errors import (
    NotFound,
    ShareGone,
    ShareLinkNotFound,
    SnippetGone,
    UndoExpired,
    ValidationError,
    VersionNotKept,
)
from core.ports import Clock, SnippetCache, UnitOfWork, UnitOfWorkFactory
from core.security import hash_secret

SnippetKey = int | UUID
"""A ref (what people type) or an id (buttons, the API); the same as `core.snippets`'."""

MAX_TAGS = 10
MAX_TAG_CHARS = 32
MAX_VERSIONS = 50
"""Versions of one snippet, the current one included; the oldest kept one goes first."""
UNDO_SECONDS = 10 * 60
"""How long a deleted snippet can be brought back; the purge removes it after that."""
SHARE_PAYLOAD_PREFIX = "share_"
"""`/start share_<token>`: 28 characters, never a 22-character verification payload."""
SHARE_EXPIRIES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
DEFAULT_SHARE_EXPIRY = "7d"
MAX_LIVE_SHARES = 100

# A tag: a letter first, then letters, digits and `+#.-_` (c++, c#, node.js, type-hints).
_TAG = re.compile(r"[^\W\d_][\w+#.-]*")
_TITLE_TAG = re.compile(r"(?<!\S)#([^\W\d_][\w+#.-]*)")
_SHARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")


def clean_tag(raw: str) -> str:
    tag = raw.strip().removeprefix("#").lower()
    if not _TAG.fullmatch(tag):
        raise ValidationError(
            f"“{raw.strip()[:40]}” is not a tag: start with a letter, then letters, digits "
            "or + # . - _"
        )
    if len(tag) > MAX_TAG_CHARS:
        raise ValidationError(f"A tag has at most {MAX_TAG_CHARS} characters.")
    return tag


def clean_tags(raw: Iterable[str]) -> tuple[str, ...]:
    tags = tuple(sorted({clean_tag(tag) for tag in raw}))
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"A snippet has at most {MAX_TAGS} tags.")
    return tags


def split_title_tags(title: str) -> tuple[str, tuple[str, ...]]:
    """`Quick sort #python #algo` → (`Quick sort`, (`algo`, `python`))."""
    found = [match.group(1) for match in _TITLE_TAG.finditer(title)]
    if not found:
        return title, ()
    return _TITLE_TAG.sub(" ", title), clean_tags(found)


def first_changed_line(before: str, after: str) -> str:
    """The first line of `after` that differs from `before` (for a version list)."""
    old_lines, new_lines = before.splitlines(), after.splitlines()
    for index, line in enumerate(new_lines):
        if index >= len(old_lines) or old_lines[index] != line:
            return line.strip()
    return "" if len(new_lines) == len(old_lines) else "(lines removed at the end)"


def parse_share_expiry(raw: str) -> tuple[timedelta, bool]:
    """`1h`, `1d`, `7d` or `once` (a single view, within 7 days) → (lifetime, single use)."""
    choice = (raw.strip() or DEFAULT_SHARE_EXPIRY).lower()
    if choice == "once":
        return SHARE_EXPIRIES[DEFAULT_SHARE_EXPIRY], True
    if choice not in SHARE_EXPIRIES:
        raise ValidationError("A link lasts 1h, 1d or 7d, or works once.")
    return SHARE_EXPIRIES[choice], False


@dataclass(frozen=True, slots=True)
class Version:
    """One line of a snippet's history; `is_current` marks the snippet as it is now."""

    number: int
    title: str
    code: str
    language: str
    created_at: datetime
    first_changed_line: str
    is_current: bool


@dataclass(frozen=True, slots=True)
class NewShare:
    link: ShareLink
    token: str
    """Shown once, to the owner; only its hash is stored."""

    @property
    def payload(self) -> str:
        return SHARE_PAYLOAD_PREFIX + self.token


async def keep_version(uow: UnitOfWork, snippet: Snippet) -> None:
    """Keeps `snippet` as it is now, before a change (within the change's transaction)."""
    number = await uow.revisions.last_number(snippet.id) + 1
    await uow.revisions.add(
        Revision(
            snippet_id=snippet.id,
            number=number,
            title=snippet.title,
            code=snippet.code,
            language=snippet.language,
            created_at=snippet.updated_at,
        )
    )
    await uow.revisions.trim(snippet.id, MAX_VERSIONS - 1)


class OrganiseService:
    def __init__(self, uow: UnitOfWorkFactory, cache: SnippetCache, clock: Clock) -> None:
        self._uow = uow
        self._cache = cache
        self._now = clock

    # -- tags ---------------------------------------------------------------------------

    async def tag(self, owner: User, key: SnippetKey, tags: Sequence[str]) -> Snippet:
        return await self._change_tags(owner, key, clean_tags(tags), "add")

    async def untag(self, owner: User, key: SnippetKey, tags: Sequence[str]) -> Snippet:
        return await self._change_tags(owner, key, clean_tags(tags), "remove")

    async def set_tags(self, owner: User, key: SnippetKey, tags: Sequence[str]) -> Snippet:
        """Replaces the snippet's tags (none: no tags)."""
        return await self._change_tags(owner, key, clean_tags(tags), "set")

    async def _change_tags(
        self, owner: User, key: SnippetKey, tags: tuple[str, ...], how: str
    ) -> Snippet:
        if not tags and how != "set":
            raise ValidationError("Name at least one tag.")
        async with self._uow() as uow:
            snippet = await _by_key(uow, owner, key)
            current = set(snippet.tags)
            if how == "set":
                changed = set(tags)
            else:
                changed = current | set(tags) if how == "add" else current - set(tags)
            new_tags = clean_tags(changed)
            if new_tags == snippet.tags:
                return snippet
            await uow.tags.set(owner.id, snippet.id, new_tags)
            await uow.commit()
        # The snippet and the list both show tags: exactly those two keys go stale.
        await self._cache.forget_snippet(owner.id, snippet.id)
        return replace(snippet, tags=new_tags)

    async def tags(self, owner: User) -> list[tuple[str, int]]:
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.tags.counts(owner.id)

    async def filter(
        self, owner: User, tag: str | None, text: str | None, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        wanted = clean_tag(tag) if tag is not None else None
        words = " ".join((text or "").split())
        if len(words) > 200:
            raise ValidationError("Search for at most 200 characters.")
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.snippets.filter(owner.id, wanted, words or None, offset, limit)

    async def matching(self, owner: User, text: str, limit: int) -> list[Snippet]:
        """The owner's snippets matching `text` (title, code or tag; empty: the newest), with
        their code, newest first."""
        words = " ".join(text.split())[:200]
        async with self._uow() as uow:
            await uow.autocommit()
            page = await uow.snippets.filter(owner.id, None, words or None, 0, limit)
            found = [await uow.snippets.get(item.id) for item in page.items]
        return [snippet for snippet in found if snippet is not None]

    # -- versions -------------------------------------------------------------------------

    async def history(self, owner: User, key: SnippetKey) -> tuple[Snippet, list[Version]]:
        """The snippet and its versions, oldest first, the current one last."""
        async with self._uow() as uow:
            await uow.autocommit()
            snippet = await _by_key(uow, owner, key)
            kept = await uow.revisions.list(snippet.id)
        return snippet, _versions(snippet, kept)

    async def version(self, owner: User, key: SnippetKey, number: int) -> tuple[Snippet, Version]:
        async with self._uow() as uow:
            await uow.autocommit()
            snippet = await _by_key(uow, owner, key)
            kept = await uow.revisions.list(snippet.id)
        for version in _versions(snippet, kept):
            if version.number == number:
                return snippet, version
        raise VersionNotKept(key, number)

    async def restore(self, owner: User, key: SnippetKey, number: int) -> Snippet:
        """Makes kept version `number` the current one; the current one is kept first."""
        async with self._uow() as uow:
            snippet = await _by_key(uow, owner, key)
            revision = await uow.revisions.get(snippet.id, number)
            if revision is None:
                raise VersionNotKept(key, number)
            before = snippet
            snippet = replace(
                snippet,
                title=revision.title,
                code=revision.code,
                language=revision.language,
                updated_at=self._now(),
            )
            await uow.snippets.update(snippet)  # first: its row lock orders concurrent changes
            await keep_version(uow, before)
            await uow.commit()
        await self._cache.forget_snippet(owner.id, snippet.id)
        return snippet

    # -- undo of a delete -----------------------------------------------------------------

    async def undelete(self, owner: User, key: SnippetKey) -> Snippet:
        since = self._now() - timedelta(seconds=UNDO_SECONDS)
        async with self._uow() as uow:
            snippet = await uow.snippets.get_deleted(owner.id, key, since)
            if snippet is None:
                raise UndoExpired(key)
            if not await uow.snippets.undelete(snippet.id):
                raise UndoExpired(key)  # the purge (or another undo) came first
            await uow.commit()
        await self._cache.forget_snippet(owner.id, snippet.id)
        return snippet

    async def purge_deleted(self) -> int:
        """Removes for good what was deleted longer than the undo window ago."""
        before = self._now() - timedelta(seconds=UNDO_SECONDS)
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.snippets.purge_deleted(before)

    # -- share links ------------------------------------------------------------------------

    async def share(self, owner: User, key: SnippetKey, expiry: str = "") -> NewShare:
        lifetime, single_use = parse_share_expiry(expiry)
        token = secrets.token_urlsafe(16)  # 128 random bits
        now = self._now()
        async with self._uow() as uow:
            snippet = await _by_key(uow, owner, key)
            if len(await uow.shares.live(owner.id, now)) >= MAX_LIVE_SHARES:
                raise ValidationError(f"You have {MAX_LIVE_SHARES} live links; revoke some first.")
            link = ShareLink(
                id=uuid.uuid4(),
                token_hash=hash_secret(token),
                snippet_id=snippet.id,
                owner_id=owner.id,
                created_at=now,
                expires_at=now + lifetime,
                single_use=single_use,
                snippet_ref=snippet.ref,
                snippet_title=snippet.title,
            )
            await uow.shares.add(link)
            await uow.commit()
        return NewShare(link, token)

    async def shares(self, owner: User) -> list[ShareLink]:
        async with self._uow() as uow:
            await uow.autocommit()
            return await uow.shares.live(owner.id, self._now())

    async def revoke_share(self, owner: User, link_id: UUID) -> None:
        async with self._uow() as uow:
            await uow.autocommit()
            if not await uow.shares.revoke(owner.id, link_id, self._now()):
                raise ShareLinkNotFound(link_id)

    async def unshare(self, owner: User, key: SnippetKey) -> int:
        async with self._uow() as uow:
            snippet = await _by_key(uow, owner, key)
            count = await uow.shares.revoke_snippet(snippet.id, self._now())
            await uow.commit()
        return count

    async def open_share(self, payload_or_token: str) -> SharedSnippet:
        """What a share link shows, to anyone; every kind of dead link is `ShareGone`. A
        single-use link is used up by this view."""
        token_hash = _share_hash(payload_or_token)
        now = self._now()
        async with self._uow() as uow:
            link, shared = await _live_share(uow, token_hash, now)
            if link.single_use and not await uow.shares.use(link.id, now):
                raise ShareGone
            await uow.commit()
        return shared

    async def is_single_use_share(self, payload_or_token: str) -> bool:
        """Whether a live link works once, without using it (a web page asks before showing
        it: link previews fetch URLs too). `ShareGone` for a dead link."""
        token_hash = _share_hash(payload_or_token)
        async with self._uow() as uow:
            await uow.autocommit()
            link, _ = await _live_share(uow, token_hash, self._now())
        return link.single_use


def _share_hash(payload_or_token: str) -> str:
    token = payload_or_token.strip().removeprefix(SHARE_PAYLOAD_PREFIX)
    if not _SHARE_TOKEN.fullmatch(token):
        raise ShareGone
    return hash_secret(token)


async def _live_share(
    uow: UnitOfWork, token_hash: str, now: datetime
) -> tuple[ShareLink, SharedSnippet]:
    found = await uow.shares.open(token_hash, now)
    # The database found it by its hash; the comparison that decides is constant-time.
    if found is None or not hmac.compare_digest(found[0].token_hash, token_hash):
        raise ShareGone
    return found


def _versions(snippet: Snippet, kept: list[Revision]) -> list[Version]:
    states = [(r.number, r.title, r.code, r.language, r.created_at) for r in kept]
    current_number = (kept[-1].number + 1) if kept else 1
    states.append(
        (current_number, snippet.title, snippet.code, snippet.language, snippet.updated_at)
    )
    versions = []
    previous_code: str | None = None
    for number, title, code, language, created_at in states:
        changed = (
            (code.strip().splitlines() or [""])[0].strip()
            if previous_code is None
            else first_changed_line(previous_code, code)
        )
        versions.append(
            Version(
                number=number,
                title=title,
                code=code,
                language=language,
                created_at=created_at,
                first_changed_line=changed,
                is_current=number == current_number,
            )
        )
        previous_code = code
    return versions


async def load_owned(uow: UnitOfWork, owner: User, key: SnippetKey) -> Snippet:
    """The owner's live snippet named by ref or id; `NotFound` if missing or someone else's."""
    if isinstance(key, UUID):
        snippet = await uow.snippets.get(key)
    else:
        snippet = await uow.snippets.get_by_ref(owner.id, key)
    if snippet is None or snippet.owner_id != owner.id:
        raise NotFound(key)
    return snippet


async def _by_key(uow: UnitOfWork, owner: User, key: SnippetKey) -> Snippet:
    try:
        return await load_owned(uow, owner, key)
    except NotFound:
        if isinstance(key, UUID):
            raise SnippetGone(key) from None  # one answer for any id: none is told from another's
        raise
