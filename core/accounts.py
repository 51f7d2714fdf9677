"""Account use cases: signup, verification, login, sessions, password reset.

Replies never reveal whether an email has an account: signup, login and reset answer the same
way and cost about the same time (one bcrypt operation) for known and unknown addresses.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta

from core.entities import EmailKind, OneTimeToken, Session, TokenPurpose, User
from core.errors import (
    AuthenticationError,
    EmailTaken,
    InvalidToken,
    Throttled,
    ValidationError,
    WrongCredentials,
)
from core.events import Event, PasswordResetRequested, UserLoggedIn, UserSignedUp
from core.notifications import email_for, wants_email
from core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from core.security import (
    PasswordHasher,
    SessionTokens,
    check_password_rules,
    hash_secret,
    new_code,
    new_link_payload,
    normalise_code,
)

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}")
MAX_EMAIL_CHARS = 254
_ADDRESS_SPECIALS = frozenset('()<>[]\\,;:"')
"""Characters that structure a header's address list: in an address they would split it into
several mailboxes (`eve,ada@example.com`) or a display name."""


def normalise_email(raw: str) -> str:
    email = raw.strip().lower()
    if (
        len(email) > MAX_EMAIL_CHARS
        or not _EMAIL.fullmatch(email)
        or ".." in email
        # Control and format characters (NUL, DEL, zero-width space) break headers and
        # databases, and make look-alike addresses.
        or any(ch in _ADDRESS_SPECIALS or unicodedata.category(ch)[0] == "C" for ch in email)
    ):
        raise ValidationError("That does not look like an email address (e.g. ada@example.com).")
    return email


@dataclass(frozen=True, slots=True)
class Limits:
    failed_attempts: int = 10
    attempt_window: timedelta = timedelta(minutes=15)
    verification_ttl: timedelta = timedelta(hours=24)
    reset_ttl: timedelta = timedelta(minutes=30)
    emails_per_hour: int = 3
    """Verification or reset emails one address may receive in an hour."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    session: Session
    alert_emailed: bool


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: SessionTokens,
        clock: Clock,
        verify_link_base: str,
        limits: Limits | None = None,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._now = clock
        self.verify_link_base = verify_link_base
        """`https://t.me/<bot username>`; set once the bot knows its name."""
        self._limits = limits or Limits()

    # -- signup and verification ------------------------------------------------------

    async def signup(self, raw_email: str, password: str) -> None:
        """Creates the account and queues the verification email. Says nothing about whether
        the address already had an account: an unverified one gets a fresh code (rate-limited),
        a verified one nothing."""
        email = normalise_email(raw_email)
        check_password_rules(password)
        hashed = await self._hasher.hash(password)
        now = self._now()
        try:
            async with self._uow() as uow:
                user = await uow.users.get_by_email(email)
                if user is None:
                    user = User(uuid.uuid4(), email, hashed, False, now)
                    await uow.users.add(user)
                elif user.is_verified or not await self._may_email(
                    uow, user, TokenPurpose.VERIFY_EMAIL
                ):
                    return
                await self._send_verification(uow, user)
                await uow.commit()
        except EmailTaken:
            # A concurrent signup of the same address won the insert and sends the email.
            return

    async def _send_verification(self, uow: UnitOfWork, user: User) -> None:
        now = self._now()
        code, payload = new_code(), new_link_payload()
        expires = now + self._limits.verification_ttl
        for secret in (code, payload):
            await uow.tokens.add(
                OneTimeToken(hash_secret(secret), user.id, TokenPurpose.VERIFY_EMAIL, now, expires)
            )
        await self._record(uow, UserSignedUp(user, code, payload, expires))

    async def verify(self, code_or_payload: str, chat_id: int) -> User:
        """Verifies the address behind a `/verify` code or a `/start` link payload."""
        secret = code_or_payload.strip()
        candidates = {hash_secret(secret), hash_secret(normalise_code(secret))}
        async with self._uow() as uow:
            await self._check_throttle(uow, [_chat_key("verify", chat_id)])
            token = await self._usable_token(uow, candidates, TokenPurpose.VERIFY_EMAIL)
            if token is None:
                await self._record_failure(uow, [_chat_key("verify", chat_id)])
                raise InvalidToken(
                    "That code is wrong, used or expired. /signup again to get a new one."
                )
            await uow.users.set_verified(token.user_id)
            await uow.tokens.use_all(token.user_id, TokenPurpose.VERIFY_EMAIL, self._now())
            user = await uow.users.get(token.user_id)
            await uow.commit()
        assert user is not None
        return user

    # -- sessions ---------------------------------------------------------------------

    async def login(self, raw_email: str, password: str, chat_id: int) -> LoginResult:
        email = normalise_email(raw_email)
        account_key = f"login:email:{hash_secret(email)}"
        keys = [account_key, _chat_key("login", chat_id)]
        async with self._uow() as uow:
            await self._check_throttle(uow, keys)
            user = await uow.users.get_by_email(email)
        matched = await self._hasher.verify(password, user.hashed_password if user else None)
        now = self._now()
        async with self._uow() as uow:
            if user is None or not matched:
                await self._record_failure(uow, keys)
                raise WrongCredentials("Wrong email or password.")
            token, claims = self._tokens.issue(user.id, chat_id, now)
            session = Session(claims.jti, user.id, chat_id, token, now, claims.expires_at)
            await uow.sessions.revoke_chat(chat_id, now)
            await uow.sessions.add(session)
            # Only the account's failures: clearing the chat's would let someone spraying
            # guesses from one chat reset its count by logging in to an account of their own.
            await uow.attempts.clear(account_key)
            alert = wants_email(user, EmailKind.LOGIN_ALERT)
            if alert:
                await self._record(uow, UserLoggedIn(user, now))
            await uow.commit()
        return LoginResult(user, session, alert)

    async def logout(self, chat_id: int) -> bool:
        """Ends the chat's session; False when there was none."""
        async with self._uow() as uow:
            had_session = await uow.sessions.latest_for_chat(chat_id) is not None
            await uow.sessions.revoke_chat(chat_id, self._now())
            await uow.commit()
        return had_session

    async def current_user(self, chat_id: int) -> User:
        """The user logged in to this chat; `AuthenticationError` when nobody is."""
        now = self._now()
        # Every command starts here: one statement, outside a transaction (bench/NOTES.md).
        async with self._uow() as uow:
            await uow.autocommit()
            found = await uow.sessions.latest_for_chat(chat_id)
        if found is None:
            raise AuthenticationError("You are not logged in.")
        session, user = found
        claims = self._tokens.decode(session.token, chat_id, now)
        if claims.jti != session.jti or claims.user_id != session.user_id:
            raise AuthenticationError("Your session is not valid.")
        return user

    # -- password reset ---------------------------------------------------------------

    async def request_reset(self, raw_email: str) -> None:
        """Emails a reset code to a verified address; answers the same for any address."""
        email = normalise_email(raw_email)
        async with self._uow() as uow:
            user = await uow.users.get_by_email(email)
            # Costs one bcrypt check either way, like login, so timing reveals nothing.
            await self._hasher.verify("", None)
            if user is None or not user.is_verified:
                return
            if not await self._may_email(uow, user, TokenPurpose.RESET_PASSWORD):
                return
            now = self._now()
            code = new_code()
            expires = now + self._limits.reset_ttl
            await uow.tokens.add(
                OneTimeToken(hash_secret(code), user.id, TokenPurpose.RESET_PASSWORD, now, expires)
            )
            await self._record(uow, PasswordResetRequested(user, code, expires))
            await uow.commit()

    async def check_reset_code(self, code: str, chat_id: int) -> str:
        """Returns a handle (the code's hash) for `reset_password`; the code stays unused."""
        token_hash = hash_secret(normalise_code(code))
        async with self._uow() as uow:
            await self._check_throttle(uow, [_chat_key("reset", chat_id)])
            token = await self._usable_token(uow, {token_hash}, TokenPurpose.RESET_PASSWORD)
            if token is None:
                await self._record_failure(uow, [_chat_key("reset", chat_id)])
                raise InvalidToken("That reset code is wrong, used or expired. Try /reset again.")
        return token_hash

    async def reset_password(self, token_hash: str, new_password: str) -> None:
        """Sets the new password and ends every session of the account."""
        check_password_rules(new_password)
        hashed = await self._hasher.hash(new_password)
        now = self._now()
        async with self._uow() as uow:
            token = await self._usable_token(uow, {token_hash}, TokenPurpose.RESET_PASSWORD)
            if token is None:
                raise InvalidToken("That reset code is wrong, used or expired. Try /reset again.")
            await uow.users.set_password(token.user_id, hashed)
            await uow.tokens.use_all(token.user_id, TokenPurpose.RESET_PASSWORD, now)
            await uow.sessions.revoke_user(token.user_id, now)
            await uow.commit()

    # -- shared -----------------------------------------------------------------------

    async def _record(self, uow: UnitOfWork, event: Event) -> None:
        await uow.outbox.add(email_for(event, self._now(), verify_link_base=self.verify_link_base))

    async def _may_email(self, uow: UnitOfWork, user: User, purpose: TokenPurpose) -> bool:
        since = self._now() - timedelta(hours=1)
        # Each verification issues two tokens (code and link): count emails, not tokens.
        per_email = 2 if purpose is TokenPurpose.VERIFY_EMAIL else 1
        sent = await uow.tokens.count_since(user.id, purpose, since) // per_email
        return sent < self._limits.emails_per_hour

    async def _usable_token(
        self, uow: UnitOfWork, hashes: set[str], purpose: TokenPurpose
    ) -> OneTimeToken | None:
        now = self._now()
        for token_hash in hashes:
            token = await uow.tokens.get(token_hash)
            if (
                token is not None
                and token.purpose is purpose
                and token.used_at is None
                and token.expires_at > now
            ):
                return token
        return None

    async def _check_throttle(self, uow: UnitOfWork, keys: list[str]) -> None:
        since = self._now() - self._limits.attempt_window
        for key in keys:
            if await uow.attempts.count_since(key, since) >= self._limits.failed_attempts:
                oldest = await uow.attempts.oldest_since(key, since)
                wait = (oldest or since) + self._limits.attempt_window - self._now()
                # The oldest failure still counts at the very end of its window: waiting
                # `retry_after` seconds must be enough, so round up past it.
                retry_after = max(1, int(wait.total_seconds()) + 1)
                minutes = max(1, round(retry_after / 60))
                raise Throttled(
                    f"Too many failed attempts. Try again in {minutes} minute(s).",
                    retry_after=retry_after,
                )

    async def _record_failure(self, uow: UnitOfWork, keys: list[str]) -> None:
        now = self._now()
        for key in keys:
            await uow.attempts.add(key, now)
        await uow.commit()


def _chat_key(action: str, chat_id: int) -> str:
    return f"{action}:chat:{chat_id}"
