"""`python -m bench.bot_process LAG_FILE ARGS…`: `snippetvault ARGS…` with a loop-lag monitor.

The same entry point as the console script (`bot.cli.main`), plus a thread that asks the event
loop, every `TICK_SECONDS`, to run a callback at once, and writes how late it ran when that
exceeds `REPORT_ABOVE_MS` (`<unix time> <ms>` a line) to LAG_FILE: how long the loop was held
by rendering, hashing, draining the outbox or anything else. The bench reads the file per
slice. The thread's own CPU time (about 100 wake-ups a second) is left out of the bot's:
its native thread id is the file's first line for each loop. With `BENCH_PROFILE=<file>`,
pyinstrument profiles the process and writes its report there at exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

TICK_SECONDS = 0.01
REPORT_ABOVE_MS = 5.0


def _watch(loop: asyncio.AbstractEventLoop, out: TextIO) -> None:
    out.write(f"thread {threading.get_native_id()}\n")  # the bench subtracts its CPU time
    out.flush()
    while not loop.is_closed():
        time.sleep(TICK_SECONDS)
        if not loop.is_running():
            continue
        ran = threading.Event()
        asked = time.perf_counter()
        try:
            loop.call_soon_threadsafe(ran.set)
        except RuntimeError:  # closed meanwhile
            return
        if not ran.wait(timeout=30):
            continue
        lag_ms = (time.perf_counter() - asked) * 1000
        if lag_ms > REPORT_ABOVE_MS:
            out.write(f"{time.time():.3f} {lag_ms:.1f}\n")
            out.flush()


class _WatchedPolicy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        threading.Thread(target=_watch, args=(loop, self._out), daemon=True).start()
        return loop


def main() -> int:
    lag_file, *arguments = sys.argv[1:]
    out = open(lag_file, "a", encoding="ascii")  # noqa: SIM115 - open for the process's life
    asyncio.set_event_loop_policy(_WatchedPolicy(out))
    from bot.cli import main as snippetvault

    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        return snippetvault(arguments)
    # A profile of the event loop's thread for the process's whole life (a tool for NOTES.md).
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        return snippetvault(arguments)
    finally:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, show_all=False))


if __name__ == "__main__":
    raise SystemExit(main())
