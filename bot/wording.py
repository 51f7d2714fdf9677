"""How the chat words core's typed errors: the one place that names commands in an error.

Core's errors carry facts (which ref, which kind of code, how long to wait); this module turns
them into the chat's Telegram HTML, pointing at the command that helps next.
"""

from __future__ import annotations

from html import escape
from uuid import UUID

from core.entities import TokenPurpose
from core.errors import (
    AlreadyVerified,
    AuthenticationError,
    BadRef,
    DomainError,
    EmailNotVerified,
    EmptySearch,
    FlowConflict,
    InvalidToken,
    NotFound,
    SessionExpired,
    ShareGone,
    ShareLinkNotFound,
    SnippetGone,
    StorageUnavailable,
    UndoExpired,
    VersionNotKept,
    WrongCredentials,
)

LOGIN_FIRST = "Please log in first: <code>/login your@email password</code> (or /signup)."
UNAVAILABLE = "The database is temporarily unavailable. Please try again in a minute."
EMAIL_NOT_QUEUED = (
    "📭 The email with the full code could not be queued: the database is temporarily "
    "unavailable. Send /get {ref} again in a minute to have it sent."
)


def error_reply(error: DomainError) -> str:
    """The reply to a domain error, as Telegram HTML."""
    match error:
        case StorageUnavailable():
            return UNAVAILABLE
        case FlowConflict():
            return "That step was already answered by another message of yours."
        case WrongCredentials():
            return escape(str(error))
        case EmailNotVerified(email=email):
            return not_verified(email)
        case SessionExpired():
            return "Your session has ended. " + LOGIN_FIRST
        case AuthenticationError():
            return LOGIN_FIRST
        case SnippetGone() | VersionNotKept() | UndoExpired() | ShareGone() | ShareLinkNotFound():
            return escape(str(error))
        case NotFound(ref=ref):
            return not_found(ref)
        case BadRef(raw=raw):
            return f"“{escape(raw)}” is not a snippet number. Send /list to see yours."
        case EmptySearch():
            return "Tell me what to look for, e.g. /search quicksort"
        case AlreadyVerified(email=email):
            return f"✅ {escape(email)} is verified already. /login to start."
        case InvalidToken(purpose=TokenPurpose.RESET_PASSWORD):
            return "That reset code is wrong, used or expired. Try /reset again."
        case InvalidToken():
            return "That code is wrong, used or expired. /signup again to get a new one."
    return escape(str(error))


def not_verified(email: str) -> str:
    return (
        f"✉️ Please verify your email first: {escape(email)} is not verified yet. Open the link "
        "in the verification email, or send /verify &lt;code&gt;; then /login again."
    )


def not_found(ref: int | UUID) -> str:
    """Also a button's alert, which shows plain text: no markup here."""
    return f"There is no snippet {ref} among yours. Send /list to see them."
