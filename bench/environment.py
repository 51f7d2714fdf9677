"""The bench's own backends: a Postgres database created and dropped for the run, a Redis
database index claimed and flushed, and an aiosmtpd SMTP sink in this process."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis
from aiosmtpd.smtp import SMTP, Envelope, Session

from storage.migrate import upgrade

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_SERVER = "redis://127.0.0.1:6379"
REDIS_CLAIM_KEY = "snippetvault:test-run"
"""The key the test suite claims a database index with: test runs leave ours alone."""
SMTP_HOST = "127.0.0.1"


@dataclass
class BenchDatabase:
    admin_dsn: str
    name: str

    @property
    def dsn(self) -> str:
        """For asyncpg."""
        return self.admin_dsn.rsplit("/", 1)[0] + f"/{self.name}"

    @property
    def url(self) -> str:
        """For SQLAlchemy (the application's `DATABASE_URL`)."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    @classmethod
    async def create(cls, admin_dsn: str = POSTGRES_ADMIN_DSN) -> BenchDatabase:
        database = cls(admin_dsn, f"snippetvault_bench_{uuid.uuid4().hex[:10]}")
        connection = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await connection.execute(f'CREATE DATABASE "{database.name}"')
        finally:
            await connection.close()
        await upgrade(database.url)
        return database

    async def drop(self) -> None:
        connection = await asyncpg.connect(self.admin_dsn, timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await connection.close()


async def claim_redis(server: str = REDIS_SERVER) -> str:
    """A database index no test run or other bench uses right now, flushed."""
    run_id = uuid.uuid4().hex
    for index in range(15, 0, -1):
        url = f"{server}/{index}"
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            if await client.set(REDIS_CLAIM_KEY, run_id, nx=True, ex=3600):
                await flush_redis(url)
                return url
        finally:
            await client.aclose()
    raise RuntimeError("every Redis database index 1-15 is claimed by a test run")


async def flush_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
        await client.set(REDIS_CLAIM_KEY, "bench", ex=3600)
    finally:
        await client.aclose()


async def release_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class SmtpSink:
    """Accepts every message and counts it by `Message-ID` (so a duplicate send shows)."""

    message_ids: Counter[bytes] = field(default_factory=Counter)
    port: int = 0
    _server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        headers = content.split(b"\r\n\r\n", 1)[0]
        match = _MESSAGE_ID.search(headers)
        self.message_ids[match.group(1) if match else b"<none>"] += 1
        return "250 2.0.0 Message accepted"

    @property
    def received(self) -> int:
        return sum(self.message_ids.values())

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.message_ids.values() if count > 1)

    def reset(self) -> None:
        self.message_ids.clear()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # hostname given, so aiosmtpd does not resolve this machine's FQDN
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="smtp.bench.local"), SMTP_HOST, 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
