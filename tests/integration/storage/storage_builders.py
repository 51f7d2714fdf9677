"""Builders for storage tests: valid entities with unique values, so tests never collide."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.entities import EmailKind, OutgoingEmail, Snippet, User
from core.ports import UnitOfWorkFactory

T0 = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

SaveUser = Callable[..., Awaitable[User]]
"""The `saved_user` fixture: stores a new user (overrides as for `new_user`) and returns it."""


def new_user(**overrides: Any) -> User:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": f"user-{uuid.uuid4().hex[:10]}@example.com",
        "hashed_password": "$2b$12$" + "x" * 53,
        "is_verified": False,
        "created_at": T0,
    }
    values.update(overrides)
    return User(**values)


def new_snippet(owner: User, ref: int, **overrides: Any) -> Snippet:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner_id": owner.id,
        "ref": ref,
        "title": f"snippet {ref}",
        "code": f"print({ref})",
        "language": "python",
        "created_at": T0 + timedelta(minutes=ref),
        "updated_at": T0 + timedelta(minutes=ref),
    }
    values.update(overrides)
    return Snippet(**values)


async def save_snippets(uow_factory: UnitOfWorkFactory, *items: Snippet) -> None:
    """Stores `items` in one unit of work."""
    async with uow_factory() as uow:
        for snippet in items:
            await uow.snippets.add(snippet)
        await uow.commit()


def new_email(at: datetime = T0, **overrides: Any) -> OutgoingEmail:
    email_id = uuid.uuid4()
    values: dict[str, Any] = {
        "id": email_id,
        "to": f"to-{email_id.hex[:8]}@example.com",
        "kind": EmailKind.LOGIN_ALERT,
        "context": {"at": at.isoformat(), "zone": "UTC"},
        "message_id": f"<{email_id.hex}@snippetvault>",
        "created_at": at,
    }
    values.update(overrides)
    return OutgoingEmail(**values)


def free_port() -> int:
    """A local TCP port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TcpProxy:
    """A TCP proxy to the real server that the test can cut and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = free_port()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stops listening and drops every open connection, like a server going away."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        self._writers |= {client_writer, server_writer}
        pumps = [
            asyncio.create_task(self._pump(client_reader, server_writer)),
            asyncio.create_task(self._pump(server_reader, client_writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_writer, server_writer):
            writer.close()
            self._writers.discard(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word (a hung server); yields it."""
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()


class FakeClock:
    """The storage's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
