"""Three bot processes, one bot, one budget: the shared rate limit as Telegram would see it.

Three `python -m bench.echo_bot` processes long-poll one bot on the HTTP Bot API emulator
(`bench.botapi`, which hands each update to one of them) and share `SharedRateLimiter` through
Redis. The emulator stamps every request that names a chat when it arrives; the limiter's own
counters (printed on SIGUSR1) say whether a request waited. Nothing here asserts a latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bench.botapi import BotApi, BotState
from bot.ratelimit import GROUP_LIMIT, bot_limit

pytestmark = pytest.mark.slow

TOKEN = "7000001:RATELIMITxRATELIMITxRATELIMITxRATE"
PROCESSES = 3
RATE = 30.0
START_SECONDS = 60.0
REPLY_SECONDS = 60.0
JITTER_ALLOWANCE = 3
"""Requests a window may gain from arrival jitter (a process or the emulator held up for up
to 0.1 s on a busy machine): the budget itself allows `RATE + burst`."""


@dataclass
class Bots:
    api: BotApi
    bot: BotState
    processes: list[asyncio.subprocess.Process]

    async def counters(self) -> list[dict[str, float]]:
        """Every process's limiter counters (SIGUSR1 → one JSON line on stdout)."""
        reports = []
        for process in self.processes:
            process.send_signal(signal.SIGUSR1)
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), REPLY_SECONDS)
            reports.append(json.loads(line))
        return reports

    async def ask_all(
        self, messages: list[tuple[int, str]], *, every: float = 0.0, in_flight: int = 0
    ) -> None:
        """Users send `messages` (`every` seconds apart, and with `in_flight`, never more
        than that many awaiting their reply) and each waits for its reply."""
        room = asyncio.Semaphore(in_flight or len(messages))

        async def one(chat_id: int, text: str) -> None:
            try:
                reply = await asyncio.wait_for(
                    self.api.ask(TOKEN, chat_id, text, echo=True), REPLY_SECONDS
                )
            finally:
                room.release()
            assert reply.text == text

        tasks = []
        for chat_id, text in messages:
            await room.acquire()
            tasks.append(asyncio.create_task(one(chat_id, text)))
            if every:
                await asyncio.sleep(every)
        await asyncio.gather(*tasks)


@pytest.fixture
async def bots(redis_url: str) -> AsyncIterator[Bots]:
    async with BotApi() as api:
        bot = api.bot(TOKEN, "RateLimitBot", max_batch=2)  # spreads updates over the processes
        env = {**os.environ, "PTB_TIMEDELTA": "1"}
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.echo_bot",
                TOKEN,
                api.base_url,
                "--rate-limit",
                str(RATE),
                "--redis-url",
                redis_url,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            for _ in range(PROCESSES)
        ]
        try:
            for process in processes:
                assert process.stdout is not None
                ready = await asyncio.wait_for(process.stdout.readline(), START_SECONDS)
                assert ready.strip() == b"ready", ready
            yield Bots(api, bot, processes)
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                await asyncio.wait_for(process.wait(), START_SECONDS)


async def test_three_processes_share_one_budget_lose_nothing_and_all_honour_a_429(
    bots: Bots,
) -> None:
    limit = bot_limit(RATE)
    assert limit is not None

    # Light load, ten commands a second from 30 chats: nobody waits in any process. (At most
    # three unanswered at once, so that a stalled machine cannot bunch them into a burst.)
    await bots.ask_all([(100 + n, f"light {n}") for n in range(30)], every=0.1, in_flight=3)
    assert sum(report["waited"] for report in await bots.counters()) == 0

    # A burst far above the budget from 120 private chats, and two busy groups: queued, not
    # dropped, and never above the budget in any second, summed over the three processes.
    bots.bot.sent.clear()
    burst = [(1000 + n, f"burst {n}") for n in range(120)]
    groups = [(-1 - n % 2, f"group {n}") for n in range(2 * (GROUP_LIMIT.burst + 1))]
    await bots.ask_all(burst + groups)
    assert len(bots.bot.sent) == len(burst) + len(groups)
    assert bots.api.most_in_any_second(TOKEN) <= RATE + limit.burst + JITTER_ALLOWANCE
    for group in (-1, -2):
        assert bots.api.most_in_any_second(TOKEN, group) <= GROUP_LIMIT.burst
    reports = await bots.counters()
    assert all(report["waited"] > 0 for report in reports), reports  # every process queued

    # A 429 received by one process pauses all three for retry_after, then every reply goes.
    bots.bot.sent.clear()
    flood = bots.api.flood(TOKEN, retry_after=3)
    await bots.ask_all([(5000 + n, f"after {n}") for n in range(60)], every=0.05)
    assert len(flood.refused_at) == 1
    refused = flood.refused_at[0]
    in_pause = [s for s in bots.bot.sent if refused + 0.5 <= s.at < refused + 3.0]
    assert in_pause == [], f"{len(in_pause)} requests arrived during the pause"
    assert len({s.chat_id for s in bots.bot.sent}) == 60
    reports = await bots.counters()
    assert sum(report["retry_after"] for report in reports) == 1
