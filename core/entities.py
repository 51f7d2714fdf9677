"""The things SnippetVault keeps: plain, immutable values with no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    hashed_password: str
    is_verified: bool
    created_at: datetime
    password_generation: int = 0
    """Counts password changes: a session made under an older one no longer works."""


@dataclass(frozen=True, slots=True)
class Snippet:
    id: UUID
    owner_id: UUID
    ref: int
    """The short number the owner types (`/get 3`); unique per owner, never reused."""
    title: str
    code: str
    language: str
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    """Lower-case, sorted; see `core.organise.clean_tags`."""


@dataclass(frozen=True, slots=True)
class SnippetSummary:
    id: UUID
    ref: int
    title: str
    language: str
    created_at: datetime
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    offset: int
    limit: int

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


class ClientKind(enum.StrEnum):
    """The edge a request comes through; a session works only through the kind that made it."""

    CHAT = "chat"
    API = "api"


@dataclass(frozen=True, slots=True)
class Client:
    """Who is calling, as the edge knows it: a Telegram chat, or a caller of the HTTP API.

    `key` is the chat id for a chat (a chat session is bound to that chat), and the network
    address for the API (used only to throttle guesses: API sessions are not bound to it).
    """

    kind: ClientKind
    key: str

    @classmethod
    def chat(cls, chat_id: int) -> Client:
        return cls(ClientKind.CHAT, str(chat_id))

    @classmethod
    def api(cls, address: str) -> Client:
        return cls(ClientKind.API, address)

    @property
    def chat_id(self) -> int:
        if self.kind is not ClientKind.CHAT:
            raise ValueError(f"a {self.kind} client has no chat")
        return int(self.key)

    @property
    def binding(self) -> str | None:
        """What a session of this client is bound to besides its kind: the chat; None for
        the API."""
        return self.key if self.kind is ClientKind.CHAT else None


@dataclass(frozen=True, slots=True)
class Session:
    """A login of one user through one client; the JWT names it by `jti`."""

    jti: str
    user_id: UUID
    client_kind: ClientKind
    client_key: str | None
    """The chat a chat session is bound to; None for an API session."""
    token: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    parent_jti: str | None = None
    """A session opened from another one (the Mini App's, from its chat's): it ends with it."""
    password_generation: int = 0
    """The user's `password_generation` when the password was checked: a later change of
    password ends the session, even one a racing login inserted after the change."""


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a name, not a password


@dataclass(frozen=True, slots=True)
class OneTimeToken:
    """A verification or reset secret; only its SHA-256 is stored."""

    token_hash: str
    user_id: UUID
    purpose: TokenPurpose
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChatFlow:
    """Where a chat is in a step-by-step command (`/login` asking for the password, …)."""

    chat_id: int
    name: str
    step: str
    data: dict[str, str] = field(default_factory=dict)
    version: int = 0
    """Optimistic-lock counter: saving a flow whose version moved on meanwhile fails."""
    expires_at: datetime | None = None


class EmailKind(enum.StrEnum):
    """Each kind is one template in `mail/templates`; see `core.notifications` for contexts."""

    VERIFY_EMAIL = "verify_email"
    LOGIN_ALERT = "login_alert"
    SNIPPET_CREATED = "snippet_created"
    SNIPPET_DELETED = "snippet_deleted"
    SNIPPET_RETRIEVED = "snippet_retrieved"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a name, not a password


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    id: UUID
    to: str
    kind: EmailKind
    context: dict[str, Any]
    """JSON-serialisable values the template renders."""
    message_id: str
    """Stable `Message-ID` header, so a resend after a crash is recognisable as the same mail."""
    created_at: datetime


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    email: OutgoingEmail
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Revision:
    """An earlier version of a snippet, kept by an edit, a rename or a restore."""

    snippet_id: UUID
    number: int
    """1, 2, 3 … per snippet; the current version is one past the last kept."""
    title: str
    code: str
    language: str
    created_at: datetime
    """When this version was made (the snippet's `updated_at` back then)."""


@dataclass(frozen=True, slots=True)
class ShareLink:
    """A read-only link to one snippet; only the SHA-256 of its token is kept."""

    id: UUID
    token_hash: str
    snippet_id: UUID
    owner_id: UUID
    created_at: datetime
    expires_at: datetime
    single_use: bool
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    snippet_ref: int = 0
    snippet_title: str = ""


@dataclass(frozen=True, slots=True)
class SharedSnippet:
    """What whoever opens a share link sees: nothing of the owner."""

    title: str
    language: str
    code: str
