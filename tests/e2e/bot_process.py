"""The whole bot as operators run it: `snippetvault run` in a subprocess, talking to the fake Bot
API over HTTP on loopback, to PostgreSQL and Redis, and to an SMTP server in the test process.

Everything the test waits on is an event (a Bot API call, an SMTP delivery, the process
exiting), never a blind sleep; a wait that runs out fails with the tail of the bot's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import signal
import socket
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import IO, TypeVar

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

T = TypeVar("T")

HOST = "127.0.0.1"
WAIT_SECONDS = 20.0
"""How long one step may take: a reply, or an email (the worker polls the outbox every 5 s)."""
START_SECONDS = 60.0
"""Start-up migrates an empty database on a shared, busy machine."""


def free_port() -> int:
    """A port nothing listens on now, for a process's HTTP server (never the default 8000,
    which a developer's own `make run` may hold)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None, f"{self.subject!r} has no plain-text part"
        return str(body.get_content())

    def html(self) -> str:
        body = self.message.get_body(("html",))
        assert body is not None, f"{self.subject!r} has no HTML part"
        return str(body.get_content())


class SmtpInbox:
    """An aiosmtpd handler served in the test's own event loop: it keeps every message, and
    `wait_for` wakes on each delivery instead of polling."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.port = 0
        self._changed = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(tuple(envelope.rcpt_tos), parsed))
        self._changed.set()
        return "250 2.0.0 Message accepted"

    def to(self, address: str, subject: str | None = None) -> list[Received]:
        return [
            item
            for item in self.received
            if address in item.rcpt_tos and (subject is None or item.subject == subject)
        ]

    def summary(self) -> list[tuple[str, str]]:
        return [(",".join(item.rcpt_tos), item.subject) for item in self.received]

    async def wait_for(
        self,
        address: str,
        subject: str,
        count: int = 1,
        timeout: float = WAIT_SECONDS,  # noqa: ASYNC109 - expiry is a test failure with a diagnosis
    ) -> list[Received]:
        """The first `count` messages to `address` with `subject`, once that many arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            found = self.to(address, subject)
            if len(found) >= count:
                return found[:count]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"waited {timeout}s for {count} x {subject!r} to {address}; "
                    f"received {self.summary()}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


# The bot process ----------------------------------------------------------------------------


def bot_command(*args: str) -> list[str]:
    """The installed console script (the contract's entry point), else the module."""
    script = Path(sys.executable).with_name("snippetvault")
    if script.exists():
        return [str(script), *(args or ("run",))]
    return [sys.executable, "-m", "bot.cli", *(args or ("run",))]


class BotProcess:
    """`snippetvault run` (or another command) with its stdout and stderr in one log file."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.env = env
        self.cwd = cwd
        self.args = args
        self.log_path = cwd / "bot.log"
        self.process: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None

    async def start(self) -> None:
        self._log_file = _open_for_writing(self.log_path)
        self.process = await asyncio.create_subprocess_exec(
            *bot_command(*self.args),
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    async def until(self, step: Awaitable[T], what: str) -> T:
        """Awaits `step` while the bot runs; fails at once, with its log, if the bot exits."""
        assert self.process is not None
        work = asyncio.ensure_future(step)
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({work, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                pytest.fail(
                    f"the bot exited with {self.process.returncode} while waiting for {what}\n"
                    f"--- bot log ---\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                return work.result()
            except TimeoutError as error:
                pytest.fail(f"{what}: {error}\n--- bot log ---\n{self.log_tail()}", pytrace=False)
        finally:
            for task in (work, exited):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def terminate(self, timeout: float) -> tuple[int, float]:  # noqa: ASYNC109
        """SIGTERM; returns the exit code and how many seconds the bot took to stop."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            pytest.fail(
                f"the bot did not stop within {timeout}s of SIGTERM\n--- bot log ---\n"
                f"{self.log_tail()}",
                pytrace=False,
            )
        return code, loop.time() - started

    async def kill(self) -> None:
        """The safety net: whatever happened, no bot outlives its test."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _open_for_writing(path: Path) -> IO[bytes]:
    return path.open("wb")
