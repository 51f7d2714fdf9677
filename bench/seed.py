"""Test data written straight into the database (the bench measures commands, not signups).

Users get one bcrypt hash at production cost (rounds=12), computed once and reused; sessions
are issued with the application's own `SessionTokens` and the run's JWT secret; snippets are
loaded with COPY. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import bcrypt

from core.entities import Client
from core.security import BCRYPT_ROUNDS, SessionTokens

PASSWORD = "bench-password-12"
LANGUAGES = ("Python", "JavaScript", "Go", "Rust", "SQL")
"""Canonical names, as the bot stores them (`core.text.detect_language`)."""
FIRST_CHAT_ID = 700_000_000
LOGIN_CHAT_OFFSET = 50_000_000


@dataclass
class BenchUser:
    id: uuid.UUID
    email: str
    chat_id: int


@dataclass
class Fixture:
    users: list[BenchUser]
    """Logged in (a session for their chat), verified, each with `snippets_per_user` snippets."""
    login_users: list[BenchUser]
    """Verified, not logged in: for the login scenario (password `PASSWORD`)."""
    snippets_per_user: int
    snippet_ids: dict[tuple[uuid.UUID, int], uuid.UUID]
    search_terms: list[str]
    seed_seconds: dict[str, float] = field(default_factory=dict)

    def user_by_chat(self) -> dict[int, BenchUser]:
        return {user.chat_id: user for user in self.users}


def vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "zu", "ter", "vex", "dor", "pan", "qui", "sor", "bel", "ny"]
    suffixes = ["", "_list", "_map", "_count", "_buffer", "_index", "_node", "_cache"]
    words: set[str] = set()
    while len(words) < size:
        stem = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        words.add(stem + rng.choice(suffixes))
    return sorted(words)


_TEMPLATES = (
    "def {a}({b}, {c}):\n    return [{d}(x) for x in {b} if x != {c}]\n",
    "for {a} in {b}:\n    {c}.append({d}({a}))\n",
    "const {a} = ({b}) => {b}.map(({c}) => {d}({c}));\n",
    "func {a}({b} []int) int {{\n\treturn len({b}) + {c}\n}}\n",
    "SELECT {a}, count(*) FROM {b} WHERE {c} > 0 GROUP BY {a};\n",
    "let {a}: Vec<u32> = {b}.iter().map(|{c}| {d}({c})).collect();\n",
    "if {a} is None:\n    raise ValueError('{b} needs {c}')\n",
)


def snippet_code(rng: random.Random, words: list[str], lines: int) -> str:
    parts = []
    for _ in range(lines):
        template = rng.choice(_TEMPLATES)
        parts.append(
            template.format(
                a=rng.choice(words), b=rng.choice(words), c=rng.choice(words), d=rng.choice(words)
            )
        )
    return "".join(parts)


async def seed(
    dsn: str,
    jwt_secret: str,
    *,
    users: int,
    snippets: int,
    login_users: int,
    seed_value: int = 4,
) -> Fixture:
    rng = random.Random(seed_value)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()
    timings["bcrypt hash (once)"] = time.perf_counter() - started

    now = datetime.now(UTC)
    tokens = SessionTokens(jwt_secret, timedelta(days=1))
    people = [
        BenchUser(uuid.uuid4(), f"bench{k}@example.com", FIRST_CHAT_ID + k) for k in range(users)
    ]
    logins = [
        BenchUser(uuid.uuid4(), f"login{k}@example.com", FIRST_CHAT_ID + LOGIN_CHAT_OFFSET + k)
        for k in range(login_users)
    ]
    per_user = max(1, snippets // max(1, users))
    words = vocabulary(rng, 5000)
    snippet_ids: dict[tuple[uuid.UUID, int], uuid.UUID] = {}
    records = []
    epoch = now - timedelta(days=365)
    for user in people:
        for ref in range(1, per_user + 1):
            snippet_id = uuid.uuid4()
            snippet_ids[(user.id, ref)] = snippet_id
            created = epoch + timedelta(seconds=ref * 60 + rng.random())
            title = f"{rng.choice(words)} {rng.choice(words)}"
            records.append(
                (
                    snippet_id,
                    user.id,
                    ref,
                    title,
                    snippet_code(rng, words, rng.randint(3, 9)),
                    rng.choice(LANGUAGES),
                    created,
                    created,
                )
            )

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "users",
            records=[
                (user.id, user.email, hashed, True, now, per_user if user in people else 0)
                for user in [*people, *logins]
            ],
            columns=["id", "email", "hashed_password", "is_verified", "created_at", "snippet_seq"],
        )
        sessions = []
        for user in people:
            token, claims = tokens.issue(user.id, Client.chat(user.chat_id), now)
            sessions.append(
                (claims.jti, user.id, "chat", str(user.chat_id), token, now, claims.expires_at)
            )
        await connection.copy_records_to_table(
            "sessions",
            records=sessions,
            columns=[
                "jti",
                "user_id",
                "client_kind",
                "client_key",
                "token",
                "issued_at",
                "expires_at",
            ],
        )
        timings["users and sessions (COPY)"] = time.perf_counter() - started
        started = time.perf_counter()
        await connection.execute("SET maintenance_work_mem = '256MB'")
        await connection.copy_records_to_table(
            "snippets",
            records=records,
            columns=[
                "id",
                "owner_id",
                "ref",
                "title",
                "code",
                "language",
                "created_at",
                "updated_at",
            ],
        )
        timings[f"{len(records)} snippets (COPY, indexes in place)"] = time.perf_counter() - started
        started = time.perf_counter()
        await connection.execute("VACUUM ANALYZE snippets")
        await connection.execute("ANALYZE users")
        await connection.execute("ANALYZE sessions")
        timings["VACUUM ANALYZE"] = time.perf_counter() - started
    finally:
        await connection.close()
    # Terms a person would search for: identifiers that occur in the data.
    search_terms = rng.sample(words, 200)
    return Fixture(people, logins, per_user, snippet_ids, search_terms, timings)
