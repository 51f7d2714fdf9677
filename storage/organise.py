"""The repositories of tags, kept versions and share links (`core.ports`), on the unit of
work's connection. None of them commits."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Row

from core.entities import Revision, SharedSnippet, ShareLink
from storage.mapping import from_row, values_of
from storage.models import share_links, snippet_revisions, snippet_tags, snippets
from storage.repositories import _Repository

_LIVE_SNIPPET = snippets.c.deleted_at.is_(None)


class SqlTagRepository(_Repository):
    async def set(self, owner_id: UUID, snippet_id: UUID, tags: Sequence[str]) -> None:
        await self._execute(sa.delete(snippet_tags).where(snippet_tags.c.snippet_id == snippet_id))
        await self.add_all(owner_id, {snippet_id: tags})

    async def add_all(self, owner_id: UUID, tags: Mapping[UUID, Sequence[str]]) -> None:
        rows = [
            {"snippet_id": snippet_id, "owner_id": owner_id, "tag": tag}
            for snippet_id, names in tags.items()
            for tag in names
        ]
        if rows:
            # Two changes at once may both insert a tag: the second one is a no-op, not an error.
            await self._execute_many(
                self._upsert(snippet_tags).on_conflict_do_nothing(
                    index_elements=[snippet_tags.c.snippet_id, snippet_tags.c.tag]
                ),
                rows,
            )

    async def counts(self, owner_id: UUID) -> list[tuple[str, int]]:
        count = sa.func.count().label("count")
        rows = (
            await self._execute(
                sa.select(snippet_tags.c.tag, count)
                .join(snippets, snippets.c.id == snippet_tags.c.snippet_id)
                .where(snippet_tags.c.owner_id == owner_id, _LIVE_SNIPPET)
                .group_by(snippet_tags.c.tag)
                .order_by(count.desc(), snippet_tags.c.tag)
            )
        ).all()
        return [(str(row.tag), int(row._mapping["count"])) for row in rows]


class SqlRevisionRepository(_Repository):
    async def add(self, revision: Revision) -> None:
        await self.add_all([revision])

    async def add_all(self, revisions: Sequence[Revision]) -> None:
        if revisions:
            # A number taken meanwhile (two edits racing on SQLite) keeps the first: no error.
            await self._execute_many(
                self._upsert(snippet_revisions).on_conflict_do_nothing(
                    index_elements=[snippet_revisions.c.snippet_id, snippet_revisions.c.number]
                ),
                [values_of(revision) for revision in revisions],
            )

    async def last_number(self, snippet_id: UUID) -> int:
        result = await self._execute(
            sa.select(sa.func.max(snippet_revisions.c.number)).where(
                snippet_revisions.c.snippet_id == snippet_id
            )
        )
        return int(result.scalar_one_or_none() or 0)

    async def list(self, snippet_id: UUID) -> list[Revision]:
        rows = (
            await self._execute(
                sa.select(snippet_revisions)
                .where(snippet_revisions.c.snippet_id == snippet_id)
                .order_by(snippet_revisions.c.number)
            )
        ).all()
        return [_revision(row) for row in rows]

    async def of_owner(self, owner_id: UUID) -> dict[UUID, builtins.list[Revision]]:
        rows = (
            await self._execute(
                sa.select(snippet_revisions)
                .join(snippets, snippets.c.id == snippet_revisions.c.snippet_id)
                .where(snippets.c.owner_id == owner_id, _LIVE_SNIPPET)
                .order_by(snippet_revisions.c.snippet_id, snippet_revisions.c.number)
            )
        ).all()
        kept: dict[UUID, builtins.list[Revision]] = {}
        for row in rows:
            kept.setdefault(row.snippet_id, []).append(_revision(row))
        return kept

    async def get(self, snippet_id: UUID, number: int) -> Revision | None:
        result = await self._execute(
            sa.select(snippet_revisions).where(
                snippet_revisions.c.snippet_id == snippet_id,
                snippet_revisions.c.number == number,
            )
        )
        row = result.one_or_none()
        return _revision(row) if row else None

    async def trim(self, snippet_id: UUID, keep: int) -> None:
        newest = (
            sa.select(snippet_revisions.c.number)
            .where(snippet_revisions.c.snippet_id == snippet_id)
            .order_by(snippet_revisions.c.number.desc())
            .limit(keep)
            .scalar_subquery()
        )
        await self._execute(
            sa.delete(snippet_revisions).where(
                snippet_revisions.c.snippet_id == snippet_id,
                snippet_revisions.c.number.not_in(newest),
            )
        )


def _revision(row: Row[Any]) -> Revision:
    return from_row(Revision, row)


class SqlShareRepository(_Repository):
    async def add(self, link: ShareLink) -> None:
        # The snippet's ref and title are read from the snippet, never stored with the link.
        row = values_of(link)
        del row["snippet_ref"], row["snippet_title"]
        await self._execute(sa.insert(share_links).values(**row))

    async def open(self, token_hash: str, now: datetime) -> tuple[ShareLink, SharedSnippet] | None:
        result = await self._execute(
            self._with_snippet().where(share_links.c.token_hash == token_hash, *_live_link(now))
        )
        row = result.one_or_none()
        if row is None:
            return None
        return _link(row), SharedSnippet(row.title, row.language, row.code)

    async def use(self, link_id: UUID, at: datetime) -> bool:
        result = await self._execute(
            sa.update(share_links)
            .where(share_links.c.id == link_id, share_links.c.used_at.is_(None))
            .values(used_at=at)
        )
        return result.rowcount == 1

    async def live(self, owner_id: UUID, now: datetime) -> list[ShareLink]:
        rows = (
            await self._execute(
                self._with_snippet()
                .where(share_links.c.owner_id == owner_id, *_live_link(now))
                .order_by(share_links.c.created_at.desc())
            )
        ).all()
        return [_link(row) for row in rows]

    async def revoke(self, owner_id: UUID, link_id: UUID, at: datetime) -> bool:
        result = await self._execute(
            sa.update(share_links)
            .where(
                share_links.c.id == link_id,
                share_links.c.owner_id == owner_id,
                share_links.c.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )
        return result.rowcount == 1

    async def revoke_snippet(self, snippet_id: UUID, at: datetime) -> int:
        result = await self._execute(
            sa.update(share_links)
            .where(share_links.c.snippet_id == snippet_id, share_links.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return int(result.rowcount or 0)

    @staticmethod
    def _with_snippet() -> sa.Select[Any]:
        return sa.select(
            *share_links.c,
            snippets.c.ref,
            snippets.c.title,
            snippets.c.language,
            snippets.c.code,
        ).join(snippets, snippets.c.id == share_links.c.snippet_id)


def _live_link(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        share_links.c.revoked_at.is_(None),
        share_links.c.used_at.is_(None),
        share_links.c.expires_at > now,
        _LIVE_SNIPPET,
    )


def _link(row: Row[Any]) -> ShareLink:
    return from_row(ShareLink, row, snippet_ref=row.ref, snippet_title=row.title)
