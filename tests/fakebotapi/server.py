"""``FakeBotApiServer``: the fake Bot API over real HTTP/1.1 on 127.0.0.1, for a bot that runs as
a subprocess (``TELEGRAM_API_BASE_URL=server.base_url``, ``TELEGRAM_FILE_BASE_URL=
server.base_file_url``).

It runs in the test's own event loop, so the test must keep awaiting (``wait_for_message``,
``asyncio.create_subprocess_exec``…) while the bot works: a blocking call stalls the server.
Connections are kept alive as httpx expects; a request whose client disconnects (PTB cancelling
a long poll on shutdown) is cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from tests.fakebotapi.records import BotApiError
from tests.fakebotapi.state import FakeTelegram
from tests.fakebotapi.wire import ApiTarget, FileTarget, parse_body, query_params, route

_DISCONNECT_CHECK_SECONDS = 0.05
_MAX_BODY_BYTES = 60 * 1024 * 1024


@dataclass(frozen=True)
class _HttpRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


@dataclass(frozen=True)
class _Response:
    status: int
    content_type: str
    body: bytes


class _MalformedRequest(Exception):
    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


def _json(status: int, body: object) -> _Response:
    return _Response(status, "application/json", json.dumps(body).encode())


class FakeBotApiServer:
    """``async with FakeBotApiServer(telegram) as server:`` serves ``telegram`` on a free port."""

    def __init__(self, telegram: FakeTelegram, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.telegram = telegram
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``TELEGRAM_API_BASE_URL`` / ``ApplicationBuilder.base_url``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``TELEGRAM_FILE_BASE_URL`` / ``ApplicationBuilder.base_file_url``."""
        return f"{self.url}/file/bot"

    def env(self) -> dict[str, str]:
        """The environment a ``snippetvault run`` subprocess needs to talk to this server."""
        return {
            "TELEGRAM_BOT_TOKEN": self.telegram.token,
            "TELEGRAM_API_BASE_URL": self.base_url,
            "TELEGRAM_FILE_BASE_URL": self.base_file_url,
        }

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except _MalformedRequest as error:
                    body = {"ok": False, "error_code": error.status, "description": str(error)}
                    writer.write(_render(_json(error.status, body), keep_alive=False))
                    await writer.drain()
                    return
                if request is None:
                    return
                response = await self._respond_unless_gone(request, reader)
                if response is None:  # client gone, or Telegram "unreachable"
                    return
                writer.write(_render(response, keep_alive=request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away mid-request
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond_unless_gone(
        self, request: _HttpRequest, reader: asyncio.StreamReader
    ) -> _Response | None:
        work = asyncio.create_task(self._dispatch(request))
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=_DISCONNECT_CHECK_SECONDS)
                if not work.done() and reader.at_eof():
                    return None
            return work.result()
        finally:
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work

    async def _dispatch(self, request: _HttpRequest) -> _Response | None:
        if self.telegram.offline:
            return None
        parts = urlsplit(request.target)
        target = route(parts.path)
        if isinstance(target, FileTarget):
            status, payload = self.telegram.download(target.token, target.file_path)
            content_type = "application/octet-stream" if status == 200 else "application/json"
            return _Response(status, content_type, payload)
        if not isinstance(target, ApiTarget):
            return _json(404, BotApiError(404, "Not Found").to_json())
        try:
            params, files = parse_body(request.headers.get("content-type", ""), request.body)
        except BotApiError as error:
            return _json(error.error_code, error.to_json())
        params = {**query_params(parts.query), **params}
        status, body = await self.telegram.call(target.token, target.method, params, files)
        return _json(status, body)


async def _read_request(reader: asyncio.StreamReader) -> _HttpRequest | None:
    """One HTTP/1.1 request, or None when the client closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _MalformedRequest(HTTPStatus.BAD_REQUEST) from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise _MalformedRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE) from exc
    request_line, *header_lines = head.decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
    try:
        method, target, version = request_line.split(" ")
    except ValueError as exc:
        raise _MalformedRequest(HTTPStatus.BAD_REQUEST) from exc
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise _MalformedRequest(HTTPStatus.BAD_REQUEST)
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError as exc:
            raise _MalformedRequest(HTTPStatus.BAD_REQUEST) from exc
        if not 0 <= length <= _MAX_BODY_BYTES:
            raise _MalformedRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = await reader.readexactly(length)
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return _HttpRequest(method, target, headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise _MalformedRequest(HTTPStatus.BAD_REQUEST) from exc
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _render(response: _Response, *, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        "Server: fakebotapi\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + response.body
