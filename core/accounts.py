"""Account use cases: signup, verification, login, sessions, password reset.

Replies never reveal whether an email has an account: signup, login and reset answer the same
way and cost about the same time (one bcrypt operation) for known and unknown addresses.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from core.entities import Client, ClientKind, EmailKind, OneTimeToken, Session, TokenPurpose, User
from core.errors import (
    AlreadyVerified,
    AuthenticationError,
    EmailNotVerified,
    EmailTaken,
    InvalidEmail,
    InvalidToken,
    NoSession,
    NotLoggedIn,
    SessionExpired,
    Throttled,
    WrongCredentials,
)
from core.events import Event, PasswordResetRequested, UserLoggedIn, UserSignedUp
from core.notifications import VerifyLinks, email_for, wants_email
from core.ports import (
    Clock,
    QuickStatements,
    SessionRecord,
    StatementsInUnitsOfWork,
    UnitOfWork,
    UnitOfWorkFactory,
)
from core.security import (
    PasswordHasher,
    SessionTokens,
    TokenClaims,
    check_password_rules,
    hash_secret,
    new_code,
    new_link_payload,
    normalise_code,
    normalise_password,
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
        raise InvalidEmail
    return email


KNOWN_CLIENT_KEYS = "login:known:"
"""The attempts under keys starting so are not failures: each says a client logged in to an
account (one per account and client, kept `Limits.known_client_for`)."""


@dataclass(frozen=True, slots=True)
class Limits:
    failed_attempts: int = 10
    """Password checks (and wrong codes) per client, and per account and client, in a window."""
    attempt_window: timedelta = timedelta(minutes=15)
    free_account_failures: int = 5
    """Failures an account takes from unknown clients before each next try has to wait."""
    account_delay: timedelta = timedelta(seconds=2)
    """The first wait; it doubles with each further failure, up to `max_account_delay`."""
    max_account_delay: timedelta = timedelta(minutes=5)
    known_client_for: timedelta = timedelta(days=90)
    """A client that logged in to an account is spared the account's waits this long."""
    requests_per_hour: int = 10
    """Signups and reset requests per client, and per address, in `request_window`."""
    request_window: timedelta = timedelta(hours=1)
    verification_ttl: timedelta = timedelta(hours=24)
    reset_ttl: timedelta = timedelta(minutes=30)
    emails_per_hour: int = 3
    """Verification or reset emails one address may receive in an hour."""

    @property
    def attempt_retention(self) -> timedelta:
        """How long a counted attempt (a failure, a request) matters to any rule."""
        return max(self.attempt_window, self.request_window)


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    session: Session
    alert_emailed: bool
    """False when no login alert was queued (an unverified address, a linked session)."""

    @property
    def token(self) -> str:
        """The bearer token that names the session (the chat keeps it server-side)."""
        return self.session.token

    @property
    def expires_at(self) -> datetime:
        return self.session.expires_at


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: SessionTokens,
        clock: Clock,
        verify_links: VerifyLinks,
        limits: Limits | None = None,
        quick: QuickStatements | None = None,
    ) -> None:
        """`quick`: where the session of every chat command and API call is read (by default,
        in a unit of work)."""
        self._uow = uow
        self._quick = quick or StatementsInUnitsOfWork(uow)
        self._hasher = hasher
        self._tokens = tokens
        self._now = clock
        self._verify_links = verify_links
        self._limits = limits or Limits()

    # -- signup and verification ------------------------------------------------------

    async def signup(self, raw_email: str, password: str, client: Client) -> None:
        """Creates the account and queues the verification email. Says nothing about whether
        the address already had an account: an unverified one takes the new password and gets
        a fresh code (rate-limited), a verified one nothing. `Throttled` past
        `requests_per_hour` signups of the client or of the address."""
        email = normalise_email(raw_email)
        password = normalise_password(password)
        check_password_rules(password)
        await self._count_request("signup", email, client)
        hashed = await self._hasher.hash(password)
        now = self._now()
        try:
            async with self._uow() as uow:
                user = await uow.users.get_by_email(email)
                if user is None:
                    user = User(uuid.uuid4(), email, hashed, False, now)
                    await uow.users.add(user)
                elif user.is_verified:
                    return
                else:
                    # Whoever signed the address up first has no claim on it until verified:
                    # the latest signup's password is the one that will log in.
                    await uow.users.set_password(user.id, hashed)
                    await uow.sessions.revoke_user(user.id, now)
                    if not await self._may_email(uow, user, TokenPurpose.VERIFY_EMAIL):
                        await uow.commit()
                        return
                await self._send_verification(uow, user)
                await uow.commit()
        except EmailTaken:
            # A concurrent signup of the same address won the insert and sends the email.
            return

    async def resend_verification(self, user_id: UUID) -> bool:
        """A new verification email for an unverified account (the chat offers it when a login
        had the right password); False when it is verified or had its emails for the hour."""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if (
                user is None
                or user.is_verified
                or not await self._may_email(uow, user, TokenPurpose.VERIFY_EMAIL)
            ):
                return False
            await self._send_verification(uow, user)
            await uow.commit()
        return True

    async def _send_verification(self, uow: UnitOfWork, user: User) -> None:
        now = self._now()
        code, payload = new_code(), new_link_payload()
        expires = now + self._limits.verification_ttl
        for secret in (code, payload):
            await uow.tokens.add(
                OneTimeToken(hash_secret(secret), user.id, TokenPurpose.VERIFY_EMAIL, now, expires)
            )
        await self._record(uow, UserSignedUp(user, code, payload, expires))

    async def verify(self, code_or_payload: str, client: Client) -> User:
        """Verifies the address behind a code or a link payload from the verification email."""
        secret = code_or_payload.strip()
        candidates = {hash_secret(secret), hash_secret(normalise_code(secret))}
        keys = [_client_key("verify", client)]
        async with self._uow() as uow:
            await self._check_throttle(uow, keys)
            token = await self._usable_token(uow, candidates, TokenPurpose.VERIFY_EMAIL)
            if token is None:
                verified = await self._verified_by(uow, candidates)
                if verified is not None:
                    raise AlreadyVerified(verified.email)
                await self._record_failure(uow, keys)
                raise InvalidToken(TokenPurpose.VERIFY_EMAIL)
            await uow.users.set_verified(token.user_id)
            await uow.tokens.use_all(token.user_id, TokenPurpose.VERIFY_EMAIL, self._now())
            user = await uow.users.get(token.user_id)
            await uow.commit()
        assert user is not None
        return user

    # -- sessions ---------------------------------------------------------------------

    async def login(self, raw_email: str, password: str, client: Client) -> LoginResult:
        """Starts a session bound to the client: for a chat, it replaces the chat's session.

        Each try is counted before the password is checked, so a burst of them cannot run
        more checks than the limits allow: `failed_attempts` per client (password spraying)
        and per account and client; past `free_account_failures` an account's tries from
        clients that never logged in to it wait, longer after each failure (`Throttled`).
        `EmailNotVerified` for the right password of an unverified account."""
        email = normalise_email(raw_email)
        password = normalise_password(password)
        account = hash_secret(email)
        account_key = f"login:email:{account}"
        pair_key = f"login:email:{account}:{client.kind}:{client.key}"
        client_key = _client_key("login", client)
        known_key = f"{KNOWN_CLIENT_KEYS}{account}:{client.kind}:{client.key}"
        now = self._now()
        async with self._uow() as uow:
            await uow.autocommit()
            known = await uow.attempts.count_since(known_key, now - self._limits.known_client_for)
        attempt = await self._claim_attempt(
            [client_key, pair_key, account_key],
            limited=[client_key, pair_key],
            delayed=None if known else account_key,
            window=self._limits.attempt_window,
            limit=self._limits.failed_attempts,
        )
        async with self._uow() as uow:
            await uow.autocommit()
            user = await uow.users.get_by_email(email)
        matched = await self._hasher.verify(password, user.hashed_password if user else None)
        if user is None or not matched:
            raise WrongCredentials  # the attempt stays counted: a failure
        if not user.is_verified:
            await self._discard(attempt)  # the right password: no failure
            raise EmailNotVerified(user.email, user.id)
        now = self._now()
        async with self._uow() as uow:
            current = await uow.users.get(user.id)
            if current is None or current.password_generation != user.password_generation:
                # The password changed while this one was being checked.
                raise WrongCredentials
            session = self._new_session(user, client, now)
            if client.kind is ClientKind.CHAT:
                await uow.sessions.revoke_client(client, now)
            await uow.sessions.add(session)
            # The account's failures go, not the client's: clearing those would let someone
            # spraying guesses from one chat reset its count by logging in to their own account.
            await uow.attempts.discard(attempt[:1])
            await uow.attempts.clear(account_key)
            await uow.attempts.clear(pair_key)
            await uow.attempts.clear(known_key)  # one row per account and client, however often
            await uow.attempts.add(known_key, now)
            alert = wants_email(user, EmailKind.LOGIN_ALERT)
            if alert:
                await self._record(uow, UserLoggedIn(user, now))
            await uow.commit()
        return LoginResult(user, session, alert)

    async def open_linked_session(self, chat_id: int) -> LoginResult:
        """An API session for the account logged in to a Telegram private chat (whose id is
        the Telegram user's), for the Mini App. It ends with the chat's session: a logout, a
        new login in that chat or a password reset ends both. `NoSession` when the chat has
        no live session."""
        chat = Client.chat(chat_id)
        now = self._now()
        async with self._uow() as uow:
            found = await uow.sessions.latest_for_client(chat)
            if found is None:
                raise NoSession
            try:
                claims = self._tokens.decode(found.session.token, chat, now)
                parent = self._check_record(found, chat, claims, now)
            except AuthenticationError:
                raise NoSession from None
            user = found.user
            session = self._new_session(
                user, Client.api(""), now, parent=parent, expires_at=parent.expires_at
            )
            await uow.sessions.add(session)
            await uow.commit()
        return LoginResult(user, session, alert_emailed=False)

    async def logout(self, client: Client, token: str | None = None) -> bool:
        """Ends a session; False when there was none to end. A chat ends the chat's session;
        the API ends the session of `token` (refused like `authenticate` when not valid)."""
        now = self._now()
        if client.kind is ClientKind.CHAT:
            async with self._uow() as uow:
                had_session = await uow.sessions.latest_for_client(client) is not None
                await uow.sessions.revoke_client(client, now)
                await uow.commit()
            return had_session
        if token is None:
            raise NotLoggedIn
        claims = self._tokens.decode(token, client, now)
        async with self._uow() as uow:
            found = await uow.sessions.find(claims.jti)
            if found is None:
                raise NotLoggedIn("Your session is not valid.")
            self._check_record(found, client, claims, now)
            await uow.sessions.revoke(claims.jti, now)
            await uow.commit()
        return True

    async def current_user(self, client: Client) -> User:
        """The user logged in to this chat; `AuthenticationError` when nobody is."""
        if client.kind is not ClientKind.CHAT:
            raise NotLoggedIn
        now = self._now()
        # Every command starts here: one statement, outside a transaction (bench/NOTES.md).
        found = await self._quick.latest_session(client)
        if found is None:
            raise NotLoggedIn
        # A chat's token is kept in its session row.
        claims = self._tokens.decode(found.session.token, client, now)
        self._check_record(found, client, claims, now)
        return found.user

    async def authenticate(self, token: str, client: Client) -> User:
        """The user of an API bearer token: its signature, algorithm, expiry and client kind
        are checked, then its session (not revoked, not ended with the session it came from).
        `AuthenticationError` (`NotLoggedIn`, `SessionExpired`) otherwise."""
        now = self._now()
        claims = self._tokens.decode(token, client, now)
        found = await self._quick.session(claims.jti)  # every API call: one statement
        if found is None:
            raise NotLoggedIn("Your session is not valid.")
        self._check_record(found, client, claims, now)
        return found.user

    def _new_session(
        self,
        user: User,
        client: Client,
        now: datetime,
        *,
        parent: Session | None = None,
        expires_at: datetime | None = None,
    ) -> Session:
        token, claims = self._tokens.issue(user.id, client, now, expires_at=expires_at)
        return Session(
            jti=claims.jti,
            user_id=user.id,
            client_kind=client.kind,
            client_key=client.binding,
            token=token,
            issued_at=now,
            expires_at=claims.expires_at,
            parent_jti=parent.jti if parent else None,
            password_generation=user.password_generation,
        )

    def _check_record(
        self, found: SessionRecord, client: Client, claims: TokenClaims, now: datetime
    ) -> Session:
        """The session behind a token (its `claims`, decoded and checked once by the caller),
        if it may act for `client` now; raises otherwise."""
        session = found.session
        if (
            claims.jti != session.jti
            or claims.user_id != session.user_id
            or session.client_kind is not client.kind
            or session.client_key != client.binding
        ):
            raise NotLoggedIn("Your session is not valid.")
        if (
            session.revoked_at is not None
            or session.expires_at <= now
            or session.password_generation != found.user.password_generation
        ):
            raise SessionExpired
        if session.parent_jti is not None:
            parent = found.parent
            if parent is None or parent.revoked_at is not None or parent.expires_at <= now:
                raise SessionExpired
        return session

    # -- password reset ---------------------------------------------------------------

    async def request_reset(self, raw_email: str, client: Client) -> None:
        """Emails a reset code to a verified address; answers the same for any address.
        `Throttled` past `requests_per_hour` requests of the client or of the address."""
        email = normalise_email(raw_email)
        await self._count_request("reset", email, client)
        # One bcrypt check either way, like a login, and never inside a transaction (it would
        # hold a connection, or SQLite's write lock, for its whole time).
        await self._hasher.verify("", None)
        async with self._uow() as uow:
            user = await uow.users.get_by_email(email)
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

    async def check_reset_code(self, code: str, client: Client) -> str:
        """Returns a handle (the code's hash) for `reset_password`; the code stays unused."""
        token_hash = hash_secret(normalise_code(code))
        keys = [_client_key("reset", client)]
        async with self._uow() as uow:
            await self._check_throttle(uow, keys)
            token = await self._usable_token(uow, {token_hash}, TokenPurpose.RESET_PASSWORD)
            if token is None:
                await self._record_failure(uow, keys)
                raise InvalidToken(TokenPurpose.RESET_PASSWORD)
        return token_hash

    async def reset_password(self, handle: str, new_password: str) -> None:
        """Sets the new password and ends every session of the account."""
        new_password = normalise_password(new_password)
        check_password_rules(new_password)
        hashed = await self._hasher.hash(new_password)
        now = self._now()
        async with self._uow() as uow:
            token = await self._usable_token(uow, {handle}, TokenPurpose.RESET_PASSWORD)
            if token is None:
                raise InvalidToken(TokenPurpose.RESET_PASSWORD)
            await uow.users.set_password(token.user_id, hashed)
            await uow.tokens.use_all(token.user_id, TokenPurpose.RESET_PASSWORD, now)
            await uow.sessions.revoke_user(token.user_id, now)
            await uow.commit()

    async def confirm_reset(
        self, raw_email: str, code: str, new_password: str, client: Client
    ) -> None:
        """The reset in one call (the API's): the code must be one sent to `raw_email`."""
        email = normalise_email(raw_email)
        check_password_rules(normalise_password(new_password))
        handle = await self.check_reset_code(code, client)
        async with self._uow() as uow:
            await uow.autocommit()
            token = await uow.tokens.get(handle)
            user = await uow.users.get_by_email(email)
        if token is None or user is None or token.user_id != user.id:
            async with self._uow() as uow:
                await self._record_failure(uow, [_client_key("reset", client)])
            raise InvalidToken(TokenPurpose.RESET_PASSWORD)
        await self.reset_password(handle, new_password)

    # -- shared -----------------------------------------------------------------------

    async def _record(self, uow: UnitOfWork, event: Event) -> None:
        await uow.outbox.add(email_for(event, self._now(), verify_links=self._verify_links))

    async def _may_email(self, uow: UnitOfWork, user: User, purpose: TokenPurpose) -> bool:
        since = self._now() - timedelta(hours=1)
        # Each verification issues two tokens (code and link): count emails, not tokens.
        per_email = 2 if purpose is TokenPurpose.VERIFY_EMAIL else 1
        sent = await uow.tokens.count_since(user.id, purpose, since) // per_email
        return sent < self._limits.emails_per_hour

    async def _verified_by(self, uow: UnitOfWork, hashes: set[str]) -> User | None:
        """The verified account a used verification secret belonged to, if any."""
        for token_hash in hashes:
            token = await uow.tokens.get(token_hash)
            if token is not None and token.purpose is TokenPurpose.VERIFY_EMAIL:
                user = await uow.users.get(token.user_id)
                if user is not None and user.is_verified:
                    return user
        return None

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

    async def purge_attempts(self) -> int:
        """Forgets the attempts no rule reads any more (older than their longest window), so
        that the table of attempts stays bounded whatever a crowd of clients tries; returns
        how many went. Harmless when several processes purge at once."""
        now = self._now()
        async with self._uow() as uow:
            await uow.autocommit()
            # Older than the longest rule: everything, known clients included.
            purged = await uow.attempts.purge_before(now - self._limits.known_client_for)
            purged += await uow.attempts.purge_before(
                now - self._limits.attempt_retention, sparing=KNOWN_CLIENT_KEYS
            )
        return purged

    async def _check_throttle(self, uow: UnitOfWork, keys: list[str]) -> None:
        since = self._now() - self._limits.attempt_window
        for key in keys:
            if await uow.attempts.count_since(key, since) >= self._limits.failed_attempts:
                raise await _throttled(uow, key, since, self._limits.attempt_window, self._now())

    async def _count_request(self, action: str, email: str, client: Client) -> None:
        """Counts a signup or reset request of the client and of the address, before any
        costly work; `Throttled` past the hourly limit (such requests never uncount)."""
        keys = [_client_key(action, client), f"{action}:email:{hash_secret(email)}"]
        await self._claim_attempt(
            keys,
            limited=keys,
            delayed=None,
            window=self._limits.request_window,
            limit=self._limits.requests_per_hour,
        )

    async def _claim_attempt(
        self,
        keys: list[str],
        *,
        limited: list[str],
        delayed: str | None,
        window: timedelta,
        limit: int,
    ) -> list[int]:
        """Records one attempt under each key, then judges it: at most `limit` in `window`
        under each `limited` key, and the growing wait of `_check_delay` under `delayed`.
        Returns the attempts' ids (in the order of `keys`). Recorded and committed before
        they are counted, so of attempts racing each other the last to count sees all the
        others: never more than `limit` get through. A refused attempt is forgotten (it
        tried nothing), so refusals never prolong a wait."""
        now = self._now()
        async with self._uow() as uow:
            ids = [await uow.attempts.add(key, now) for key in keys]
            await uow.commit()
        try:
            async with self._uow() as uow:
                await uow.autocommit()
                since = now - window
                for key in limited:
                    if await uow.attempts.count_since(key, since) > limit:
                        raise await _throttled(uow, key, since, window, now)
                if delayed is not None:
                    await self._check_delay(uow, delayed, ids[keys.index(delayed)], since, now)
        except Throttled:
            await self._discard(ids)
            raise
        return ids

    async def _check_delay(
        self, uow: UnitOfWork, key: str, mine: int, since: datetime, now: datetime
    ) -> None:
        earlier = await uow.attempts.count_since(key, since) - 1
        over = earlier - self._limits.free_account_failures
        if over < 0:
            return
        delay = min(self._limits.account_delay * 2 ** min(over, 30), self._limits.max_account_delay)
        latest = await uow.attempts.latest_since(key, since, excluding=mine)
        if latest is not None and now - latest < delay:
            wait = latest + delay - now
            raise Throttled(retry_after=max(1, math.ceil(wait.total_seconds())))

    async def _discard(self, attempt_ids: list[int]) -> None:
        async with self._uow() as uow:
            await uow.attempts.discard(attempt_ids)
            await uow.commit()

    async def _record_failure(self, uow: UnitOfWork, keys: list[str]) -> None:
        now = self._now()
        for key in keys:
            await uow.attempts.add(key, now)
        await uow.commit()


async def _throttled(
    uow: UnitOfWork, key: str, since: datetime, window: timedelta, now: datetime
) -> Throttled:
    """The refusal of one attempt too many under `key`: wait until its oldest leaves `window`."""
    oldest = await uow.attempts.oldest_since(key, since)
    wait = (oldest or since) + window - now
    # The oldest attempt still counts at the very end of its window: waiting `retry_after`
    # seconds must be enough, so round up past it.
    return Throttled(retry_after=max(1, int(wait.total_seconds()) + 1))


def _client_key(action: str, client: Client) -> str:
    return f"{action}:{client.kind}:{client.key}"
