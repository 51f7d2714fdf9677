"""The floors: handlers in the same `Application` that do only what a command cannot avoid.

`/floor` replies with a fixed text: PTB's parsing, dispatch and reply, our harness, nothing
of ours. Each `/floor_<command>` adds the raw round trips that command needs, made with the
bare drivers (asyncpg on dedicated connections, redis-py), then replies the same way:

- session: one SELECT that joins the chat's newest live session to its user;
- cached /get: session + one Redis GET of the snippet + one INSERT of the outbox row
  (autocommit: one round trip that commits);
- cold /get: session + one Redis GET (a miss) + one SELECT by (owner, ref) + one Redis SET
  (the cache fill) + the outbox INSERT;
- /save: session + one transaction {UPDATE the user's ref counter RETURNING, INSERT the
  snippet, INSERT the outbox row} + one Redis DEL of the user's cached list;
- /list: session + one Redis GET of the cached first page;
- /search: session + one SELECT of the page with its total (`count(*) OVER ()`).

The floor handlers are in group -1, so a real command pays one extra, failed
`CommandHandler.check_update` (microseconds) for them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from telegram import Update
from telegram.ext import ApplicationHandlerStop, CommandHandler

from bench.harness import AnyApplication
from bot.context import reply

FLOOR_TEXT = "ok"

SESSION_SQL = """
SELECT u.id, u.email, u.is_verified, s.token
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.client_kind = 'chat' AND s.client_key = $1 AND s.revoked_at IS NULL
ORDER BY s.issued_at DESC LIMIT 1
"""
OUTBOX_SQL = """
INSERT INTO outbox (id, message_id, recipient, kind, context, status, attempts,
                    next_attempt_at, created_at)
VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)
"""
SNIPPET_BY_REF_SQL = "SELECT * FROM snippets WHERE owner_id = $1 AND ref = $2"
NEXT_REF_SQL = "UPDATE users SET snippet_seq = snippet_seq + 1 WHERE id = $1 RETURNING snippet_seq"
INSERT_SNIPPET_SQL = """
INSERT INTO snippets (id, owner_id, ref, title, code, language, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
"""
SEARCH_SQL = """
SELECT id, ref, title, language, created_at, count(*) OVER () AS total
FROM snippets
WHERE owner_id = $1 AND (lower(title) LIKE $2 OR lower(code) LIKE $2)
ORDER BY created_at DESC, ref DESC LIMIT 8
"""


UNSYNCED = {"synchronous_commit": "off"}
"""The settings of the connections that write the email of a /get, as the product's are
(`storage.bare.BareStatements`): their commits do not wait for the disk (`bench.api_process`'s
floor pools)."""


class FloorDrivers:
    """Bare drivers for the floors: up to one asyncpg connection per concurrent chat, opened
    when first needed, and one Redis client. The /get floors' commits do not wait for the disk,
    as the product's do: a connection is switched (`SET synchronous_commit`) when a floor of the
    other kind takes it, once per connection and row, since floor rows run one at a time."""

    def __init__(self, dsn: str, redis_url: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        self._waits_for_disk: dict[asyncpg.Connection, bool] = {}
        self._returned = asyncio.Condition()
        self.redis = aioredis.Redis.from_url(redis_url)

    async def open(self) -> None:
        """Checks that the database answers (the connections open as the floors need them)."""
        async with self.connection():
            pass

    async def release(self) -> None:
        """Closes the connections (all idle between rows), so that the product's row after a
        floor's has the server's connections to itself; the next floor opens its own again."""
        async with self._returned:
            idle, self._idle = self._idle, []
            for connection in idle:
                del self._waits_for_disk[connection]
                await connection.close()
            self._opened -= len(idle)

    async def close(self) -> None:
        await self.release()
        for connection in self._waits_for_disk:
            await connection.close()
        await self.redis.aclose()

    @asynccontextmanager
    async def connection(self, *, wait_for_disk: bool = True) -> AsyncIterator[asyncpg.Connection]:
        connection = await self._checkout()
        try:
            if self._waits_for_disk[connection] != wait_for_disk:
                await connection.execute(
                    f"SET synchronous_commit = {'on' if wait_for_disk else 'off'}"
                )
                self._waits_for_disk[connection] = wait_for_disk
            yield connection
        finally:
            async with self._returned:
                self._idle.append(connection)
                self._returned.notify()

    async def _checkout(self) -> asyncpg.Connection:
        async with self._returned:
            while not self._idle and self._opened >= self._size:
                await self._returned.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        connection = await asyncpg.connect(self._dsn)
        self._waits_for_disk[connection] = True
        return connection


class Floors:
    def __init__(self, drivers: FloorDrivers, snippet_ids: dict[tuple[uuid.UUID, int], uuid.UUID]):
        self._drivers = drivers
        self._snippet_ids = snippet_ids

    def install(self, application: AnyApplication) -> None:
        handlers = {
            "floor": self.floor,
            "floor_get": self.cached_get,
            "floor_cold": self.cold_get,
            "floor_save": self.save,
            "floor_list": self.list_first_page,
            "floor_search": self.search,
        }
        for name, callback in handlers.items():
            application.add_handler(CommandHandler(name, callback), group=-1)

    async def _session(self, connection: asyncpg.Connection, update: Update) -> asyncpg.Record:
        assert update.effective_chat is not None
        row = await connection.fetchrow(SESSION_SQL, str(update.effective_chat.id))
        assert row is not None, "the floor needs a logged-in chat"
        return row

    async def _reply(self, update: Update) -> None:
        await reply(update, FLOOR_TEXT)
        raise ApplicationHandlerStop

    async def _outbox(self, connection: asyncpg.Connection, to: str, context: str) -> None:
        email_id = uuid.uuid4()
        await connection.execute(
            OUTBOX_SQL,
            email_id,
            f"<{email_id.hex}@floor>",
            to,
            "snippet_retrieved",
            context,
            datetime.now(UTC),
        )

    async def floor(self, update: Update, context: Any) -> None:
        await self._reply(update)

    async def cached_get(self, update: Update, context: Any) -> None:
        ref = int(context.args[0])
        async with self._drivers.connection(wait_for_disk=False) as connection:
            user = await self._session(connection, update)
            value = await self._drivers.redis.get(f"snippet:{self._snippet_ids[(user['id'], ref)]}")
            assert value is not None, "the floor of a cached /get needs the snippet cached"
            text = value.decode() if isinstance(value, bytes) else value
            await self._outbox(connection, user["email"], text)
        await self._reply(update)

    async def cold_get(self, update: Update, context: Any) -> None:
        ref = int(context.args[0])
        redis = self._drivers.redis
        async with self._drivers.connection(wait_for_disk=False) as connection:
            user = await self._session(connection, update)
            key = f"floor:{user['id']}:{ref}"
            await redis.get(key)
            row = await connection.fetchrow(SNIPPET_BY_REF_SQL, user["id"], ref)
            assert row is not None
            value = json.dumps({"title": row["title"], "code": row["code"], "ref": ref})
            await redis.set(key, value, ex=300)
            await self._outbox(connection, user["email"], value)
        await self._reply(update)

    async def save(self, update: Update, context: Any) -> None:
        assert update.effective_message is not None and update.effective_message.text
        first, _, code = update.effective_message.text.partition("\n")
        title = first.partition(" ")[2]
        now = datetime.now(UTC)
        async with self._drivers.connection() as connection:
            user = await self._session(connection, update)
            async with connection.transaction():
                ref = await connection.fetchval(NEXT_REF_SQL, user["id"])
                await connection.execute(
                    INSERT_SNIPPET_SQL, uuid.uuid4(), user["id"], ref, title, code, "python", now
                )
                await self._outbox(
                    connection, user["email"], json.dumps({"title": title, "ref": ref})
                )
            await self._drivers.redis.delete(f"user:{user['id']}:snippets")
        await self._reply(update)

    async def list_first_page(self, update: Update, context: Any) -> None:
        async with self._drivers.connection() as connection:
            user = await self._session(connection, update)
        value = await self._drivers.redis.get(f"user:{user['id']}:snippets")
        assert value is not None, "the floor of /list needs the list cached"
        await self._reply(update)

    async def search(self, update: Update, context: Any) -> None:
        pattern = f"%{' '.join(context.args).lower()}%"
        async with self._drivers.connection() as connection:
            user = await self._session(connection, update)
            await connection.fetch(SEARCH_SQL, user["id"], pattern)
        await self._reply(update)
