"""End-to-end rows: the bot as deployed, measured from outside, against a bare echo bot.

`snippetvault run` and `bench.echo_bot` run as processes of their own, both through
`bench.bot_process`, which adds a loop-lag monitor (read for the product only). Both long-poll
one HTTP Bot API (`bench.botapi`) in this process, and simulated users see a reply only when
the Bot API receives it. Each row alternates slices, echo then product, so both bots meet the
same moment of a shared machine. Per bot and row: p50/p90/p99 of "user sends → reply visible",
replies a second, and CPU per reply of the bot's process (utime + stime from /proc; for the
product, measured until the emails of the slice reached the SMTP sink, so the outbox worker's
rendering and sending count too).

- paced: `paced_chats` chats each send one command a second at random phases (open loop),
  the product at its production rate limit (`TELEGRAM_RATE_LIMIT` 30);
- saturation: `saturation_chats` chats each send the next command as soon as the reply
  shows (closed loop), the product with `TELEGRAM_RATE_LIMIT=0`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.botapi import BotApi, Delivered

log = logging.getLogger("bench.e2e")

ECHO_TOKEN = "223456789:ECHO-the-echo-bots-token"
ECHO_USERNAME = "EchoBenchBot"
REPLY_TIMEOUT_SECONDS = 30.0
START_TIMEOUT_SECONDS = 90.0
EMAIL_TIMEOUT_SECONDS = 60.0
LAG_LIMIT_MS = 50.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Text = Callable[[int, int], str]
Check = Callable[[str], bool]


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ChildProcess:
    """A process the bench starts (a bot, the API server); its log goes to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        lag_file: Path | None = None,
    ) -> None:
        self.name = name
        self.lag_file = lag_file
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    async def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class Slice:
    bot: str
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    lag_max_ms: float = 0.0
    lag_over_limit: int = 0
    lag_cpu_max_ms: float = 0.0
    gc_max_ms: float = 0.0


@dataclass
class Side:
    """One bot's share of a row: every slice of it together."""

    replies: int = 0
    failures: int = 0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    per_second: float = math.nan
    cpu_ms: float = math.nan
    lag_max_ms: float | None = None
    lag_over_limit: int | None = None
    lag_cpu_max_ms: float | None = None
    """The most CPU the loop's thread used inside one lag: how long our own work held the loop
    (the rest of a lag, other processes had the machine)."""
    gc_max_ms: float | None = None
    """The longest collection of the oldest generation during the slices."""
    failure_samples: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, slices: list[Slice], *, lag: bool) -> Side:
        latencies = sorted(x for one in slices for x in one.latencies)
        seconds = sum(one.seconds for one in slices)
        side = cls(
            replies=len(latencies),
            failures=sum(one.failures for one in slices),
            per_second=len(latencies) / seconds if seconds else math.nan,
            failure_samples=[s for one in slices for s in one.failure_samples][:3],
        )
        if latencies:
            side.p50_ms = statistics.median(latencies) * 1000
            side.p90_ms = _percentile(latencies, 0.90) * 1000
            side.p99_ms = _percentile(latencies, 0.99) * 1000
            side.max_ms = latencies[-1] * 1000
            side.cpu_ms = sum(one.cpu_seconds for one in slices) * 1000 / len(latencies)
        if lag:
            side.lag_max_ms = max((one.lag_max_ms for one in slices), default=0.0)
            side.lag_over_limit = sum(one.lag_over_limit for one in slices)
            side.gc_max_ms = max((one.gc_max_ms for one in slices), default=0.0)
            side.lag_cpu_max_ms = max((one.lag_cpu_max_ms for one in slices), default=0.0)
        return side


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


@dataclass
class E2ERow:
    name: str
    mode: str
    chats: int
    echo: Side
    product: Side
    targets: list[tuple[str, bool]] = field(default_factory=list)
    note: str = ""

    @property
    def met(self) -> bool | None:
        if not self.targets:
            return None
        return all(met for _, met in self.targets)

    def ratio(self, name: str) -> float:
        echo, product = getattr(self.echo, name), getattr(self.product, name)
        return product / echo if echo else math.nan

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        finite: dict[str, Any] = _finite(data)
        return finite


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


