"""Domain errors: the edges turn each into a reply a person understands."""


class DomainError(Exception):
    """Base of every error a user can cause; `str(error)` is safe to show them."""


class ValidationError(DomainError):
    """The input is malformed (bad email, short password, empty code, …)."""


class AuthenticationError(DomainError):
    """No valid session, or wrong credentials."""


class SessionExpired(AuthenticationError):
    """The session existed but ran out or was revoked."""


class WrongCredentials(AuthenticationError):
    """A login with an unknown email or a wrong password (never told apart)."""


class Throttled(DomainError):
    """Too many attempts; `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EmailTaken(DomainError):
    """Only raised where revealing it is safe (never from signup replies)."""


class NotFound(DomainError):
    """Missing, or belonging to someone else: the two are never told apart."""


class SnippetTooLarge(ValidationError):
    pass


class NotText(ValidationError):
    """Binary content, or bytes no charset decodes."""


class InvalidToken(DomainError):
    """A verification or reset code that is wrong, used or expired."""


class FlowConflict(DomainError):
    """A step-by-step flow was changed by another update meanwhile."""


class StorageUnavailable(DomainError):
    """The database cannot be reached right now; the user may simply try again."""
