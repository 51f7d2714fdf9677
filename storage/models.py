"""The tables, as SQLAlchemy declarative models; the migrations are the source of the schema.

Queries use these as Core tables (`Model.__table__` columns through `select`/`insert`/`update`),
so there is no identity map to go stale: every read sees what the transaction sees.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend.

    SQLite keeps no zone (it would silently drop one), so values are stored as naive UTC there
    and made aware again on the way out; core only ever sees aware UTC datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        datetime: UTCDateTime(),
        uuid.UUID: sa.Uuid(),
        dict[str, Any]: sa.JSON(),
    }


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    """Normalised (lower-case) by the repository, so the unique index is case-insensitive."""
    hashed_password: Mapped[str] = mapped_column(sa.String(255))
    is_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime]
    snippet_seq: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    """The last snippet ref handed out; refs are never reused, even after a delete."""
    password_generation: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    """Bumped by every password change; sessions remember the one they were made under."""


sa.Index("uq_users_email", UserRow.email, unique=True)


class SnippetRow(Base):
    __tablename__ = "snippets"
    __table_args__ = (sa.UniqueConstraint("owner_id", "ref"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    ref: Mapped[int]
    title: Mapped[str] = mapped_column(sa.Text)
    code: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    """Set by a delete; the snippet is hidden until an undo, then purged (migration 0004)."""


sa.Index(
    "ix_snippets_owner_newest",
    SnippetRow.owner_id,
    SnippetRow.created_at.desc(),
    SnippetRow.ref.desc(),
)


class SessionRow(Base):
    __tablename__ = "sessions"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_kind: Mapped[str] = mapped_column(sa.String(16))
    """`core.entities.ClientKind`: the edge the session works through."""
    client_key: Mapped[str | None] = mapped_column(sa.String(64))
    """The chat a chat session is bound to; NULL for an API session."""
    token: Mapped[str] = mapped_column(sa.Text)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    parent_jti: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    """The session this one was opened from, and ends with (no foreign key: a parent's row
    may be purged first, and then the child is refused as well)."""
    password_generation: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))


sa.Index("ix_sessions_client", SessionRow.client_kind, SessionRow.client_key)


class OneTimeTokenRow(Base):
    __tablename__ = "one_time_tokens"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


sa.Index(
    "ix_one_time_tokens_user_purpose_created",
    OneTimeTokenRow.user_id,
    OneTimeTokenRow.purpose,
    OneTimeTokenRow.created_at,
)


class LoginAttemptRow(Base):
    __tablename__ = "login_attempts"

    # BIGINT does not alias SQLite's rowid, so it would not auto-increment there.
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(sa.String(255))
    at: Mapped[datetime]


sa.Index("ix_login_attempts_key_at", LoginAttemptRow.key, LoginAttemptRow.at)


class ChatFlowRow(Base):
    __tablename__ = "chat_flows"

    chat_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(64))
    step: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[dict[str, Any]]
    version: Mapped[int]
    expires_at: Mapped[datetime | None]


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(255))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    kind: Mapped[str] = mapped_column(sa.String(32))
    context: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


sa.Index("ix_outbox_status_next_attempt", OutboxRow.status, OutboxRow.next_attempt_at)


class SnippetTagRow(Base):
    __tablename__ = "snippet_tags"

    snippet_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("snippets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))


sa.Index("ix_snippet_tags_owner_id_tag", SnippetTagRow.owner_id, SnippetTagRow.tag)


class SnippetRevisionRow(Base):
    __tablename__ = "snippet_revisions"

    snippet_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("snippets.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(sa.Text)
    code: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]


class ShareLinkRow(Base):
    __tablename__ = "share_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    snippet_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("snippets.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    single_use: Mapped[bool]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


def _table(model: type[Base]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


users = _table(UserRow)
snippets = _table(SnippetRow)
sessions = _table(SessionRow)
one_time_tokens = _table(OneTimeTokenRow)
login_attempts = _table(LoginAttemptRow)
chat_flows = _table(ChatFlowRow)
outbox = _table(OutboxRow)
snippet_tags = _table(SnippetTagRow)
snippet_revisions = _table(SnippetRevisionRow)
share_links = _table(ShareLinkRow)