@dataclass(frozen=True)
class Command:
    name: str
    text: Text
    check: Check
    emails: bool
    """Whether each reply has an email (the slice ends when they all reached the sink)."""


class EndToEnd:
    """Runs every end-to-end row on the bench's database and Redis, with an SMTP sink in a
    process of its own (`bench.smtp_process`)."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        jwt_secret: str,
        data_dir: Path,
        chats: list[int],
        bot_token: str,
        bot_username: str,
        slice_seconds: float,
        slices: int,
        paced_chats: int,
        saturation_chats: int,
        commands: list[Command],
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.smtp_port = 0
        self.emails_received = 0
        self.jwt_secret = jwt_secret
        self.data_dir = data_dir
        self.chats = chats
        self.bot_token = bot_token
        self.bot_username = bot_username
        self.slice_seconds = slice_seconds
        self.slices = slices
        self.paced_chats = paced_chats
        self.saturation_chats = saturation_chats
        self.commands = commands
        self.rows: list[E2ERow] = []
        self.rng = random.Random(11)

    async def run(self) -> list[E2ERow]:
        sink = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.smtp_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert sink.stdin is not None and sink.stdout is not None
        self.smtp_port = int((await sink.stdout.readline()).split()[1])
        counting = asyncio.create_task(self._count_emails(sink.stdout))
        try:
            return await self._run()
        finally:
            sink.stdin.close()
            await sink.wait()
            await counting

    async def _count_emails(self, announcements: asyncio.StreamReader) -> None:
        while await announcements.readline():
            self.emails_received += 1

    async def _run(self) -> list[E2ERow]:
        async with BotApi() as api:
            self.api = api
            api.bot(self.bot_token, self.bot_username)
            api.bot(ECHO_TOKEN, ECHO_USERNAME)
            echo = ChildProcess(
                "echo bot",
                # Under the same loop-lag monitor as the product (its ticks cost CPU too).
                [
                    sys.executable,
                    "-m",
                    "bench.bot_process",
                    str(self.data_dir / "loop-lag-echo.txt"),
                    "echo",
                    ECHO_TOKEN,
                    api.base_url,
                ],
                {**os.environ, "PTB_TIMEDELTA": "1"},
                self.data_dir / "echo-bot.log",
            )
            await self._started(echo, ECHO_TOKEN)
            try:
                for mode, rate_limit, chats in (
                    ("paced", "30", self.paced_chats),
                    ("saturation", "0", self.saturation_chats),
                ):
                    product = self._product(rate_limit)
                    await self._started(product, self.bot_token)
                    try:
                        await self._warm(product, chats)
                        for command in self.commands:
                            self.rows.append(await self._row(command, mode, chats, echo, product))
                    finally:
                        await product.stop()
            finally:
                await echo.stop()
        return self.rows

    # -- processes -----------------------------------------------------------------------------

    def _product(self, rate_limit: str) -> ChildProcess:
        lag_file = self.data_dir / f"loop-lag-{rate_limit}.txt"
        env = {
            **os.environ,
            **self.api.env(self.bot_token),
            "PTB_TIMEDELTA": "1",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "SMTP_SECURITY": "none",
            "JWT_SECRET": self.jwt_secret,
            "DATA_DIR": str(self.data_dir),
            "TELEGRAM_RATE_LIMIT": os.environ.get("BENCH_RATE_LIMIT", rate_limit),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        }
        return ChildProcess(
            f"snippetvault run (TELEGRAM_RATE_LIMIT={rate_limit})",
            [sys.executable, "-m", "bench.bot_process", str(lag_file), "run"],
            env,
            self.data_dir / "snippetvault-run.log",
            lag_file,
        )

    async def _started(self, process: ChildProcess, token: str) -> None:
        """Started and long-polling (so past its `post_init`)."""
        await process.start()
        bot = self.api.bots[token]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while bot.pollers == 0:
            assert process.process is not None
            if process.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{process.name} did not start:\n{process.log_tail()}")
            await asyncio.sleep(0.05)

    async def _warm(self, product: ChildProcess, chats: int) -> None:
        """Every chat's first replies (sessions, refs and snippets cached), untimed; then the
        emails they caused are sent."""
        before = self.emails_received
        expected = 0
        for command in self.commands:
            # A /get's first pass caches the ref, its second the snippet.
            for n in range(2 if command.name.startswith("/get") else 1):
                replies = await asyncio.gather(
                    *(
                        self._ask(self.bot_token, chat, command.text(chat, n))
                        for chat in self.chats[:chats]
                    )
                )
                expected += sum(1 for r in replies if r is not None) if command.emails else 0
        await self._emails(before + expected)

    # -- a row -----------------------------------------------------------------------------------

    async def _row(
        self, command: Command, mode: str, chats: int, echo: ChildProcess, product: ChildProcess
    ) -> E2ERow:
        echo_slices: list[Slice] = []
        product_slices: list[Slice] = []
        for _ in range(self.slices):
            echo_slices.append(
                await self._slice(echo, ECHO_TOKEN, mode, chats, command.text, None, False)
            )
            product_slices.append(
                await self._slice(
                    product,
                    self.bot_token,
                    mode,
                    chats,
                    command.text,
                    command.check,
                    command.emails,
                )
            )
        row = E2ERow(
            name=command.name,
            mode=mode,
            chats=chats,
            echo=Side.of(echo_slices, lag=False),
            product=Side.of(product_slices, lag=True),
        )
        if command.name == "/get (cached)":
            _targets(row)
        log.info(
            "e2e %-10s %-14s p50 %.1f/%.1f ms  p99 %.1f/%.1f ms  %.0f/%.0f per s  CPU %.2f/%.2f ms",
            mode,
            command.name,
            row.product.p50_ms,
            row.echo.p50_ms,
            row.product.p99_ms,
            row.echo.p99_ms,
            row.product.per_second,
            row.echo.per_second,
            row.product.cpu_ms,
            row.echo.cpu_ms,
        )
        return row

    async def _slice(
        self,
        process: ChildProcess,
        token: str,
        mode: str,
        chats: int,
        text: Text,
        check: Check | None,
        emails: bool,
    ) -> Slice:
        result = Slice(process.name)
        own_chats = self.chats[:chats]
        counter = {chat: 1000 * index for index, chat in enumerate(own_chats)}
        emails_before = self.emails_received
        cpu_before = process.cpu_seconds()
        wall_began, began = time.time(), time.perf_counter()
        end = began + self.slice_seconds

        async def one(chat: int) -> None:
            n = counter[chat]
            counter[chat] += 1
            sent = time.perf_counter()
            reply = await self._ask(token, chat, text(chat, n))
            if reply is None:
                result.failures += 1
                _sample(result, f"no reply in {REPLY_TIMEOUT_SECONDS:.0f} s")
            elif check is not None and not check(reply.text):
                result.failures += 1
                _sample(result, reply.text[:160])
            else:
                result.latencies.append(reply.at - sent)

        async def paced(chat: int) -> None:
            await asyncio.sleep(self.rng.random())
            asked = []
            while time.perf_counter() < end:
                asked.append(asyncio.create_task(one(chat)))
                await asyncio.sleep(1.0)
            await asyncio.gather(*asked)

        async def closed(chat: int) -> None:
            while time.perf_counter() < end:
                await one(chat)

        loop = paced if mode == "paced" else closed
        await asyncio.gather(*(loop(chat) for chat in own_chats))
        # Paced: the offered rate, one a second per chat; closed: as fast as the bot went.
        result.seconds = self.slice_seconds if mode == "paced" else time.perf_counter() - began
        if emails:
            await self._emails(emails_before + len(result.latencies))
        result.cpu_seconds = process.cpu_seconds() - cpu_before
        if process.lag_file is not None:
            lags, collections = _lag(process.lag_file, wall_began, time.time())
            result.lag_max_ms = max((ms for ms, _ in lags), default=0.0)
            result.lag_over_limit = sum(1 for ms, _ in lags if ms > LAG_LIMIT_MS)
            result.lag_cpu_max_ms = max((cpu for _, cpu in lags), default=0.0)
            result.gc_max_ms = max(collections, default=0.0)
        return result

    async def _ask(self, token: str, chat: int, text: str) -> Delivered | None:
        try:
            return await asyncio.wait_for(self.api.ask(token, chat, text), REPLY_TIMEOUT_SECONDS)
        except TimeoutError:
            self.api.forget(token, chat)
            return None

    async def _emails(self, count: int) -> None:
        deadline = time.monotonic() + EMAIL_TIMEOUT_SECONDS
        while self.emails_received < count:
            if time.monotonic() > deadline:
                log.warning("only %d of %d emails arrived", self.emails_received, count)
                return
            await asyncio.sleep(0.02)


def _lag(
    lag_file: Path, began: float, ended: float
) -> tuple[list[tuple[float, float]], list[float]]:
    """The loop lags (late, of it on the CPU) and the oldest-generation collections in
    [began, ended], in ms."""
    lags: list[tuple[float, float]] = []
    collections: list[float] = []
    with contextlib.suppress(OSError):
        for line in lag_file.read_text().splitlines():
            words = line.split()
            if words[0] == "gcsum":
                continue
            if words[0] == "gc":
                if began <= float(words[1]) <= ended:
                    collections.append(float(words[2]))
            elif began <= float(words[0]) <= ended:
                lags.append((float(words[1]), float(words[2])))
    return lags, collections


def _sample(result: Slice, text: str) -> None:
    if len(result.failure_samples) < 3:
        result.failure_samples.append(text)


def _targets(row: E2ERow) -> None:
    """Issue 12's targets for `/get` (ratios against the echo bot, in one run)."""
    failures_ok = row.product.failures == 0 and row.echo.failures == 0
    lag_ok = (row.product.lag_max_ms or 0.0) <= LAG_LIMIT_MS
    if row.mode == "paced":
        row.targets = [
            ("p50 ≤ 1.5× echo", failures_ok and row.ratio("p50_ms") <= 1.5),
            ("p99 ≤ 2.5× echo", row.ratio("p99_ms") <= 2.5),
            ("no round trip over 500 ms", row.product.max_ms <= 500),
            ("CPU per /get with its email ≤ 1.6× echo", row.ratio("cpu_ms") <= 1.6),
            ("loop lag ≤ 50 ms", lag_ok),
        ]
    else:
        row.targets = [
            ("throughput ≥ 0.6× echo", failures_ok and row.ratio("per_second") >= 0.6),
            ("p50 ≤ 2× echo", row.ratio("p50_ms") <= 2.0),
            ("loop lag ≤ 50 ms", lag_ok),
        ]


