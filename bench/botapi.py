"""A lean Bot API over HTTP on localhost, for bots that run as processes of their own.

Enough of Telegram for the bench's end-to-end rows and the rate-limit tests: any number of
bots (by token), long-polled `getUpdates` as Telegram answers it (held open until an update
comes or `timeout` passes), and answers to the methods a bot calls. It keeps no messages:
it counts what each bot sends (per bot and per chat, with a timestamp each), resolves the
simulated user who waits for a reply in a chat, and can answer 429 (`RetryAfter`) on demand.

Unlike Telegram, several processes may long-poll one bot at once: each update goes to one of
them, as a load balancer in front of webhook replicas would hand it out.

The tests may import this module; the bench never imports from `tests/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

REPLY_METHODS = frozenset({"sendmessage", "senddocument", "editmessagetext", "sendphoto"})
_CLIENT_GONE_CHECK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Sent:
    """One request of a bot that names a chat, as the API received it."""

    at: float
    method: str
    chat_id: int | str


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a simulated user sees: a reply in their chat, and when it arrived."""

    at: float
    method: str
    text: str


@dataclass
class Flood:
    """429s on demand: the next `requests` requests naming a chat are refused, each told to
    retry after `retry_after` seconds; `refused_at` says when."""

    retry_after: int
    requests: int
    refused_at: list[float] = field(default_factory=list)


@dataclass
class BotState:
    token: str
    username: str
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    sent: list[Sent] = field(default_factory=list)
    waiting: dict[int | str, list[tuple[str | None, asyncio.Future[Delivered]]]] = field(
        default_factory=dict
    )
    floods: list[Flood] = field(default_factory=list)
    pollers: int = 0
    max_batch: int = 100
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def id(self) -> int:
        return int(self.token.split(":", 1)[0])

    def me(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.username,
            "username": self.username,
        }

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def next_update_id(self) -> int:
        return next(self._update_ids)


