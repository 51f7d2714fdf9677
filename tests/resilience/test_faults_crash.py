"""`snippetvault run` is SIGKILLed mid-traffic and started again (a real process, polling the fake
Bot API over HTTP, on PostgreSQL, Redis and an SMTP server): sessions survive, no snippet is
half-saved, and every queued email is delivered after the restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest
import sqlalchemy as sa

from core.entities import User
from storage.database import Database
from storage.models import outbox, snippets, users
from tests.fakebotapi import FakeBotApiServer, FakeTelegram
from tests.resilience.faults import HOST, PASSWORD, SmtpServer, free_port

if TYPE_CHECKING:
    from tests.conftest import ThrowawayRedis

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CHATS = (7401, 7402, 7403, 7404)
KILL_AFTER_SAVES = 10
"""The bot is killed when this many /save replies (of all chats) arrived; others are in flight."""
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 30.0
_REF = re.compile(r"/get (\d+)")


def code_for(title: str) -> str:
    """About 2 KB, one message long; ends with a line naming its title, so a cut is visible."""
    body = "\n".join(f"    total += {i}  # {title}" for i in range(60))
    name = title.replace("-", "_")
    return f"def {name}():\n    total = 0\n{body}\n    return total  # end {title}"


class BotProcess:
    """`snippetvault run` in a subprocess, its output in a file."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._env = env
        self._cwd = cwd
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        self._log = (self._cwd / f"bot-run-{self.runs}.log").open("wb")
        self._process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "snippetvault"),
            "run",
            env=self._env,
            cwd=self._cwd,
            stdout=self._log,
            stderr=self._log,
        )

    def output(self, run: int | None = None) -> str:
        return (self._cwd / f"bot-run-{run or self.runs}.log").read_text(errors="replace")

    def tail(self, run: int | None = None, lines: int = 40) -> str:
        """The end of a run's log, for a failure's message (the whole log runs to hundreds of
        lines: a line per update and per email)."""
        return "\n".join(self.output(run).splitlines()[-lines:])

    async def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._process.wait()
        self._close_log()

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns the exit code."""
        process, self._process = self._process, None
        if process is None:
            return 0
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._close_log()
        return process.returncode or 0

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Saves:
    replied: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """title → (chat, ref from the reply, code) for every /save the bot answered."""
    sent: dict[str, str] = field(default_factory=dict)
    """title → code for every /save sent, answered or not."""
    count: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)


async def command(tg: FakeTelegram, chat_id: int, text: str, expect: str) -> str:
    since = tg.mark()
    tg.private_message(chat_id, chat_id, text)
    message = await tg.wait_for_message(chat_id, expect, since=since, timeout=REPLY_TIMEOUT)
    return message.text


async def save_until_killed(tg: FakeTelegram, chat_id: int, saves: Saves) -> None:
    for n in range(1, 1000):
        title = f"crash-{chat_id}-{n}"
        saves.sent[title] = code_for(title)
        answer = await command(tg, chat_id, f"/save {title}\n{saves.sent[title]}", "Saved")
        found = _REF.search(answer)
        assert found is not None, answer
        saves.replied[title] = (chat_id, int(found.group(1)), saves.sent[title])
        saves.count += 1
        if saves.count >= KILL_AFTER_SAVES:
            saves.enough.set()


async def outbox_by_status(database: Database) -> dict[str, set[str]]:
    async with database.engine.connect() as connection:
        rows = (await connection.execute(sa.select(outbox.c.message_id, outbox.c.status))).all()
    found: dict[str, set[str]] = {}
    for message_id, status in rows:
        found.setdefault(status, set()).add(message_id)
    return found


@pytest.fixture
async def crash_database(fresh_postgres_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_postgres_url)
    yield database
    await database.dispose()


async def test_a_killed_bot_restarts_with_sessions_whole_snippets_and_every_email(
    fresh_postgres_url: str,
    crash_database: Database,
    throwaway_redis: ThrowawayRedis,
    fault_smtp: SmtpServer,
    fault_tg: FakeTelegram,
    tmp_path: Path,
) -> None:
    tg, database = fault_tg, crash_database
    fault_smtp.start()
    async with FakeBotApiServer(tg) as api:
        env = {
            **os.environ,
            **api.env(),
            "DATABASE_URL": fresh_postgres_url,
            "REDIS_URL": throwaway_redis.url,
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(fault_smtp.port),
            "SMTP_SECURITY": "none",
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATA_DIR": str(tmp_path / "data"),
            "HTTP_PORT": str(free_port()),
        }
        bot = BotProcess(env, tmp_path)
        await bot.start()
        try:
            await command(tg, CHATS[0], "/start", "SnippetVault")  # up and polling
            accounts: dict[int, User] = {}
            for chat_id in CHATS:
                address = f"crash-{secrets.token_hex(5)}@example.com"
                await command(tg, chat_id, f"/signup {address} {PASSWORD}", "verification")
                async with database.uow_factory()() as uow:
                    user = await uow.users.get_by_email(address)
                    assert user is not None
                    await uow.users.set_verified(user.id)  # so every command queues an email
                    await uow.commit()
                await command(tg, chat_id, f"/login {address} {PASSWORD}", "Logged in")
                accounts[chat_id] = user

            fault_smtp.inbox.delay = 2.0  # so that the worker has emails in flight too
            saves = Saves()
            traffic = [asyncio.create_task(save_until_killed(tg, c, saves)) for c in CHATS]
            await asyncio.wait_for(saves.enough.wait(), REPLY_TIMEOUT * 2)
            deadline = time.monotonic() + 15
            while not (await outbox_by_status(database)).get("sending"):
                assert time.monotonic() < deadline, "the worker never claimed an email"
                await asyncio.sleep(0.05)
            await bot.kill()  # mid-traffic: commands and emails are in flight
            fault_smtp.inbox.delay = 0.0
            for task in traffic:
                task.cancel()
            for task in traffic:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            leased_at_kill = (await outbox_by_status(database)).get("sending", set())

            # The lease of an email claimed by the killed process would run out after two
            # minutes and hand it out again; make that happen now.
            async with database.engine.begin() as connection:
                await connection.execute(
                    sa.update(outbox)
                    .where(outbox.c.status == "sending")
                    .values(locked_until=sa.func.now())
                )

            await bot.start()
            # Sessions survived: every chat can fetch what it saved without logging in again.
            for title, (chat_id, ref, code) in saves.replied.items():
                if chat_id == CHATS[0] or title.endswith("-1"):
                    # Wait for the code itself: updates the killed process never confirmed
                    # are handed to the new one too, and "#1" would match their "#13".
                    answer = await command(tg, chat_id, f"/get {ref}", code)
                    assert code in answer, answer

            # Every queued email is delivered (including the ones of the killed process).
            deadline = time.monotonic() + 60
            while set(statuses := await outbox_by_status(database)) - {"sent"}:
                assert time.monotonic() < deadline, {k: len(v) for k, v in statuses.items()}
                await asyncio.sleep(0.1)
            assert await bot.stop() == 0, bot.tail()
        finally:
            await bot.stop()

    # No snippet half-saved: each answered /save is stored whole; nothing else is stored.
    async with database.engine.connect() as connection:
        stored = (
            await connection.execute(
                sa.select(users.c.email, snippets.c.ref, snippets.c.title, snippets.c.code).join(
                    users, users.c.id == snippets.c.owner_id
                )
            )
        ).all()
    by_title = {row.title: row for row in stored}
    for title, (chat_id, ref, code) in saves.replied.items():
        row = by_title.get(title)
        assert row is not None, f"{title} was answered as saved, but is not stored"
        assert (row.email, row.ref, row.code) == (accounts[chat_id].email, ref, code)
    for row in stored:
        assert saves.sent.get(row.title) == row.code, f"{row.title} is stored incomplete"

    # Every email of the outbox reached the server; only one claimed when the process died
    # may arrive twice (at-least-once delivery, same Message-ID so clients drop the copy).
    delivered = Counter(fault_smtp.inbox.message_ids())
    queued = (await outbox_by_status(database))["sent"]
    assert queued - set(delivered) == set()
    assert leased_at_kill
    assert {m for m, times in delivered.items() if times > 1} <= leased_at_kill
    assert len(saves.replied) >= KILL_AFTER_SAVES
    log = bot.output(2)
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 2000) :][:6000]