def table(rows: list[E2ERow]) -> str:
    lines = [
        "| mode | command | bot | replies | p50 ms | p90 ms | p99 ms | max ms | replies/s "
        "| CPU ms/reply | loop lag max ms (most own CPU in one lag, longest gen-2 gc) "
        "| vs echo (p50, p99, CPU, replies/s) | targets |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        for who, side in (("echo", row.echo), ("product", row.product)):
            ratios = targets = ""
            if who == "product":
                ratios = (
                    f"{row.ratio('p50_ms'):.2f}×, {row.ratio('p99_ms'):.2f}×, "
                    f"{row.ratio('cpu_ms'):.2f}×, {row.ratio('per_second'):.2f}×"
                )
                targets = "; ".join(
                    f"{name}: {'met' if met else '**missed**'}" for name, met in row.targets
                )
                if side.failures:
                    targets = f"{side.failures} failed; {targets}"
            lag = ""
            if side.lag_max_ms is not None:
                lag = f"{side.lag_max_ms:.0f} (own CPU {side.lag_cpu_max_ms or 0:.0f}"
                lag += f", gc {side.gc_max_ms:.0f})" if side.gc_max_ms else ")"
            lines.append(
                f"| {row.mode} ({row.chats} chats) | {row.name} | {who} | {side.replies} | "
                f"{_fmt(side.p50_ms)} | {_fmt(side.p90_ms)} | {_fmt(side.p99_ms)} | "
                f"{_fmt(side.max_ms, 0)} | {_fmt(side.per_second, 0)} | {_fmt(side.cpu_ms, 2)} | "
                f"{lag} | {ratios} | {targets} |"
            )
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"
