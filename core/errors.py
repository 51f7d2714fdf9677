"""Domain errors: typed, with the facts an edge needs to word them.

`str(error)` is a plain sentence that names no edge's means (no chat command, no HTTP status):
an edge may show it as it is, or word the error its own way from its type and fields (the
chat's wording lives in `bot/wording.py`).
"""

from __future__ import annotations

from uuid import UUID

from core.entities import TokenPurpose


class DomainError(Exception):
    """Base of every error a user can cause; `str(error)` is safe to show them."""


class ValidationError(DomainError):
    """The input is malformed (bad email, short password, empty code, …)."""


class InvalidEmail(ValidationError):
    def __init__(self) -> None:
        super().__init__("That does not look like an email address (e.g. ada@example.com).")


class PasswordTooShort(ValidationError):
    def __init__(self, min_chars: int) -> None:
        super().__init__(f"The password needs at least {min_chars} characters.")
        self.min_chars = min_chars


class PasswordTooLong(ValidationError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The password is too long: at most {max_bytes} bytes "
            "(emoji and accented letters count as several)."
        )
        self.max_bytes = max_bytes


class BadRef(ValidationError):
    """Text that is not a snippet number."""

    def __init__(self, raw: str) -> None:
        self.raw = raw.strip()[:20]
        super().__init__(f"“{self.raw}” is not a snippet number.")


class EmptySearch(ValidationError):
    def __init__(self) -> None:
        super().__init__("Say what to look for.")


class SearchTooLong(ValidationError):
    def __init__(self, max_chars: int) -> None:
        super().__init__(f"Search for at most {max_chars} characters.")
        self.max_chars = max_chars


class BadTitle(ValidationError):
    """An empty title, or one too long."""


class NoCode(ValidationError):
    """Nothing but white space where code was expected."""


class SnippetTooLarge(ValidationError):
    pass


class NotText(ValidationError):
    """Binary content, or bytes no charset decodes."""


class AuthenticationError(DomainError):
    """No valid session, or wrong credentials."""


class NotLoggedIn(AuthenticationError):
    """No session at all: none in this chat, or no (valid) token."""

    def __init__(self, message: str = "You are not logged in.") -> None:
        super().__init__(message)


class SessionExpired(AuthenticationError):
    """The session existed but ran out or was ended (logout, password change, …)."""

    def __init__(self, message: str = "Your session has ended.") -> None:
        super().__init__(message)


class WrongCredentials(AuthenticationError):
    """A login with an unknown email or a wrong password (never told apart)."""

    def __init__(self) -> None:
        super().__init__("Wrong email or password.")


class EmailNotVerified(AuthenticationError):
    """The right password for an account whose address is not verified yet: no session until
    it is. Only the one who knows the password learns this."""

    def __init__(self, email: str, user_id: UUID) -> None:
        super().__init__("Verify your email address first.")
        self.email = email
        self.user_id = user_id


class NoSession(DomainError):
    """A session was to be opened from a chat's session, and that chat has none."""

    def __init__(self) -> None:
        super().__init__("Nobody is logged in to that chat.")


class Throttled(DomainError):
    """Too many attempts; `retry_after` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(f"Too many failed attempts. Try again in {minutes} minute(s).")
        self.retry_after = retry_after


class EmailTaken(DomainError):
    """Only raised where revealing it is safe (never from signup replies)."""


class NotFound(DomainError):
    """Missing, or belonging to someone else: the two are never told apart."""

    def __init__(self, ref: int | UUID) -> None:
        super().__init__(f"There is no snippet {ref} among yours.")
        self.ref = ref
        """As the owner named it: a ref, or an id."""


class InvalidToken(DomainError):
    """A verification or reset code that is wrong, used or expired."""

    def __init__(self, purpose: TokenPurpose) -> None:
        what = "reset code" if purpose is TokenPurpose.RESET_PASSWORD else "code"
        super().__init__(f"That {what} is wrong, used or expired.")
        self.purpose = purpose


class AlreadyVerified(DomainError):
    """A verification code or link of an address that is verified already."""

    def __init__(self, email: str) -> None:
        super().__init__(f"{email} is verified already.")
        self.email = email


class FlowConflict(DomainError):
    """A step-by-step flow was changed by another update meanwhile."""


class StorageUnavailable(DomainError):
    """The database cannot be reached right now; the user may simply try again."""


# Organising (tags, versions, undo, share links): each "gone" is a `NotFound`, so an edge that
# answers a missing snippet answers these alike (404 over HTTP).


class SnippetGone(NotFound):
    """A snippet named by id (a button, the API) that is not, or no longer, among the owner's."""

    def __init__(self, snippet_id: UUID) -> None:
        DomainError.__init__(self, "That snippet is no longer among yours.")
        self.ref = snippet_id


class VersionNotKept(NotFound):
    def __init__(self, snippet: int | UUID, number: int) -> None:
        DomainError.__init__(self, f"Version {number} of that snippet is no longer kept.")
        self.ref = snippet
        self.number = number


class UndoExpired(NotFound):
    """Not deleted lately (gone for good, restored already, or never the owner's)."""

    def __init__(self, snippet: int | UUID) -> None:
        DomainError.__init__(self, "Too late to undo: that snippet is gone for good.")
        self.ref = snippet


class ShareGone(NotFound):
    """An expired, revoked, used, unknown or malformed share link: never told apart."""

    def __init__(self) -> None:
        DomainError.__init__(self, "This link has expired or was revoked.")
        self.ref = 0


class ShareLinkNotFound(NotFound):
    """The owner has no such live link (when revoking one)."""

    def __init__(self, link_id: UUID) -> None:
        DomainError.__init__(self, "There is no such link among yours (it may have ended already).")
        self.ref = link_id
