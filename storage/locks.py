"""One long-polling process per bot.

Telegram hands each update to one `getUpdates` caller; two pollers for the same token would
steal updates from each other. The first process takes a lock that dies with it (a Postgres
advisory lock on a connection of its own, or a `flock` beside the SQLite file), so a second
process can refuse to start instead of fighting, and a crashed one leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.private_files import create_private_file
from storage.errors import unavailable_as_domain_error


class PollingLock:
    def __init__(self, engine: AsyncEngine, bot_id: int) -> None:
        self._engine = engine
        self._key = int.from_bytes(
            hashlib.sha256(f"snippetvault:polling:{bot_id}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        self._connection: AsyncConnection | None = None
        self._file: IO[bytes] | None = None
        self._bot_id = bot_id

    async def acquire(self) -> bool:
        """True when this process is now the only poller; False when another one is."""
        url = make_url(str(self._engine.url))
        if url.get_backend_name() == "postgresql":
            return await self._acquire_advisory()
        if url.database and url.database != ":memory:":
            return self._acquire_file(Path(f"{url.database}.polling-{self._bot_id}.lock"))
        return True

    async def _acquire_advisory(self) -> bool:
        with unavailable_as_domain_error():
            connection = await self._engine.connect()
            try:
                taken = await connection.scalar(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                )
                await connection.commit()
            except BaseException:
                await connection.close()
                raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        return True

    def _acquire_file(self, path: Path) -> bool:
        create_private_file(path)
        file = path.open("ab")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        file.truncate(0)
        file.write(str(os.getpid()).encode())
        file.flush()
        self._file = file
        return True

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a lost connection released it already
                await self._connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                )
            await self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
