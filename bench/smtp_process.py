"""`python -m bench.smtp_process`: the bench's SMTP sink as a process of its own.

The end-to-end rows time replies at the Bot API, which runs in the bench process; a sink in
that process too would slow the Bot API down exactly while the product's emails arrive (the
echo bot sends none). So the sink runs here: it prints `port <n>` once ready, then `+` for
every message it accepts, and stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.environment import SmtpSink


class AnnouncingSink(SmtpSink):
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        sys.stdout.write("+\n")
        sys.stdout.flush()
        return answer


async def main() -> None:
    sink = AnnouncingSink()
    await sink.start()
    sys.stdout.write(f"port {sink.port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    await sink.stop()


if __name__ == "__main__":
    asyncio.run(main())
