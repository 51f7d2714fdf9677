"""Which email each event sends, and what its template receives.

Only the verification email goes to an unverified address; callers check `wants_email`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.entities import EmailKind, OutgoingEmail, User
from core.events import (
    Event,
    PasswordResetRequested,
    SnippetCreated,
    SnippetDeleted,
    SnippetRetrieved,
    UserLoggedIn,
    UserSignedUp,
)
from core.text import file_name

MESSAGE_ID_DOMAIN = "snippetvault"


@dataclass(frozen=True, slots=True)
class VerificationLinks:
    """Where a verification payload can be opened: in the chat app (once the bot's name is
    known), and on the web (with a public address); the email leaves out what is None."""

    chat: str | None
    web: str | None = None


VerifyLinks = Callable[[str], VerificationLinks]
"""Builds the links of a verification payload; the edges know their addresses, core does not
(the composition root passes one in)."""


def no_links(payload: str) -> VerificationLinks:
    """For use cases that send no verification email."""
    return VerificationLinks(chat=None)


def wants_email(user: User, kind: EmailKind) -> bool:
    return user.is_verified or kind is EmailKind.VERIFY_EMAIL


def email_for(
    event: Event, now: datetime, *, verify_links: VerifyLinks = no_links
) -> OutgoingEmail:
    """The email an event sends; `verify_links` is needed only by the verification email."""
    kind, user, context = _describe(event, verify_links)
    email_id = uuid.uuid4()
    return OutgoingEmail(
        id=email_id,
        to=user.email,
        kind=kind,
        context=context,
        message_id=f"<{email_id.hex}@{MESSAGE_ID_DOMAIN}>",
        created_at=now,
    )


def _describe(event: Event, verify_links: VerifyLinks) -> tuple[EmailKind, User, dict[str, Any]]:
    match event:
        case UserSignedUp(user=user, verify_code=code, verify_payload=payload, expires_at=exp):
            links = verify_links(payload)
            context = {"code": code, "expires_at": exp.isoformat()}
            if links.chat:
                context["link"] = links.chat
            if links.web:
                context["web_link"] = links.web
            return EmailKind.VERIFY_EMAIL, user, context
        case UserLoggedIn(user=user, at=at):
            return EmailKind.LOGIN_ALERT, user, {"at": at.isoformat()}
        case PasswordResetRequested(user=user, code=code, expires_at=exp):
            return EmailKind.PASSWORD_RESET, user, {"code": code, "expires_at": exp.isoformat()}
        case SnippetCreated(owner=user, snippet=snippet):
            return (
                EmailKind.SNIPPET_CREATED,
                user,
                {
                    "title": snippet.title,
                    "language": snippet.language,
                    "ref": snippet.ref,
                    "created_at": snippet.created_at.isoformat(),
                },
            )
        case SnippetDeleted(owner=user, snippet=snippet):
            return EmailKind.SNIPPET_DELETED, user, {"title": snippet.title, "ref": snippet.ref}
        case SnippetRetrieved(owner=user, snippet=snippet):
            return (
                EmailKind.SNIPPET_RETRIEVED,
                user,
                {
                    "title": snippet.title,
                    "language": snippet.language,
                    "ref": snippet.ref,
                    "code": snippet.code,
                    "filename": file_name(snippet.title, snippet.language),
                },
            )
    raise TypeError(f"no email for {event!r}")  # pragma: no cover - exhaustive above
