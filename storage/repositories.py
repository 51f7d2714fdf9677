"""The repositories of `core.ports`, over one connection whose transaction the unit of work owns.

None of them commits. Every statement goes through `_Repository._execute`, the one place where
connection failures become `StorageUnavailable`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from core.accounts import normalise_email
from core.entities import (
    ChatFlow,
    Client,
    ClientKind,
    OneTimeToken,
    OutboxStatus,
    OutgoingEmail,
    Page,
    Session,
    Snippet,
    SnippetSummary,
    TokenPurpose,
    User,
)
from core.errors import EmailTaken, FlowConflict
from core.ports import Clock, SessionRecord
from storage.errors import unavailable_as_domain_error
from storage.mapping import Columns, columns_for, from_columns, from_row, values_of
from storage.models import (
    chat_flows,
    login_attempts,
    one_time_tokens,
    outbox,
    sessions,
    snippet_tags,
    snippets,
    users,
)

LIKE_ESCAPE = "\\"


class _Repository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def _execute(
        self, statement: sa.Executable, parameters: dict[str, Any] | None = None
    ) -> CursorResult[Any]:
        with unavailable_as_domain_error():
            return await self._connection.execute(statement, parameters)

    async def _execute_many(self, statement: sa.Executable, rows: Sequence[dict[str, Any]]) -> None:
        """One statement for many rows (the driver batches them)."""
        with unavailable_as_domain_error():
            await self._connection.execute(statement, list(rows))

    def _upsert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that understands ON CONFLICT, in the dialect of this connection."""
        if self._connection.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


class SqlUserRepository(_Repository):
    async def add(self, user: User) -> None:
        # ON CONFLICT keeps the transaction usable (a failed INSERT would abort it on Postgres).
        statement = (
            self._upsert(users)
            .values({**values_of(user), "email": normalise_email(user.email), "snippet_seq": 0})
            .on_conflict_do_nothing(index_elements=[users.c.email])
        )
        result = await self._execute(statement)
        if result.rowcount == 0:
            raise EmailTaken("An account with this email already exists.")

    async def get(self, user_id: UUID) -> User | None:
        result = await self._execute(sa.select(*_USER_COLUMNS).where(users.c.id == user_id))
        row = result.one_or_none()
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        result = await self._execute(
            sa.select(*_USER_COLUMNS).where(users.c.email == normalise_email(email))
        )
        row = result.one_or_none()
        return _user(row) if row else None

    async def set_verified(self, user_id: UUID) -> None:
        await self._execute(sa.update(users).where(users.c.id == user_id).values(is_verified=True))

    async def set_password(self, user_id: UUID, hashed_password: str) -> None:
        await self._execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(
                hashed_password=hashed_password,
                password_generation=users.c.password_generation + 1,
            )
        )

    async def next_snippet_ref(self, user_id: UUID) -> int:
        return await self.reserve_snippet_refs(user_id, 1)

    async def reserve_snippet_refs(self, user_id: UUID, count: int) -> int:
        # One statement: the row lock serialises concurrent callers, each sees the last value.
        result = await self._execute(_RESERVE_SNIPPET_REFS, {"user_id": user_id, "count": count})
        last = result.scalar_one_or_none()
        if last is None:
            raise LookupError(f"no user {user_id}")
        return int(last) - count + 1


_USER_COLUMNS = columns_for(users, User)
# Built once, values bound per call (see `snippet_reads`): every /save runs both.
_RESERVE_SNIPPET_REFS = (
    sa.update(users)
    .where(users.c.id == sa.bindparam("user_id"))
    .values(snippet_seq=users.c.snippet_seq + sa.bindparam("count", type_=sa.Integer))
    .returning(users.c.snippet_seq)
)
_INSERT_SNIPPET = sa.insert(snippets)


def _user(row: Row[Any]) -> User:
    return from_row(User, row)


def _snippet_row(snippet: Snippet) -> dict[str, Any]:
    # Tags live in a table of their own (see `SqlTagRepository`).
    row = values_of(snippet)
    del row["tags"]
    return row


