"""A pool of asyncpg connections for statements that each stand alone (`storage.bare`).

asyncpg's own pool does more per checkout than these statements need: a proxy object per
checkout, a task per checkin (`asyncio.shield`), a reset step and its timeout. For statements
of 0.1 ms that was 25 µs of CPU per use, two or three uses per `/get` (bench/NOTES.md, round 4).
Here a checkout pops a connection off a stack and a checkin pushes it back, and whoever waits
for a connection is served first come, first served (asyncio's queues let a newcomer take a
connection meant for a waiter, which left some waiting 150 ms in a closed loop).

Nothing here changes a connection's session state (no transactions, no `SET`), so a connection
comes back as it left, and `discard` ends one whose state is unknown (a statement failed or was
cancelled midway).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncpg

Connect = Callable[[], Awaitable[asyncpg.Connection]]
CLOSE_TIMEOUT_SECONDS = 5.0


class StatementConnections:
    """Up to `size` connections, opened as needed; one unused for `idle_seconds` is closed when
    the pool is next used. Bound the wait in `take()` from outside (`asyncio.timeout`)."""

    def __init__(
        self,
        connect: Connect,
        *,
        size: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._size = size
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        """Connections not in use, each with when it came back; the most recent last (taken
        first, so the ones below it stay unused and close once idle long enough)."""
        self._opened = 0
        """Connections open or being opened (in use or idle)."""
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection | None]] = (
            collections.deque()
        )
        self._closing: set[asyncio.Task[None]] = set()

    def take_idle(self) -> asyncpg.Connection | None:
        """A connection at once, if one is open and unused (no waiting, no connecting)."""
        self._close_long_idle()
        while self._idle:
            connection, _ = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._forget()  # the server closed it while it sat idle
        return None

    async def take(self) -> asyncpg.Connection:
        while True:
            connection = self.take_idle()
            if connection is not None:
                return connection
            if self._opened < self._size:
                return await self._open()
            handed = await self._wait()
            if handed is not None:
                return handed
            # None: a place came free (a connection was discarded); open one in it.

    def give_back(self, connection: asyncpg.Connection) -> None:
        """Returns a connection after a statement that completed."""
        if connection.is_closed():
            self._forget()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append((connection, self._clock()))

    def discard(self, connection: asyncpg.Connection) -> None:
        """Ends a connection whose state is unknown (a statement failed or was cancelled)."""
        connection.terminate()
        self._forget()

    def discard_idle(self) -> None:
        """Ends every connection not in use: after the server was lost, they are as dead as
        the one that failed, and each would fail a statement of its own."""
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.terminate()
            self._forget()

    async def close(self) -> None:
        """Closes the connections not in use; those in use come back to the pool as usual, and
        the pool stays usable."""
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._opened -= 1
            self._close_later(connection)
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def _open(self) -> asyncpg.Connection:
        self._opened += 1
        try:
            return await self._connect()
        except BaseException:
            self._forget()
            raise

    async def _wait(self) -> asyncpg.Connection | None:
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            # Given up (a timeout, a cancel): what was handed to it goes to the next in line.
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is None:
                    self._wake_one()
                else:
                    self.give_back(handed)
            else:
                self._waiters.remove(waiter)
            raise

    def _forget(self) -> None:
        """A connection is gone: its place goes to the first waiter, who opens one."""
        self._opened -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_long_idle(self) -> None:
        stale = self._clock() - self._idle_seconds
        while self._idle and self._idle[0][1] < stale:
            connection, _ = self._idle.pop(0)
            self._opened -= 1
            self._close_later(connection)

    def _close_later(self, connection: asyncpg.Connection) -> None:
        """Closes politely (a Terminate message) without holding up whoever triggered it."""
        task = asyncio.ensure_future(_close(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close(connection: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing left to close
        await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
