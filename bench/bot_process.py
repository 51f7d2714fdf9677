"""`python -m bench.bot_process LAG_FILE ARGS…`: `snippetvault ARGS…` with a loop-lag monitor
(`… LAG_FILE echo ARGS…`: the echo bot, `python -m bench.echo_bot ARGS…`, with the same monitor).

The same entry point as the console script (`bot.cli.main`), plus, on every event loop the
process creates, a timer that re-arms itself every `TICK_SECONDS` and writes how late it fired
when that exceeds `REPORT_ABOVE_MS` (`<unix time> <ms late> <CPU ms of the loop thread since the
tick before>` a line, so the CPU part may include up to `TICK_SECONDS` before the lag) to
LAG_FILE: how long the loop was held by rendering, hashing, draining the outbox, a garbage
collection or anything else (CPU), or by other processes that had the machine (the rest).
Each collection of the oldest generation is written too (`gc <unix time> <ms> <collected>`),
and at exit the collections of each generation and their total time (`gcsum <gen> <n> <ms>`).
The bench reads the file per slice. The timer costs about 100 callbacks a second (well under
1% of a core). With `BENCH_PROFILE=<file>`, pyinstrument profiles the process and writes its
report there at exit; with `BENCH_STALL_STACKS=<file>`, a thread writes the loop thread's stack
there whenever the loop is `STALL_MS` late (for stalls too rare for a profile to show).
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TextIO

TICK_SECONDS = 0.01
REPORT_ABOVE_MS = 5.0


def _watch(loop: asyncio.AbstractEventLoop, out: TextIO) -> None:
    """A timer that re-arms itself every `TICK_SECONDS` and writes how late it fired: late
    means the loop's thread was held (a callback, or a collection holding the GIL)."""

    def tick(planned: float, cpu_then: float) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        _last_tick[0] = now
        lag_ms = (now - planned) * 1000
        if lag_ms > REPORT_ABOVE_MS and planned:
            # How much of the lag this thread spent on the CPU: the rest, other processes
            # had the machine.
            out.write(f"{time.time():.3f} {lag_ms:.1f} {(cpu - cpu_then) * 1000:.1f}\n")
            out.flush()
        loop.call_later(TICK_SECONDS, tick, now + TICK_SECONDS, cpu)

    loop.call_soon(tick, 0.0, 0.0)  # runs once the loop does; the first tick arms the next
    stacks = os.environ.get("BENCH_STALL_STACKS")
    if stacks:
        _watch_stalls(threading.get_ident(), Path(stacks))


_last_tick = [0.0]
STALL_MS = 30.0


def _watch_stalls(loop_thread: int, path: Path) -> None:
    """With `BENCH_STALL_STACKS=<file>`: a thread that writes the loop thread's stack each time
    the loop is `STALL_MS` late (once a stall, every 10 ms of it): what holds the loop, for
    stalls too rare for a sampling profile to show."""

    def watch() -> None:
        with path.open("a", encoding="utf-8") as out:
            while True:
                time.sleep(0.005)
                late = (time.perf_counter() - _last_tick[0]) * 1000 - TICK_SECONDS * 1000
                if _last_tick[0] and late > STALL_MS:
                    frame = sys._current_frames().get(loop_thread)
                    stack = "".join(traceback.format_stack(frame)) if frame else "?"
                    out.write(f"--- {time.time():.3f} late {late:.0f} ms\n{stack}")
                    out.flush()
                    time.sleep(0.01)

    threading.Thread(target=watch, name="stall-watch", daemon=True).start()


def _watch_gc(out: TextIO) -> None:
    """Each collection of the oldest generation, as `gc <unix time> <ms>` (a loop stall's
    usual suspect)."""
    began = [0.0]
    totals = [[0, 0.0], [0, 0.0], [0, 0.0]]  # per generation: collections, ms

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
            return
        generation = info.get("generation", 0)
        ms = (time.perf_counter() - began[0]) * 1000
        totals[generation][0] += 1
        totals[generation][1] += ms
        if generation == 2:
            out.write(f"gc {time.time():.3f} {ms:.1f} {info.get('collected', 0)}\n")
            out.flush()

    def report() -> None:
        for generation, (count, ms) in enumerate(totals):
            out.write(f"gcsum {generation} {count} {ms:.1f}\n")
        out.flush()

    gc.callbacks.append(callback)
    atexit.register(report)


class _WatchedPolicy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        _watch(loop, self._out)
        return loop


def main() -> int:
    lag_file, *arguments = sys.argv[1:]
    out = open(lag_file, "a", encoding="ascii")  # noqa: SIM115 - open for the process's life
    asyncio.set_event_loop_policy(_WatchedPolicy(out))
    _watch_gc(out)
    if arguments[:1] == ["echo"]:  # the echo bot, watched the same way
        from bench.echo_bot import main as echo

        echo(arguments[1:])
        return 0
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