class SqlSnippetRepository(_Repository):
    async def add(self, snippet: Snippet) -> None:
        await self._execute(_INSERT_SNIPPET, _snippet_row(snippet))

    async def add_all(self, snippets: Sequence[Snippet]) -> None:
        if snippets:
            await self._execute_many(_INSERT_SNIPPET, [_snippet_row(s) for s in snippets])

    async def get(self, snippet_id: UUID) -> Snippet | None:
        statement = snippet_reads(self._connection.dialect.name).by_id
        return await self._fetch_one(statement, {"snippet_id": snippet_id})

    async def get_by_ref(self, owner_id: UUID, ref: int) -> Snippet | None:
        statement = snippet_reads(self._connection.dialect.name).by_ref
        return await self._fetch_one(statement, {"owner_id": owner_id, "ref": ref})

    async def list(self, owner_id: UUID, offset: int, limit: int) -> Page[SnippetSummary]:
        return await self._page(sa.and_(snippets.c.owner_id == owner_id, _LIVE), offset, limit)

    async def search(
        self, owner_id: UUID, text: str, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        # Title or code only: an OR with the tags would keep Postgres off the trigram indexes.
        return await self._page(
            sa.and_(snippets.c.owner_id == owner_id, _LIVE, _title_or_code(text)), offset, limit
        )

    async def filter(
        self, owner_id: UUID, tag: str | None, text: str | None, offset: int, limit: int
    ) -> Page[SnippetSummary]:
        conditions = [snippets.c.owner_id == owner_id, _LIVE]
        if tag is not None:
            conditions.append(_tagged(tag))
        if text:
            word = text.lower().removeprefix("#")
            conditions.append(sa.or_(_title_or_code(text), _tagged(word)))
        return await self._page(sa.and_(*conditions), offset, limit)

    async def all_of(self, owner_id: UUID) -> Sequence[Snippet]:
        rows = (
            await self._execute(
                sa.select(snippets, self._tags_column())
                .where(snippets.c.owner_id == owner_id, _LIVE)
                .order_by(snippets.c.created_at, snippets.c.ref)
            )
        ).all()
        return [snippet_from(row._mapping) for row in rows]

    async def update(self, snippet: Snippet) -> None:
        await self._execute(
            sa.update(snippets)
            .where(snippets.c.id == snippet.id)
            .values(
                title=snippet.title,
                code=snippet.code,
                language=snippet.language,
                updated_at=snippet.updated_at,
            )
        )

    async def delete(self, snippet_id: UUID) -> None:
        await self._execute(sa.delete(snippets).where(snippets.c.id == snippet_id))

    async def soft_delete(self, snippet_id: UUID, at: datetime) -> None:
        await self._execute(
            sa.update(snippets).where(snippets.c.id == snippet_id, _LIVE).values(deleted_at=at)
        )

    async def get_deleted(self, owner_id: UUID, key: UUID | int, since: datetime) -> Snippet | None:
        named = snippets.c.id == key if isinstance(key, UUID) else snippets.c.ref == key
        return await self._one(
            named, snippets.c.owner_id == owner_id, snippets.c.deleted_at >= since
        )

    async def undelete(self, snippet_id: UUID) -> bool:
        result = await self._execute(
            sa.update(snippets)
            .where(snippets.c.id == snippet_id, snippets.c.deleted_at.is_not(None))
            .values(deleted_at=None)
        )
        return result.rowcount == 1

    async def purge_deleted(self, before: datetime) -> int:
        result = await self._execute(
            sa.delete(snippets).where(
                snippets.c.deleted_at.is_not(None), snippets.c.deleted_at < before
            )
        )
        return int(result.rowcount or 0)

    async def _one(self, *conditions: sa.ColumnElement[bool]) -> Snippet | None:
        return await self._fetch_one(sa.select(snippets, self._tags_column()).where(*conditions))

    async def _fetch_one(
        self, statement: sa.Select[Any], parameters: dict[str, Any] | None = None
    ) -> Snippet | None:
        row = (await self._execute(statement, parameters)).one_or_none()
        return snippet_from(row._mapping) if row else None

    def _tags_column(self) -> sa.Label[Any]:
        return _tags_column(self._connection.dialect.name)

    async def _page(
        self, condition: sa.ColumnElement[bool], offset: int, limit: int
    ) -> Page[SnippetSummary]:
        # The page and the total in one statement (the filter runs once, in one round trip).
        rows = (
            await self._execute(
                sa.select(
                    snippets.c.id,
                    snippets.c.ref,
                    snippets.c.title,
                    snippets.c.language,
                    snippets.c.created_at,
                    self._tags_column(),
                    sa.func.count().over().label("total"),
                )
                .where(condition)
                .order_by(snippets.c.created_at.desc(), snippets.c.ref.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        items = tuple(from_row(SnippetSummary, row, tags=split_tags(row.tags)) for row in rows)
        if rows:
            total = int(rows[0].total)
        elif offset == 0:
            total = 0
        else:  # a page past the end carries no count: ask for it (rare)
            counted = await self._execute(
                sa.select(sa.func.count()).select_from(snippets).where(condition)
            )
            total = int(counted.scalar_one())
        return Page(items=items, total=total, offset=offset, limit=limit)


_LIVE = snippets.c.deleted_at.is_(None)
"""A deleted snippet waits for an undo, hidden from every read but `get_deleted`."""


def _tags_column(dialect_name: str) -> sa.Label[Any]:
    """The snippet's tags as one space-separated string, in the same statement."""
    if dialect_name == "postgresql":
        joined: sa.ColumnElement[Any] = sa.func.string_agg(snippet_tags.c.tag, " ")
    else:
        joined = sa.func.group_concat(snippet_tags.c.tag, " ")
    return (
        sa.select(joined)
        .where(snippet_tags.c.snippet_id == snippets.c.id)
        .scalar_subquery()
        .label("tags")
    )


@dataclass(frozen=True, slots=True)
class SnippetReads:
    by_id: sa.Select[Any]
    by_ref: sa.Select[Any]


@functools.cache
def snippet_reads(dialect_name: str) -> SnippetReads:
    """Built once per dialect, values bound per call: /get reads by ref on every cache miss, and
    building the statement (and its cache key) costs more CPU than the round trip's own work."""
    snippet = sa.select(snippets, _tags_column(dialect_name))
    return SnippetReads(
        by_id=snippet.where(snippets.c.id == sa.bindparam("snippet_id"), _LIVE),
        by_ref=snippet.where(
            snippets.c.owner_id == sa.bindparam("owner_id"),
            snippets.c.ref == sa.bindparam("ref"),
            _LIVE,
        ),
    )


def _title_or_code(text: str) -> sa.ColumnElement[bool]:
    # lower(column) LIKE lower(pattern): the shape the trigram indexes (0002) serve.
    pattern = sa.func.lower(f"%{escape_like(text)}%")
    return sa.or_(
        sa.func.lower(snippets.c.title).like(pattern, escape=LIKE_ESCAPE),
        sa.func.lower(snippets.c.code).like(pattern, escape=LIKE_ESCAPE),
    )


def _tagged(tag: str) -> sa.ColumnElement[bool]:
    return sa.exists().where(snippet_tags.c.snippet_id == snippets.c.id, snippet_tags.c.tag == tag)


def split_tags(joined: str | None) -> tuple[str, ...]:
    return tuple(sorted(joined.split())) if joined else ()


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (escape character: backslash)."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def snippet_from(values: Columns) -> Snippet:
    """A row of the snippets table with its `tags` column (`snippet_reads`' statements and the
    others that select it), from SQLAlchemy or from the bare driver."""
    return from_columns(Snippet, values, tags=split_tags(values["tags"]))


_PARENT = sessions.alias("parent")
_ACCOUNT_COLUMNS = tuple(column.label(f"account_{column.name}") for column in _USER_COLUMNS)
# "up_", not "parent_": the sessions table has a `parent_jti` column of its own.
_PARENT_COLUMNS = tuple(column.label(f"up_{column.name}") for column in _PARENT.c)
# Built once: building a statement costs more CPU than SQLAlchemy's compiled cache saves, and
# these run on every command or API call (/get writes the outbox row). Values bound per call.
LATEST_FOR_CLIENT = (
    sa.select(*sessions.c, *_ACCOUNT_COLUMNS)
    .join(users, users.c.id == sessions.c.user_id)
    .where(
        sessions.c.client_kind == sa.bindparam("client_kind"),
        sessions.c.client_key == sa.bindparam("client_key"),
        sessions.c.revoked_at.is_(None),
    )
    .order_by(sessions.c.issued_at.desc())
    .limit(1)
)
FIND_SESSION = (
    sa.select(*sessions.c, *_ACCOUNT_COLUMNS, *_PARENT_COLUMNS)
    .join(users, users.c.id == sessions.c.user_id)
    .outerjoin(_PARENT, _PARENT.c.jti == sessions.c.parent_jti)
    .where(sessions.c.jti == sa.bindparam("jti"))
)
OUTBOX_INSERT = sa.insert(outbox)


class SqlSessionRepository(_Repository):
    async def add(self, session: Session) -> None:
        await self._execute(
            sa.insert(sessions).values(
                jti=session.jti,
                user_id=session.user_id,
                client_kind=session.client_kind.value,
                client_key=session.client_key,
                token=session.token,
                issued_at=session.issued_at,
                expires_at=session.expires_at,
                revoked_at=session.revoked_at,
                parent_jti=session.parent_jti,
                password_generation=session.password_generation,
            )
        )

    async def find(self, jti: str) -> SessionRecord | None:
        # Inner join on the user (the foreign key cascades), outer on the parent (optional).
        row = (await self._execute(FIND_SESSION, {"jti": jti})).one_or_none()
        return None if row is None else found_session(row._mapping)

    async def latest_for_client(self, client: Client) -> SessionRecord | None:
        if client.binding is None:
            return None  # API sessions are bound to no caller: there is no "latest"
        result = await self._execute(
            LATEST_FOR_CLIENT, {"client_kind": client.kind.value, "client_key": client.binding}
        )
        row = result.one_or_none()
        return None if row is None else session_record(row._mapping)

    async def revoke(self, jti: str, at: datetime) -> None:
        await self._revoke_where(sessions.c.jti == jti, at)

    async def revoke_client(self, client: Client, at: datetime) -> None:
        if client.binding is None:
            raise ValueError("API sessions are bound to no caller: revoke them by jti")
        await self._revoke_where(
            sa.and_(
                sessions.c.client_kind == client.kind.value,
                sessions.c.client_key == client.binding,
            ),
            at,
        )

    async def revoke_user(self, user_id: UUID, at: datetime) -> None:
        await self._revoke_where(sessions.c.user_id == user_id, at)

    async def _revoke_where(self, condition: sa.ColumnElement[bool], at: datetime) -> None:
        await self._execute(
            sa.update(sessions)
            .where(condition, sessions.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )


def found_session(values: Columns) -> SessionRecord:
    """A row of `FIND_SESSION`, from SQLAlchemy or from the bare driver (`storage.bare`)."""
    parent = _session(values, "up_") if values["up_jti"] is not None else None
    return SessionRecord(_session(values), _account(values), parent)


def session_record(values: Columns) -> SessionRecord:
    """A row of `LATEST_FOR_CLIENT`, from SQLAlchemy or from the bare driver (`storage.bare`)."""
    return SessionRecord(_session(values), _account(values))


def _account(values: Columns) -> User:
    return User(
        id=values["account_id"],
        email=values["account_email"],
        hashed_password=values["account_hashed_password"],
        is_verified=values["account_is_verified"],
        created_at=values["account_created_at"],
        password_generation=values["account_password_generation"],
    )


def _session(values: Columns, prefix: str = "") -> Session:
    return Session(
        jti=values[f"{prefix}jti"],
        user_id=values[f"{prefix}user_id"],
        client_kind=ClientKind(values[f"{prefix}client_kind"]),
        client_key=values[f"{prefix}client_key"],
        token=values[f"{prefix}token"],
        issued_at=values[f"{prefix}issued_at"],
        expires_at=values[f"{prefix}expires_at"],
        revoked_at=values[f"{prefix}revoked_at"],
        parent_jti=values[f"{prefix}parent_jti"],
        password_generation=values[f"{prefix}password_generation"],
    )


class SqlOneTimeTokenRepository(_Repository):
    async def add(self, token: OneTimeToken) -> None:
        await self._execute(
            sa.insert(one_time_tokens).values(
                token_hash=token.token_hash,
                user_id=token.user_id,
                purpose=token.purpose.value,
                created_at=token.created_at,
                expires_at=token.expires_at,
                used_at=token.used_at,
            )
        )

    async def get(self, token_hash: str) -> OneTimeToken | None:
        result = await self._execute(
            sa.select(one_time_tokens).where(one_time_tokens.c.token_hash == token_hash)
        )
        row = result.one_or_none()
        if row is None:
            return None
        return OneTimeToken(
            token_hash=row.token_hash,
            user_id=row.user_id,
            purpose=TokenPurpose(row.purpose),
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    async def use_all(self, user_id: UUID, purpose: TokenPurpose, at: datetime) -> None:
        await self._execute(
            sa.update(one_time_tokens)
            .where(
                one_time_tokens.c.user_id == user_id,
                one_time_tokens.c.purpose == purpose.value,
                one_time_tokens.c.used_at.is_(None),
            )
            .values(used_at=at)
        )

    async def count_since(self, user_id: UUID, purpose: TokenPurpose, since: datetime) -> int:
        result = await self._execute(
            sa.select(sa.func.count())
            .select_from(one_time_tokens)
            .where(
                one_time_tokens.c.user_id == user_id,
                one_time_tokens.c.purpose == purpose.value,
                one_time_tokens.c.created_at >= since,
            )
        )
        return int(result.scalar_one())


class SqlAttemptRepository(_Repository):
    async def add(self, key: str, at: datetime) -> int:
        result = await self._execute(
            sa.insert(login_attempts).values(key=key, at=at).returning(login_attempts.c.id)
        )
        return int(result.scalar_one())

    async def latest_since(
        self, key: str, since: datetime, *, excluding: int | None = None
    ) -> datetime | None:
        statement = sa.select(sa.func.max(login_attempts.c.at)).where(
            login_attempts.c.key == key, login_attempts.c.at >= since
        )
        if excluding is not None:
            statement = statement.where(login_attempts.c.id != excluding)
        latest: datetime | None = (await self._execute(statement)).scalar_one_or_none()
        return latest

    async def discard(self, attempt_ids: Sequence[int]) -> None:
        if attempt_ids:
            await self._execute(
                sa.delete(login_attempts).where(login_attempts.c.id.in_(list(attempt_ids)))
            )

    async def count_since(self, key: str, since: datetime) -> int:
        result = await self._execute(
            sa.select(sa.func.count())
            .select_from(login_attempts)
            .where(login_attempts.c.key == key, login_attempts.c.at >= since)
        )
        return int(result.scalar_one())

    async def oldest_since(self, key: str, since: datetime) -> datetime | None:
        result = await self._execute(
            sa.select(login_attempts.c.at)
            .where(login_attempts.c.key == key, login_attempts.c.at >= since)
            .order_by(login_attempts.c.at)
            .limit(1)
        )
        oldest: datetime | None = result.scalar_one_or_none()
        return oldest

    async def clear(self, key: str) -> None:
        await self._execute(sa.delete(login_attempts).where(login_attempts.c.key == key))

    async def purge_before(self, before: datetime, *, sparing: str = "") -> int:
        statement = sa.delete(login_attempts).where(login_attempts.c.at < before)
        if sparing:
            statement = statement.where(
                sa.not_(login_attempts.c.key.startswith(sparing, autoescape=True))
            )
        result = await self._execute(statement)
        return int(result.rowcount or 0)


class SqlFlowRepository(_Repository):
    def __init__(self, connection: AsyncConnection, clock: Clock) -> None:
        super().__init__(connection)
        self._clock = clock

    async def get(self, chat_id: int) -> ChatFlow | None:
        result = await self._execute(
            sa.select(chat_flows).where(chat_flows.c.chat_id == chat_id, self._live())
        )
        row = result.one_or_none()
        if row is None:
            return None
        return ChatFlow(
            chat_id=row.chat_id,
            name=row.name,
            step=row.step,
            data=dict(row.data),
            version=row.version,
            expires_at=row.expires_at,
        )

    async def save(self, flow: ChatFlow) -> ChatFlow:
        values: Mapping[str, Any] = {
            "name": flow.name,
            "step": flow.step,
            "data": dict(flow.data),
            "version": flow.version + 1,
            "expires_at": flow.expires_at,
        }
        if flow.version == 0:
            stored = await self._insert(flow.chat_id, values)
        else:
            result = await self._execute(
                sa.update(chat_flows)
                .where(chat_flows.c.chat_id == flow.chat_id, chat_flows.c.version == flow.version)
                .values(**values)
            )
            stored = result.rowcount == 1
        if not stored:
            raise FlowConflict("This step was changed meanwhile; please send that again.")
        return ChatFlow(
            chat_id=flow.chat_id,
            name=flow.name,
            step=flow.step,
            data=dict(flow.data),
            version=flow.version + 1,
            expires_at=flow.expires_at,
        )

    async def delete(self, chat_id: int) -> None:
        await self._execute(sa.delete(chat_flows).where(chat_flows.c.chat_id == chat_id))

    async def _insert(self, chat_id: int, values: Mapping[str, Any]) -> bool:
        """Starts a flow; an expired leftover gives way, a live one (a concurrent start) wins."""
        insert = self._upsert(chat_flows).values(chat_id=chat_id, **values)
        statement: Insert = insert.on_conflict_do_update(
            index_elements=[chat_flows.c.chat_id],
            set_=values,
            where=~self._live(),
        ).returning(chat_flows.c.chat_id)
        result = await self._execute(statement)
        return result.one_or_none() is not None

    def _live(self) -> sa.ColumnElement[bool]:
        return sa.or_(chat_flows.c.expires_at.is_(None), chat_flows.c.expires_at > self._clock())


class SqlOutbox(_Repository):
    async def add(self, email: OutgoingEmail) -> None:
        await self._execute(OUTBOX_INSERT, outbox_values(email))


def outbox_values(email: OutgoingEmail) -> dict[str, Any]:
    """The values of `OUTBOX_INSERT` for a newly queued email."""
    return {
        "id": email.id,
        "message_id": email.message_id,
        "recipient": email.to,
        "kind": email.kind.value,
        "context": email.context,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": email.created_at,
        "created_at": email.created_at,
    }
