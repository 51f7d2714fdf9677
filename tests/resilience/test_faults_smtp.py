"""SMTP down, busy (4xx) or refusing (5xx): chat commands never notice; emails wait in the outbox
and go out once each when the server is back; a refused email is parked with its reason, shown
by `snippetvault check`, and not retried forever."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.check import run_check
from mail.worker import OutboxWorker
from tests.bot.conftest import Clock
from tests.fakebotapi import FakeBotApiServer, FakeTelegram
from tests.resilience.faults import (
    FaultBot,
    SmtpServer,
    bot_settings,
    outbox_rows,
    outbox_worker,
    running_bot,
)

pytestmark = pytest.mark.postgres

CHATS = (7201, 7202, 7203)
BUSY = "451 4.3.0 Mailbox busy, try again later"
NO_SUCH_USER = "550 5.1.1 No such user here"
BACKOFF_CAP = 5.0
"""The workers' longest backoff here, in seconds of the test's clock."""


async def emailing_commands(bot: FaultBot, chat_id: int) -> int:
    """Commands that each queue one email; all must answer as usual. Returns how many."""
    for n in (1, 2, 3):
        answer = await bot.say(chat_id, f"/save Mail {n}\nprint({chat_id}, {n})")
        assert "Saved" in answer and "email" in answer, answer
    for ref in (1, 2):
        answer = await bot.say(chat_id, f"/get {ref}")
        assert f"print({chat_id}, {ref})" in answer and "on its way" in answer, answer
    assert "Deleted" in await bot.say(chat_id, "/delete 3")
    return 6


async def drain_until_settled(
    worker: OutboxWorker, bot: FaultBot, clock: Clock, rounds: int = 20
) -> None:
    """Runs the worker until nothing is pending or being sent, moving the clock past any
    backoff between rounds (no sleeping)."""
    for _ in range(rounds):
        await worker.drain_once()
        statuses = Counter(row.status for row in await outbox_rows(bot.services))
        if statuses["pending"] == 0 and statuses["sending"] == 0:
            return
        clock.advance(BACKOFF_CAP)
    pytest.fail(f"the outbox did not settle in {rounds} rounds: {statuses}")


async def test_emails_wait_while_smtp_is_down_then_go_out_once_each(
    fresh_postgres_url: str, fault_smtp: SmtpServer, fault_tg: FakeTelegram, tmp_path: Path
) -> None:
    fault_smtp.start()
    fault_smtp.stop()  # a port where an SMTP server was, and is not now
    settings = bot_settings(
        fault_tg, tmp_path, database_url=fresh_postgres_url, smtp_port=fault_smtp.port
    )
    clock = Clock()
    async with (
        running_bot(settings, fault_tg) as bot,
        outbox_worker(
            bot.services, clock=clock, base_delay=0.05, max_delay=BACKOFF_CAP, max_attempts=1000
        ) as worker,
    ):
        queued = 0
        for chat_id in CHATS:
            await bot.log_in_new_user(chat_id, verified=True)  # verification + login alert
            queued += 2 + await emailing_commands(bot, chat_id)

        for _ in range(5):  # the worker keeps trying while the server is down
            await worker.drain_once()
            clock.advance(BACKOFF_CAP)
        rows = await outbox_rows(bot.services)
        assert len(rows) == queued
        assert {row.status for row in rows} == {"pending"}
        assert all(row.attempts >= 1 and row.last_error for row in rows)
        assert fault_smtp.inbox.messages == []

        fault_smtp.start()
        await drain_until_settled(worker, bot, clock)

        rows = await outbox_rows(bot.services)
        assert {row.status for row in rows} == {"sent"}
        delivered = Counter(fault_smtp.inbox.message_ids())
        assert [mid for mid, times in delivered.items() if times > 1] == []
        assert set(delivered) == {row.message_id for row in rows}
        assert len(fault_smtp.inbox.messages) == queued


async def test_a_busy_server_is_retried_later_and_a_persistent_4xx_is_given_up(
    fresh_postgres_url: str, fault_smtp: SmtpServer, fault_tg: FakeTelegram, tmp_path: Path
) -> None:
    fault_smtp.inbox.refusal = BUSY
    fault_smtp.start()
    settings = bot_settings(
        fault_tg, tmp_path, database_url=fresh_postgres_url, smtp_port=fault_smtp.port
    )
    clock = Clock()
    async with (
        running_bot(settings, fault_tg) as bot,
        outbox_worker(
            bot.services, clock=clock, base_delay=0.5, jitter=0, max_attempts=3
        ) as worker,
    ):
        await bot.log_in_new_user(CHATS[0])  # unverified: the verification email only
        [row] = await outbox_rows(bot.services)

        assert await worker.drain_once() == 1
        [row] = await outbox_rows(bot.services)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, BUSY)
        assert row.next_attempt_at > datetime.now(UTC)
        assert await worker.drain_once() == 0  # later, not at once

        clock.advance(0.6)
        assert await worker.drain_once() == 1  # its time came: tried again, still busy
        [row] = await outbox_rows(bot.services)
        assert (row.status, row.attempts) == ("pending", 2)

        fault_smtp.inbox.refusal = None
        clock.advance(1.1)
        await drain_until_settled(worker, bot, clock)
        [row] = await outbox_rows(bot.services)
        assert row.status == "sent"
        assert fault_smtp.inbox.message_ids() == [row.message_id]

        # Busy for ever: given up after `max_attempts`, not retried for ever.
        fault_smtp.inbox.refusal = BUSY
        await bot.log_in_new_user(CHATS[1])
        for _ in range(10):
            if (rows := await outbox_rows(bot.services))[-1].status == "failed":
                break
            await worker.drain_once()
            clock.advance(BACKOFF_CAP)
        assert rows[-1].attempts == 3
        assert rows[-1].last_error == f"gave up after 3 attempts: {BUSY}"
        refused = fault_smtp.inbox.refused
        clock.advance(10 * BACKOFF_CAP)  # past any backoff it could still have had
        assert await worker.drain_once() == 0
        assert fault_smtp.inbox.refused == refused


async def test_a_refused_email_is_parked_with_its_reason_and_shown_by_check(
    fresh_postgres_url: str,
    fault_smtp: SmtpServer,
    fault_tg: FakeTelegram,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mail.worker")
    fault_smtp.inbox.refusal = NO_SUCH_USER
    fault_smtp.start()
    async with FakeBotApiServer(fault_tg) as api:
        settings = bot_settings(
            fault_tg,
            tmp_path,
            database_url=fresh_postgres_url,
            smtp_port=fault_smtp.port,
            telegram_api_base_url=api.base_url,
            telegram_file_base_url=api.base_file_url,
        )
        clock = Clock()
        async with (
            running_bot(settings, fault_tg) as bot,
            outbox_worker(bot.services, clock=clock, base_delay=0.05) as worker,
        ):
            user = await bot.log_in_new_user(CHATS[0])
            assert "Saved" in await bot.say(CHATS[0], "/save After\nprint('still works')")

            assert await worker.drain_once() == 1
            [row] = await outbox_rows(bot.services)
            assert (row.status, row.attempts, row.last_error) == ("failed", 1, NO_SUCH_USER)
            clock.advance(10 * BACKOFF_CAP)
            assert await worker.drain_once() == 0  # parked: never tried again
            assert fault_smtp.inbox.refused == 1

        capsys.readouterr()
        assert await run_check(settings) == 0
    shown = capsys.readouterr().out
    assert f"failed email to {user.email}: {NO_SUCH_USER}" in shown, shown
    assert "1 failed" in shown, shown
    logged = [r.getMessage() for r in caplog.records if r.name == "mail.worker"]
    assert any(NO_SUCH_USER in line and "failed for good" in line for line in logged), logged
