"""Driving the real `Application` with updates and timing each one until the bot's reply.

Every row of the bench goes through the same path: a Telegram update (JSON, as `getUpdates`
returns it) is parsed with `Update.de_json`, put on `application.update_queue`, dispatched by
PTB with `concurrent_updates` on, handled, and answered through the bot's request object. The
latency of an update is the time from parsing it to the bot's reply request (`sendMessage`,
`sendDocument` or `editMessageText`) for its chat; `concurrency` chats send at once, each
waiting for its reply before it sends again (a closed loop).

`LeanRequest` answers the bot (minimal JSON, nothing kept) and reports its replies to the
`Replies` registry the driver waits on. (The end-to-end rows, `bench.e2e`, go over HTTP
instead, through `bench.botapi`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram._utils.types import ODVInput
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_TOKEN = "123456789:BENCHxBENCHxBENCHxBENCHxBENCHxBE"
BOT_USERNAME = "SnippetVaultBenchBot"
REPLY_METHODS = frozenset({"sendmessage", "senddocument", "editmessagetext"})
REPLY_TIMEOUT_SECONDS = 60.0

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    at: float
    method: str
    text: str


class Replies:
    """Where the request backends report the bot's replies; the driver waits on them."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self.unexpected = 0

    def expect(self, chat_id: int) -> asyncio.Future[Reply]:
        if chat_id in self._waiting:
            raise RuntimeError(f"chat {chat_id} already waits for a reply")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[chat_id] = future
        return future

    def cancel(self, chat_id: int) -> None:
        self._waiting.pop(chat_id, None)

    def seen(self, method: str, parameters: dict[str, Any]) -> None:
        if method not in REPLY_METHODS:
            return
        at = time.perf_counter()
        chat_id = int(parameters.get("chat_id", 0) or 0)
        future = self._waiting.pop(chat_id, None)
        if future is None or future.done():
            self.unexpected += 1
            return
        text = parameters.get("text") or parameters.get("caption") or ""
        future.set_result(Reply(at, method, str(text)))


def _method(url: str) -> str:
    return url.rsplit("/", 1)[-1].lower()


class LeanRequest(BaseRequest):
    """Answers the Bot API methods the bot calls with the smallest valid JSON, keeps nothing."""

    def __init__(self, replies: Replies) -> None:
        self.replies = replies
        self._message_ids = itertools.count(1)
        self._me = json.dumps(
            {
                "ok": True,
                "result": {
                    "id": int(BOT_TOKEN.split(":", 1)[0]),
                    "is_bot": True,
                    "first_name": "SnippetVault",
                    "username": BOT_USERNAME,
                },
            }
        ).encode()

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        name = _method(url)
        if name == "getme":
            return 200, self._me
        parameters = request_data.parameters if request_data is not None else {}
        if name in REPLY_METHODS:
            chat_id = parameters.get("chat_id", 0)
            body = {
                "ok": True,
                "result": {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "text": "ok",
                },
            }
            self.replies.seen(name, parameters)
            return 200, json.dumps(body).encode()
        return 200, b'{"ok":true,"result":true}'


# Updates -----------------------------------------------------------------------------------


class Updates:
    """Telegram update JSON for private chats, as `getUpdates` delivers it."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def message(self, chat_id: int, text: str) -> dict[str, Any]:
        update_id = next(self._ids)
        first_line = text.split("\n", 1)[0]
        command = first_line.split(" ", 1)[0]
        message: dict[str, Any] = {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"},
            "from": {"id": chat_id, "is_bot": False, "first_name": f"User{chat_id}"},
            "text": text,
        }
        if command.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": update_id, "message": message}


# The closed-loop driver --------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies in seconds of one row's updates, and the wall time they took together."""

    latencies: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of this process (all threads) while the row ran."""
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)

    @classmethod
    def merged(cls, parts: list[Stats]) -> Stats:
        """One row's statistics from the parts it ran in (their latencies, time, CPU)."""
        return cls(
            latencies=[latency for part in parts for latency in part.latencies],
            wall_seconds=sum(part.wall_seconds for part in parts),
            cpu_seconds=sum(part.cpu_seconds for part in parts),
            failures=sum(part.failures for part in parts),
            failure_samples=[sample for part in parts for sample in part.failure_samples],
        )

    @property
    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p95_ms(self) -> float:
        return self.percentile(0.95) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99) * 1000

    @property
    def cpu_ms_per_update(self) -> float:
        handled = self.count + self.failures
        return self.cpu_seconds * 1000 / handled if handled else float("nan")

    @property
    def per_second(self) -> float:
        return self.count / self.wall_seconds if self.wall_seconds else float("nan")


Text = Callable[[int, int], str]
"""`(chat_id, n)` → the text a chat sends as its `n`-th update of the row."""
Check = Callable[[Reply], bool]
"""Whether a reply is the one the command should give (a failed command is not counted)."""


async def drive(
    application: AnyApplication,
    replies: Replies,
    updates: Updates,
    chats: list[int],
    text: Text,
    *,
    total: int,
    concurrency: int,
    check: Check | None = None,
    stop: asyncio.Event | None = None,
    rounds: int | None = None,
) -> Stats:
    """Sends `total` updates from `chats`, at most `concurrency` at once (one per chat);
    with `rounds`, exactly that many from every chat instead."""
    if rounds is not None:
        total = rounds * len(chats)
    stats = Stats()
    issued = itertools.count()
    lanes = [chats[lane::concurrency] for lane in range(min(concurrency, len(chats)))]
    bot = application.bot
    queue = application.update_queue

    async def lane(own_chats: list[int]) -> None:
        for round_number in itertools.count() if rounds is None else range(rounds):
            for chat_id in own_chats:
                n = next(issued)
                if n >= total or (stop is not None and stop.is_set()):
                    return
                payload = updates.message(chat_id, text(chat_id, round_number))
                waiting = replies.expect(chat_id)
                started = time.perf_counter()
                await queue.put(Update.de_json(payload, bot))
                try:
                    reply = await asyncio.wait_for(waiting, REPLY_TIMEOUT_SECONDS)
                except TimeoutError:
                    replies.cancel(chat_id)
                    stats.failures += 1
                    _sample(stats, f"no reply in {REPLY_TIMEOUT_SECONDS:.0f} s")
                    continue
                if check is not None and not check(reply):
                    stats.failures += 1
                    _sample(stats, reply.text[:160])
                    continue
                stats.latencies.append(reply.at - started)

    began, cpu_began = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane(own) for own in lanes))
    stats.wall_seconds = time.perf_counter() - began
    stats.cpu_seconds = time.process_time() - cpu_began
    return stats


def _sample(stats: Stats, text: str) -> None:
    if len(stats.failure_samples) < 3:
        stats.failure_samples.append(text)


class LoopLag:
    """A ticker task: how late the event loop wakes it, i.e. how long other work held the loop."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            planned = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - planned))

    def start(self, *, keep: bool = False) -> None:
        """Starts ticking; `keep` adds to the lags of an earlier start instead of clearing them."""
        if not keep:
            self.lags.clear()
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def max_ms(self) -> float:
        return max(self.lags, default=0.0) * 1000

    def p99_ms(self) -> float:
        stats = Stats(latencies=list(self.lags))
        return stats.p99_ms if self.lags else 0.0
