"""Two bot processes in webhook mode and two email workers share Postgres and Redis; updates
reach them alternately, as from a load balancer, and nothing depends on which one serves."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import secrets
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import make_url

from tests.fakebotapi import FakeBotApiServer, FakeTelegram

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "balancer-shared-secret"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str, subject: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address and m["Subject"] == subject]


@dataclass
class Cluster:
    tg: FakeTelegram
    ports: list[int]
    client: httpx.AsyncClient
    sink: Sink
    database_url: str
    processes: list[tuple[str, asyncio.subprocess.Process, Path]] = field(default_factory=list)

    async def post(self, replica: int, update: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"http://127.0.0.1:{self.ports[replica]}/telegram",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )

    async def say(self, replica: int, chat: int, text: str, expect: str) -> str:
        since = self.tg.mark()
        update = self.tg.private_message(chat, chat, text, enqueue=False)
        response = await self.post(replica, update)
        assert response.status_code == 200
        reply = await self.tg.wait_for_message(chat, expect, since=since, timeout=30)
        return reply.text

    async def emails(self, address: str, subject: str, count: int = 1) -> list[Any]:
        # The SMTP sink runs in a thread of its own: poll it (FakeTelegram.wait_for would
        # only look again when the bot next calls the Bot API).
        for _ in range(600):
            if len(self.sink.to(address, subject)) >= count:
                return self.sink.to(address, subject)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {count} {subject!r} email(s) to {address}:\n{self.logs()}")

    async def outbox_idle(self) -> int:
        """Waits until every queued email is recorded as sent (so each was delivered at least
        once, and no worker holds one); returns how many there are."""
        dsn = make_url(self.database_url).set(drivername="postgresql")
        connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            for _ in range(600):
                rows = await connection.fetch("SELECT status FROM outbox")
                if rows and all(row["status"] == "sent" for row in rows):
                    return len(rows)
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        raise AssertionError(f"the outbox never went idle:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for _, _, path in self.processes)


async def spawn(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            *args,
            cwd=log.parent,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


@pytest.fixture
async def cluster(
    fresh_postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
    tg = FakeTelegram()
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        async with FakeBotApiServer(tg) as server, httpx.AsyncClient(timeout=30) as client:
            base = {
                **os.environ,
                **server.env(),
                "PYTHONPATH": str(ROOT),
                "TELEGRAM_BOT_TOKEN": tg.token,
                "DATABASE_URL": fresh_postgres_url,
                "REDIS_URL": redis_url,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_SECURITY": "none",
                "JWT_SECRET": secrets.token_urlsafe(48),
                "DATA_DIR": str(tmp_path / "var"),
                "PTB_TIMEDELTA": "1",
            }
            ports = [free_port(), free_port()]
            cluster = Cluster(tg, ports, client, sink, fresh_postgres_url)
            for index, port in enumerate(ports):
                env = {
                    **base,
                    "BOT_WEBHOOK_URL": "https://bot.example.org/telegram",
                    "BOT_WEBHOOK_SECRET": SECRET,
                    "HTTP_HOST": "127.0.0.1",
                    "HTTP_PORT": str(port),
                }
                log = tmp_path / f"bot{index}.log"
                cluster.processes.append(
                    (f"bot{index}", await spawn(["run", "--no-worker"], env, log), log)
                )
            for index in range(2):
                log = tmp_path / f"worker{index}.log"
                cluster.processes.append(
                    (f"worker{index}", await spawn(["worker"], base, log), log)
                )
            try:
                for port in ports:
                    await _wait_healthy(client, port, cluster)
                yield cluster
            finally:
                for _, process, _ in cluster.processes:
                    if process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                codes = [await asyncio.wait_for(p.wait(), 30) for _, p, _ in cluster.processes]
                assert codes == [0, 0, 0, 0], cluster.logs()
                assert tg.token not in cluster.logs()
    finally:
        smtp.stop()


async def _wait_healthy(client: httpx.AsyncClient, port: int, cluster: Cluster) -> None:
    for _ in range(300):
        try:
            if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("a bot replica never became healthy:\n" + cluster.logs())


async def test_two_webhook_replicas_and_two_workers_serve_one_bot(cluster: Cluster) -> None:
    tg = cluster.tg
    assert tg.webhook is not None
    assert tg.webhook["url"] == "https://bot.example.org/telegram"

    forged = tg.private_message(1, 1, "/help", enqueue=False)
    no_secret = await cluster.client.post(
        f"http://127.0.0.1:{cluster.ports[0]}/telegram", json=forged
    )
    assert no_secret.status_code == 403

    ada, chat = "ada@example.org", 4101
    await cluster.say(0, chat, f"/signup {ada} {PASSWORD}", "verification email")
    [verification] = await cluster.emails(ada, "Verify your email")
    code = re.search(r"/verify ([A-Z0-9]{8})", verification.get_body(("plain",)).get_content())
    assert code is not None
    await cluster.say(1, chat, f"/verify {code.group(1)}", "is verified")

    # A step-by-step login started on one replica is finished on the other.
    await cluster.say(0, chat, "/login", "email address")
    await cluster.say(1, chat, ada, "password")
    await cluster.say(0, chat, PASSWORD, "Logged in")

    # The session made on replica 0 is honoured by replica 1, and an edit made on one is
    # never hidden by the other's cached copy.
    await cluster.say(1, chat, "/save Greeting\nprint('old')", "/get 1")
    assert "print('old')" in await cluster.say(0, chat, "/get 1", "Greeting")
    await cluster.say(1, chat, "/edit 1\nprint('new')", "Updated")
    shown = await cluster.say(0, chat, "/get 1", "Greeting")
    assert "print('new')" in shown
    assert "old" not in shown

    # Two answers to the same step, handled by both replicas at once: exactly one wins.
    await cluster.say(0, chat, f"/login {ada}", "password")
    since = tg.mark()
    first = tg.private_message(chat, chat, PASSWORD, enqueue=False)
    second = tg.private_message(chat, chat, PASSWORD, enqueue=False)
    responses = await asyncio.gather(cluster.post(0, first), cluster.post(1, second))
    assert [r.status_code for r in responses] == [200, 200]
    await tg.wait_for(
        lambda: len([m for m in tg.sent_messages(chat) if m.seq > since]) >= 2, timeout=30
    )
    answers = [m.text for m in tg.sent_messages(chat) if m.seq > since]
    assert sum("Logged in" in text for text in answers) == 1, answers
    assert sum("already answered" in text for text in answers) == 1, answers

    # Failed logins count across both replicas: a chat's 11th failure in a row is refused.
    # (Ten addresses, one failure each: no account's own growing wait, which runs on the
    # processes' real clocks, can answer first.)
    intruder = 4202
    for attempt in range(10):
        guess = f"/login nobody-{attempt}@example.com wrong-{attempt}"
        await cluster.say(attempt % 2, intruder, guess, "Wrong email")
    await cluster.say(1, intruder, f"/login {ada} {PASSWORD}", "Too many failed attempts")

    # Every email went out exactly once across the two workers.
    await cluster.emails(ada, "Login Alert", count=2)
    await cluster.emails(ada, "Your Requested Snippet", count=2)
    # Every row sent means every email was delivered (delivery comes before the record):
    # a duplicate would show as more messages than rows.
    queued = await cluster.outbox_idle()
    assert len(cluster.sink.messages) == queued
    ids = Counter(message["Message-ID"] for message in cluster.sink.messages)
    assert ids and max(ids.values()) == 1, ids
    subjects = Counter(message["Subject"] for message in cluster.sink.messages)
    assert subjects == {
        "Verify your email": 1,
        "Login Alert": 2,
        "New Snippet Created": 1,
        "Your Requested Snippet": 2,
    }
