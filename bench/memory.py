"""The bot in a process of its own: `python -m bench.memory '<json>'`.

It serves two rows: the memory row (a mix of commands, then the peak RSS), and the
scale-out row, where one or two such processes serve cached /get at once (`"mix": "get"`,
`"barrier": true`: print `ready`, wait for a line on stdin, then go, so that the processes
start together).

It builds the same `Application` as `snippetvault run` would (Postgres, Redis, SMTP settings;
no outbox worker, no polling: updates come from the bench's driver in this process, answered by
the lean in-process Bot API), sends a mix of commands from every chat, and prints one JSON
line: the peak resident set (VmHWM from /proc/self/status) and the RSS now and after start-up.
The driver and the lean Bot API are in this process too; they keep nothing per update.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "1")

from bench.harness import BOT_TOKEN, LeanRequest, Replies, Reply, Updates, drive
from bot.app import build_application
from core.settings import SmtpSecurity, load_settings


def proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def answered(reply: Reply) -> bool:
    return not reply.text.startswith(("😕", "Please log in", "The database"))


async def main(arguments: dict[str, Any]) -> dict[str, Any]:
    settings = load_settings(
        telegram_bot_token=BOT_TOKEN,
        database_url=arguments["database_url"],
        redis_url=arguments["redis_url"],
        smtp_host="127.0.0.1",
        smtp_port=arguments["smtp_port"],
        smtp_security=SmtpSecurity.NONE,
        jwt_secret=arguments["jwt_secret"],
        data_dir=arguments["data_dir"],
        telegram_rate_limit=100_000,  # the production limiter's work, never its queue
        _env_file=None,
    )
    replies = Replies()
    application = build_application(settings, run_worker=False, request=LeanRequest(replies))
    terms: list[str] = arguments["search_terms"]
    refs: int = arguments["cached_refs"]

    def text(chat_id: int, n: int) -> str:
        if arguments.get("mix") == "get":
            return f"/get {1 + n % refs}"
        step = n % 10
        if step in (3, 7):
            return "/list"
        if step == 5:
            return f"/search {terms[(chat_id + n) % len(terms)]}"
        if step == 9:
            return f"/save Memory {n}\nprint({n})"
        return f"/get {1 + n % refs}"

    await application.initialize()
    await application.post_init(application)  # type: ignore[misc]
    await application.start()
    rss_start = proc_status_kb("VmRSS")
    if arguments.get("mix") == "get":
        # Every chat fetches each ref twice first (the first caches the ref, the second the
        # snippet), so the timed run measures cached /get only.
        await drive(
            application,
            replies,
            Updates(),
            arguments["chats"],
            text,
            total=0,
            concurrency=arguments["concurrency"],
            rounds=2 * refs,
        )
    if arguments.get("barrier"):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    try:
        stats = await drive(
            application,
            replies,
            Updates(),
            arguments["chats"],
            text,
            total=arguments["updates"],
            concurrency=arguments["concurrency"],
            check=answered,
        )
        return {
            "updates": stats.count + stats.failures,
            "failures": stats.failures,
            "per_second": stats.per_second,
            "seconds": stats.wall_seconds,
            "p50_ms": stats.p50_ms,
            "p99_ms": stats.p99_ms,
            "rss_start_kb": rss_start,
            "vm_hwm_kb": proc_status_kb("VmHWM"),
            "vm_rss_kb": proc_status_kb("VmRSS"),
            "failure_samples": stats.failure_samples,
        }
    finally:
        await application.stop()
        await application.post_shutdown(application)  # type: ignore[misc]
        await application.shutdown()


if __name__ == "__main__":
    report = asyncio.run(main(json.loads(sys.argv[1])))
    print(json.dumps(report))
