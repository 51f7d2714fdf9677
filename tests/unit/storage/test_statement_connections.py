"""The pool of the quick statements (`storage.connections`): first come, first served; a place
freed by a discarded connection goes to a waiter; nothing leaks when a waiter gives up; idle
connections close. Connections here are fakes with asyncpg's few methods the pool uses (the
real ones are in tests/integration/storage/test_storage_quick_statements.py)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from storage.connections import StatementConnections


class FakeConnection:
    numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.numbers)
        self.closed = False
        self.politely = False

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.closed = True

    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - asyncpg's
        self.closed = self.politely = True


class Server:
    """Opens fake connections, counting them; `refuse` makes the next connect fail."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []
        self.refuse = False

    async def connect(self) -> Any:
        await asyncio.sleep(0)
        if self.refuse:
            raise OSError("connection refused")
        connection = FakeConnection()
        self.opened.append(connection)
        return connection


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def pool(server: Server, clock: Clock, size: int = 2) -> StatementConnections:
    return StatementConnections(server.connect, size=size, idle_seconds=60, clock=clock)


async def test_connections_open_as_needed_up_to_the_size_and_are_reused(
    server: Server, clock: Clock
) -> None:
    connections = pool(server, clock)
    first, second = await connections.take(), await connections.take()
    connections.give_back(first)
    assert await connections.take() is first
    connections.give_back(first)
    connections.give_back(second)
    assert connections.take_idle() is second  # the most recently used first
    assert len(server.opened) == 2


async def test_waiters_are_served_in_the_order_they_came(server: Server, clock: Clock) -> None:
    connections = pool(server, clock, size=1)
    held = await connections.take()
    served: list[str] = []

    async def use(name: str) -> None:
        connection = await connections.take()
        served.append(name)
        connections.give_back(connection)

    waiting = [asyncio.create_task(use(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)
    connections.give_back(held)
    # A newcomer arriving as the connection comes back must not jump the queue.
    newcomer = asyncio.create_task(use("newcomer"))
    await asyncio.gather(*waiting, newcomer)

    assert served == ["a", "b", "c", "newcomer"]
    assert len(server.opened) == 1


async def test_a_discarded_connection_frees_its_place_for_a_waiter(
    server: Server, clock: Clock
) -> None:
    connections = pool(server, clock, size=1)
    broken = await connections.take()
    waiter = asyncio.create_task(connections.take())
    await asyncio.sleep(0)

    connections.discard(broken)
    replacement = await waiter

    assert broken.closed
    assert replacement is not broken and not replacement.is_closed()
    assert len(server.opened) == 2


async def test_a_waiter_that_gives_up_passes_on_what_it_was_handed(
    server: Server, clock: Clock
) -> None:
    connections = pool(server, clock, size=1)
    held = await connections.take()
    impatient = asyncio.create_task(connections.take())
    patient = asyncio.create_task(connections.take())
    await asyncio.sleep(0)

    connections.give_back(held)  # handed to the impatient one, who is cancelled before it runs
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient

    assert await asyncio.wait_for(patient, 5) is held


async def test_a_timed_out_waiter_leaves_the_queue(server: Server, clock: Clock) -> None:
    connections = pool(server, clock, size=1)
    held = await connections.take()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await connections.take()

    connections.give_back(held)

    assert connections.take_idle() is held


async def test_a_failed_connect_frees_its_place(server: Server, clock: Clock) -> None:
    connections = pool(server, clock, size=1)
    server.refuse = True
    with pytest.raises(OSError, match="refused"):
        await connections.take()
    server.refuse = False

    assert not (await connections.take()).is_closed()


async def test_connections_the_server_closed_or_left_idle_too_long_are_not_handed_out(
    server: Server, clock: Clock
) -> None:
    connections = pool(server, clock, size=3)
    old, dead, fresh = [await connections.take() for _ in range(3)]
    connections.give_back(old)
    clock.now += 50
    connections.give_back(dead)
    connections.give_back(fresh)
    dead.closed = True  # the server ended it while it sat idle
    clock.now += 20  # `old` has now been idle for 70 s, the others for 20

    assert connections.take_idle() is fresh
    assert connections.take_idle() is None
    await asyncio.sleep(0)
    assert old.politely
    assert len(server.opened) == 3


async def test_after_a_lost_server_the_idle_connections_are_ended(
    server: Server, clock: Clock
) -> None:
    connections = pool(server, clock, size=3)
    taken = [await connections.take() for _ in range(3)]
    for connection in taken[1:]:
        connections.give_back(connection)

    connections.discard(taken[0])
    connections.discard_idle()

    assert all(connection.closed for connection in taken)
    assert not (await connections.take()).is_closed()
    assert len(server.opened) == 4


async def test_close_closes_the_idle_connections_and_the_pool_stays_usable(
    server: Server, clock: Clock
) -> None:
    connections = pool(server, clock)
    first = await connections.take()
    connections.give_back(first)

    await connections.close()

    assert first.politely
    assert await connections.take() is not first