class BotApi:
    """`async with BotApi() as api:`; `api.bot(token)` registers a bot; users call `send`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.bots: dict[str, BotState] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- set-up ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    def env(self, token: str) -> dict[str, str]:
        """The environment a `snippetvault run` process needs to use this API as `token`."""
        return {
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_API_BASE_URL": self.base_url,
            "TELEGRAM_FILE_BASE_URL": self.base_file_url,
        }

    def bot(self, token: str, username: str = "BenchBot", *, max_batch: int = 100) -> BotState:
        state = self.bots.get(token)
        if state is None:
            state = self.bots[token] = BotState(token, username, max_batch=max_batch)
        return state

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

    # -- simulated users ---------------------------------------------------------------------

    async def send(self, token: str, chat_id: int, text: str) -> None:
        """A user writes `text` in chat `chat_id` (private when positive, a group when not)."""
        bot = self.bots[token]
        update_id = bot.next_update_id()
        command = text.split("\n", 1)[0].split(" ", 1)[0]
        chat: dict[str, Any] = (
            {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
            if chat_id > 0
            else {"id": chat_id, "type": "group", "title": f"Group{-chat_id}"}
        )
        user_id = chat_id if chat_id > 0 else 10**9 + update_id
        message: dict[str, Any] = {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "text": text,
        }
        if command.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        async with bot.arrived:
            bot.updates.append({"update_id": update_id, "message": message})
            bot.arrived.notify_all()

    def expect(
        self, token: str, chat_id: int, text: str | None = None
    ) -> asyncio.Future[Delivered]:
        """The next reply the bot sends to `chat_id` (with exactly `text`, when given); call it
        before `send`. Several may wait in one chat (a group): the first that matches wins."""
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        self.bots[token].waiting.setdefault(chat_id, []).append((text, future))
        return future

    def forget(self, token: str, chat_id: int) -> None:
        """Stop waiting in `chat_id` (a user who gave up)."""
        self.bots[token].waiting.pop(chat_id, None)

    async def ask(self, token: str, chat_id: int, text: str, *, echo: bool = False) -> Delivered:
        """Sends `text` and returns the reply (with `echo`: the reply that repeats `text`)."""
        waiting = self.expect(token, chat_id, text if echo else None)
        await self.send(token, chat_id, text)
        return await waiting

    def flood(self, token: str, retry_after: int, requests: int = 1) -> Flood:
        """Answer the next `requests` requests that name a chat with a 429 (`RetryAfter`)."""
        flood = Flood(retry_after, requests)
        self.bots[token].floods.append(flood)
        return flood

    # -- counting ----------------------------------------------------------------------------

    def most_in_any_second(self, token: str, chat_id: int | str | None = None) -> int:
        """The most requests naming a chat (that chat, or any) inside any 1-second window."""
        times = [s.at for s in self.bots[token].sent if chat_id is None or s.chat_id == chat_id]
        times.sort()
        most, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    # -- HTTP --------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                path, content_type, body, keep_alive = request
                status, answer = await self._answer_unless_gone(path, content_type, body, reader)
                if status == 0:
                    return
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                    b"Connection: %s\r\n\r\n"
                    % (
                        status,
                        b"OK" if status == 200 else b"Error",
                        len(answer),
                        b"keep-alive" if keep_alive else b"close",
                    )
                    + answer
                )
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # The server closing with keep-alive connections still open (the bots' pools): the
            # task ends here, so asyncio's stream callback has no cancellation to report.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer_unless_gone(
        self, path: str, content_type: str, body: bytes, reader: asyncio.StreamReader
    ) -> tuple[int, bytes]:
        """(0, b"") when the client went away during a long poll (PTB cancelling it)."""
        work = asyncio.ensure_future(self._answer(path, content_type, body))
        try:
            while True:
                done, _ = await asyncio.wait({work}, timeout=_CLIENT_GONE_CHECK_SECONDS)
                if done:
                    return work.result()
                if reader.at_eof():
                    return 0, b""
        finally:
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work

    async def _answer(self, path: str, content_type: str, body: bytes) -> tuple[int, bytes]:
        parts = urlsplit(path)
        segments = parts.path.split("/")
        if len(segments) != 3 or not segments[1].startswith("bot"):
            return 404, b'{"ok":false,"error_code":404,"description":"Not Found"}'
        bot = self.bots.get(segments[1][3:])
        if bot is None:
            return 401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}'
        method = segments[2].lower()
        params = _params(content_type, body)
        params.update(parse_qsl(parts.query))
        if method == "getupdates":
            return 200, await self._get_updates(bot, params)
        chat_id = params.get("chat_id")
        if chat_id is not None:
            now = self.clock()
            chat = _chat(chat_id)
            flood = next((f for f in bot.floods if len(f.refused_at) < f.requests), None)
            if flood is not None:
                flood.refused_at.append(now)
                retry = flood.retry_after
                return 429, json.dumps(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {retry}",
                        "parameters": {"retry_after": retry},
                    }
                ).encode()
            bot.sent.append(Sent(now, method, chat))
            if method in REPLY_METHODS:
                _deliver(bot, chat, Delivered(now, method, str(params.get("text") or "")))
                return 200, _message(bot, chat, params)
            return 200, b'{"ok":true,"result":true}'
        if method == "getme":
            return 200, json.dumps({"ok": True, "result": bot.me()}).encode()
        return 200, b'{"ok":true,"result":true}'

    async def _get_updates(self, bot: BotState, params: dict[str, Any]) -> bytes:
        timeout = float(params.get("timeout") or 0)
        limit = min(int(params.get("limit") or 100), bot.max_batch)
        bot.pollers += 1
        try:
            async with bot.arrived:
                if not bot.updates and timeout > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await bot.arrived.wait_for(lambda: bool(bot.updates))
                batch = [bot.updates.popleft() for _ in range(min(limit, len(bot.updates)))]
        finally:
            bot.pollers -= 1
        return json.dumps({"ok": True, "result": batch}).encode()


def _deliver(bot: BotState, chat: int | str, reply: Delivered) -> None:
    waiting = bot.waiting.get(chat)
    if not waiting:
        return
    for index, (text, future) in enumerate(waiting):
        if text is None or text == reply.text:
            del waiting[index]
            if not waiting:
                del bot.waiting[chat]
            if not future.done():
                future.set_result(reply)
            return


def _chat(value: Any) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _message(bot: BotState, chat: int | str, params: dict[str, Any]) -> bytes:
    chat_json: dict[str, Any] = (
        {"id": chat, "type": "private", "first_name": "User"}
        if isinstance(chat, int) and chat > 0
        else {"id": chat, "type": "group", "title": "Group"}
    )
    message = {
        "message_id": bot.next_message_id(),
        "date": int(time.time()),
        "chat": chat_json,
        "from": bot.me(),
        "text": str(params.get("text") or "ok"),
    }
    return json.dumps({"ok": True, "result": message}).encode()


def _params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        loaded = json.loads(body)
        return dict(loaded) if isinstance(loaded, dict) else {}
    if kind == "multipart/form-data":
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload if part.get_filename() else payload.decode()
        return fields
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, bytes, bool] | None:
    """(target, content type, body, keep-alive) of one HTTP/1.1 request; None at the end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    _, target, version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return target, headers.get("content-type", ""), body, keep_alive
