"""Runs CPU-heavy third-party work (Pygments) in child processes, each call with a deadline.

Some Pygments lexers and guessers take time quadratic or worse in their input, hold the GIL
while they do, and cannot be interrupted: on the event loop (or in a thread) one user's snippet
would stall every other user. Here the work runs in a child process; the caller awaits the
answer without blocking, and a child that overruns its deadline is killed and replaced.

Children are started on first use and stopped by `close()`. Each is a fresh interpreter
(`python -m core.sandbox`): a fork of a process with threads may deadlock, and multiprocessing's
`spawn` would run the parent's main script again in the child.

A call waits at most `deadline` for a free child, and at most `deadline` for the answer; either
way it then raises `DeadlineExceeded` and the caller falls back to something cheap. Only the first
start of a child is waited for longer (`STARTUP_TIMEOUT_SECONDS`): a fresh child imports its
modules first, which takes a while on a busy machine. A child killed for overrunning is replaced
at once, and the next call waits for the replacement only within its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

STARTUP_TIMEOUT_SECONDS = 30.0
"""How long a fresh child may take to import its modules before the call gives up."""
CPU_SECONDS_PER_CALL = 60
"""A child that outlives its parent mid-call still stops: the kernel ends it after this much
CPU time for one call (the parent kills it long before)."""


class SandboxError(Exception):
    """The work did not finish in its child: it overran the deadline, failed or crashed."""


class DeadlineExceeded(SandboxError):
    pass


class Sandbox:
    """A small pool of child processes for calls of top-level (picklable) functions.

    One instance serves one process; it may be used from successive event loops (tests), but
    from one at a time.
    """

    def __init__(
        self,
        *,
        deadline: float,
        processes: int = 1,
        name: str = "sandbox",
        warm_up: Callable[[], object] | None = None,
    ) -> None:
        self.deadline = deadline
        self._name = name
        self._idle: deque[_Child] = deque(_Child(name, warm_up) for _ in range(processes))
        self._waiters: deque[asyncio.Future[_Child]] = deque()
        self._children = list(self._idle)
        self._closed = False

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a child; `DeadlineExceeded` when it is not done in time,
        `SandboxError` when it raised (with its message) or its child died."""
        if self._closed:
            raise SandboxError(f"{self._name}: closed")
        child = await self._take()
        try:
            return await child.call(function, args, self.deadline)
        finally:
            self._give(child)

    async def close(self) -> None:
        self._closed = True
        for waiter in self._waiters:
            waiter.cancel()
        for child in self._children:
            await asyncio.to_thread(child.stop)

    async def _take(self) -> _Child:
        if self._idle:
            return self._idle.popleft()
        waiter: asyncio.Future[_Child] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, self.deadline)
        except TimeoutError:
            raise DeadlineExceeded(f"{self._name}: no free process within the deadline") from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _give(self, child: _Child) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(child)
                return
        self._idle.append(child)


class _Child:
    """One child process and its end of the pipe; used by one call at a time."""

    def __init__(self, name: str, warm_up: Callable[[], object] | None) -> None:
        self._name = name
        self._warm_up = warm_up
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._ready = False
        self._replaced = False

    def _start(self) -> None:
        parent_end, child_end = socket.socketpair()
        warm_up = self._warm_up
        warm_up_name = f"{warm_up.__module__}:{warm_up.__qualname__}" if warm_up else ""
        try:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
                [sys.executable, "-m", "core.sandbox", str(child_end.fileno()), warm_up_name],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                # The parent's import path (a source checkout, a test run) is the child's.
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))},
            )
        finally:
            child_end.close()
        self._process = process
        self._connection = Connection(parent_end.detach())
        self._ready = False

    async def call(self, function: Callable[..., T], args: tuple[Any, ...], deadline: float) -> T:
        if self._process is None or self._process.poll() is not None:
            self.stop()
            self._start()
        assert self._connection is not None
        if not self._ready:
            # The first start may take its time; a replacement (after a kill) is waited for
            # only within the deadline, and goes on starting for the next call if it is late.
            startup = deadline if self._replaced else STARTUP_TIMEOUT_SECONDS
            try:
                await self._answer(startup)  # the child says it is ready
            except DeadlineExceeded:
                if not self._replaced:
                    self.stop()
                raise
            except BaseException:
                self.stop()
                raise
            self._ready = True
        started = time.monotonic()
        try:
            self._connection.send((function, args))
            status, value = await self._answer(deadline)
        except DeadlineExceeded:
            log.warning(
                "%s: %s overran its %.1f s deadline after %.1f s; its process is replaced",
                self._name,
                getattr(function, "__name__", function),
                deadline,
                time.monotonic() - started,
            )
            self.stop()
            self._start()  # the replacement imports its modules while nobody waits for it
            self._replaced = True
            raise
        except BaseException:
            self.stop()  # cancelled or broken: its late answer must not reach the next call
            raise
        if status != "ok":
            raise SandboxError(f"{self._name}: {value}")
        result: T = value
        return result

    async def _answer(self, seconds: float) -> tuple[str, Any]:
        connection = self._connection
        assert connection is not None
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(connection.fileno(), wake)
        try:
            await asyncio.wait_for(readable, seconds)
        except TimeoutError:
            raise DeadlineExceeded(f"{self._name}: no answer within {seconds:.1f} s") from None
        finally:
            loop.remove_reader(connection.fileno())
        try:
            answer: tuple[str, Any] = connection.recv()
        except (EOFError, OSError) as error:
            self.stop()
            raise SandboxError(f"{self._name}: the process died ({error!r})") from None
        return answer

    def stop(self) -> None:
        """Kills the child (it holds no state worth a graceful end) and reaps it."""
        process, connection = self._process, self._connection
        self._process, self._connection, self._ready = None, None, False
        if connection is not None:
            connection.close()
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


def _serve(connection: Connection, warm_up: Callable[[], object] | None) -> None:
    """The child's loop: answer `(function, args)` with `("ok", result)` or `("error", why)`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if warm_up is not None:
        warm_up()  # imports and table building, before any deadline runs
    connection.send(("ready", None))
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        _limit_cpu_time(CPU_SECONDS_PER_CALL)
        try:
            answer: tuple[str, Any] = ("ok", function(*args))
        except Exception as error:
            answer = ("error", f"{type(error).__name__}: {error}")
        connection.send(answer)


def _limit_cpu_time(seconds: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime) + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _load(name: str) -> Callable[[], object] | None:
    if not name:
        return None
    module, _, qualname = name.partition(":")
    function: Callable[[], object] = getattr(importlib.import_module(module), qualname)
    return function


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])), _load(sys.argv[2]))
