"""What happened, recorded by use cases; `core.notifications` turns events into emails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.entities import Snippet, User


@dataclass(frozen=True, slots=True)
class UserSignedUp:
    user: User
    verify_code: str
    verify_payload: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class UserLoggedIn:
    user: User
    at: datetime


@dataclass(frozen=True, slots=True)
class PasswordResetRequested:
    user: User
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SnippetCreated:
    owner: User
    snippet: Snippet


@dataclass(frozen=True, slots=True)
class SnippetDeleted:
    owner: User
    snippet: Snippet


@dataclass(frozen=True, slots=True)
class SnippetRetrieved:
    owner: User
    snippet: Snippet


Event = (
    UserSignedUp
    | UserLoggedIn
    | PasswordResetRequested
    | SnippetCreated
    | SnippetDeleted
    | SnippetRetrieved
)
