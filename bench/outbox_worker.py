"""One outbox worker in a process of its own: `python -m bench.outbox_worker '<json>'`.

As `snippetvault worker` scales out: its own `Database`, the production `OutboxWorker`
(defaults: batches of 50 over 8 SMTP connections, each reused for its share of a batch) and an
`SmtpTransport`. It prints `ready` once set up, starts draining when a line arrives on stdin,
stops when a claim comes back empty, and prints one JSON line: how many emails it claimed and
how long it took.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from core.ports import utc_now
from core.settings import SmtpSecurity
from mail.render import EmailRenderer
from mail.transport import SmtpTransport
from mail.worker import OutboxWorker
from storage.database import Database


async def main(arguments: dict[str, Any]) -> dict[str, Any]:
    database = Database(arguments["database_url"])
    try:
        worker = OutboxWorker(
            database.outbox_queue(),
            SmtpTransport(
                "127.0.0.1", arguments["smtp_port"], security=SmtpSecurity.NONE, timeout=30
            ),
            EmailRenderer(),
            arguments["sender"],
            utc_now,
        )
        await database.ping()
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        began, cpu_began = time.perf_counter(), time.process_time()
        claimed = 0
        while batch := await worker.drain_once():
            claimed += batch
        return {
            "claimed": claimed,
            "seconds": time.perf_counter() - began,
            "cpu_seconds": time.process_time() - cpu_began,
        }
    finally:
        await database.dispose()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
