"""Passwords, session tokens and one-time secrets: small pure functions.

bcrypt is slow on purpose (cost 12 ≈ 0.2 s); it runs off the event loop, in threads of its own
at a lower CPU priority, and at most a few hashes at once, so logins never stall other chats.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import bcrypt
import jwt

from core.entities import Client, ClientKind
from core.errors import NotLoggedIn, PasswordTooLong, PasswordTooShort, SessionExpired

BCRYPT_ROUNDS = 12
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72
"""bcrypt only reads 72 bytes, and bcrypt 5 raises on more: longer passwords are refused."""
JWT_ALGORITHM = "HS256"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Typeable codes: no 0/O or 1/I look-alikes."""
CODE_LENGTH = 8


def normalise_password(password: str) -> str:
    """NFC: the same password typed on two keyboards (é as one character, or e and an accent)
    is the same password."""
    return unicodedata.normalize("NFC", password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordTooShort(MIN_PASSWORD_CHARS)
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong(MAX_PASSWORD_BYTES)


def default_hashing_threads() -> int:
    """One core fewer than the machine has (at least one): a burst of logins then leaves a
    core to the event loop, so other chats stay responsive (bench/RESULTS.md, logins)."""
    return max(1, (os.cpu_count() or 1) - 1)


HASHING_NICENESS = 19
"""How far below the process's the hashing threads' CPU priority is (Linux nice levels, 19 at
most): a burst of logins then runs on what the event loop and the rest of the machine leave,
rather than taking turns with them on a core. On a saturated machine logins wait longer;
the other requests do not (bench/RESULTS.md, the GETs during logins)."""

_T = TypeVar("_T")


def lower_thread_priority() -> None:
    """Lowers the CPU priority of the calling thread only (on Linux a thread has a nice value
    of its own; raising it needs no privilege). Elsewhere, or where refused, nothing."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + HASHING_NICENESS))


class PasswordHasher:
    """bcrypt in worker threads of its own, at a lower CPU priority than the event loop's,
    with a bound on how many hash at once."""

    THREAD_NAME = "password-hashing"

    def __init__(self, rounds: int = BCRYPT_ROUNDS, max_parallel: int | None = None) -> None:
        self._rounds = rounds
        self.max_parallel = max_parallel or default_hashing_threads()
        self._slots = asyncio.Semaphore(self.max_parallel)
        # Not the loop's default executor: its threads run everyone's `to_thread` work, which
        # must keep the normal priority. These start on first use.
        self._threads = ThreadPoolExecutor(
            self.max_parallel, self.THREAD_NAME, initializer=lower_thread_priority
        )
        self._dummy_hash = bcrypt.hashpw(b"dummy password", bcrypt.gensalt(rounds)).decode()

    async def _in_thread(self, work: Callable[..., _T], *args: Any) -> _T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    async def hash(self, password: str) -> str:
        hashed = await self._in_thread(
            bcrypt.hashpw, password.encode(), bcrypt.gensalt(self._rounds)
        )
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """False for a wrong or over-long password; an unknown account (`hashed=None`) costs
        the same time as a known one, so timing does not reveal which emails exist."""
        candidate = password.encode()
        if len(candidate) > MAX_PASSWORD_BYTES:
            candidate = b"\0"  # never a match, but still costs one full check
        matched = await self._in_thread(
            bcrypt.checkpw, candidate, (hashed or self._dummy_hash).encode()
        )
        return matched and hashed is not None


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: UUID
    client: str
    """`client_claim` of the client the session is bound to: `chat:<id>`, or `api`."""
    jti: str
    issued_at: datetime
    expires_at: datetime


def client_claim(client: Client) -> str:
    """What a token names as its client: the chat for a chat session; only the kind for an API
    session (a caller's address changes, the session stays)."""
    if client.kind is ClientKind.CHAT:
        return f"{ClientKind.CHAT}:{client.key}"
    return str(client.kind)


class SessionTokens:
    """HS256 JWTs that name a user, a client and a session id; the algorithm is pinned."""

    REQUIRED = ("exp", "iat", "sub", "jti", "client")

    VERIFIED_KEPT = 4096
    """Tokens whose signature check is remembered (see `_verified_payload`)."""

    def __init__(self, secret: str, ttl: timedelta) -> None:
        self._secret = secret
        self.ttl = ttl
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def issue(
        self, user_id: UUID, client: Client, now: datetime, *, expires_at: datetime | None = None
    ) -> tuple[str, TokenClaims]:
        """A new token; it expires after `ttl`, or at `expires_at` when that comes first."""
        ends = now + self.ttl if expires_at is None else min(expires_at, now + self.ttl)
        claims = TokenClaims(
            user_id=user_id,
            client=client_claim(client),
            jti=secrets.token_urlsafe(16),
            issued_at=now,
            expires_at=ends,
        )
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "client": claims.client,
            "jti": claims.jti,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=JWT_ALGORITHM), claims

    def decode(self, token: str, client: Client, now: datetime) -> TokenClaims:
        """Raises `SessionExpired` for an expired token, `NotLoggedIn` for any other fault:
        wrong signature or algorithm, missing claim, or a token of another client (another
        chat, or the other kind: a chat's token used on the API and the other way round)."""
        payload = self._verified_payload(token)
        try:
            claims = TokenClaims(
                user_id=UUID(str(payload["sub"])),
                client=str(payload["client"]),
                jti=str(payload["jti"]),
                issued_at=datetime.fromtimestamp(int(payload["iat"]), tz=now.tzinfo),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=now.tzinfo),
            )
        except (ValueError, TypeError, OverflowError):
            raise NotLoggedIn("Your session is not valid.") from None
        if claims.client != client_claim(client):
            raise NotLoggedIn("This session belongs to another client.")
        if claims.expires_at <= now:
            raise SessionExpired("Your session has expired.")
        return claims

    def _verified_payload(self, token: str) -> dict[str, Any]:
        """The payload of a token signed with this secret and algorithm, with every required
        claim. A token that passed is remembered (the most recent `VERIFIED_KEPT`): every
        command checks its chat's token, the same one each time, and what the check reads
        cannot change. Only the signature check is skipped: the claims are judged anew on each
        call (`decode`). A token that failed is not remembered."""
        payload = self._verified.get(token)
        if payload is not None:
            self._verified.move_to_end(token)
            return payload
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                # `exp` and `iat` are judged against `now` in `decode`, not PyJWT's own clock,
                # so every deadline in core follows the one injected clock.
                options={
                    "require": list(self.REQUIRED),
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            raise NotLoggedIn("Your session is not valid.") from None
        self._verified[token] = payload
        if len(self._verified) > self.VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return payload


def new_code() -> str:
    """A one-time code a person can type: 8 characters, 40 bits, throttled on use."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return "".join(code.split()).upper().replace("-", "")


def new_link_payload() -> str:
    """For `t.me/<bot>?start=<payload>`: 128 random bits, in Telegram's allowed alphabet."""
    return secrets.token_urlsafe(16)


def hash_secret(value: str) -> str:
    """One-time secrets are stored as SHA-256: they are random, so no salt or stretching."""
    return hashlib.sha256(value.encode()).hexdigest()
