"""The sandbox: work in a child process, a deadline that holds, a child replaced when it is
killed or dies, and nothing left running after `close()`."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.sandbox import DeadlineExceeded, Sandbox, SandboxError

DEADLINE = 2.0
"""Long enough that a call meant to succeed does so on a busy 2-core machine (CI); the overrun
tests still show the cut, since their work would run for 60 s."""
BOUND_SECONDS = DEADLINE + 10.0
"""A call's wall-clock bound: the deadline plus slack no busy machine uses up (a coarse guard:
without the deadline, the 60 s spin would run to its end)."""


def double(value: int) -> int:
    return value * 2


def spin(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def hold(started: str | None, release: str) -> str:
    """Marks `started` (when given), then works until `release` exists (30 s at most)."""
    if started is not None:
        Path(started).touch()
    end = time.monotonic() + 30.0
    while not os.path.exists(release):
        if time.monotonic() > end:
            return "never released"
        time.sleep(0.001)
    return "done"


def fail() -> None:
    raise ValueError("no good")


def die() -> None:
    os._exit(3)


def child_pid() -> int:
    return os.getpid()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(deadline=DEADLINE, name="test sandbox")
    # Started before anything is measured (a start-up on a busy machine may take a while).
    assert await _until_it_answers(sandbox) == 42
    yield sandbox
    await sandbox.close()


async def _until_it_answers(sandbox: Sandbox) -> int:
    """The replacement of a killed child answers within a deadline once it is up."""
    for _ in range(100):
        try:
            return await sandbox.run(double, 21)
        except DeadlineExceeded:
            await asyncio.sleep(0.1)
    raise AssertionError("the replacement never answered")


async def test_work_runs_in_another_process(sandbox: Sandbox) -> None:
    assert await sandbox.run(double, 21) == 42
    assert await sandbox.run(child_pid) != os.getpid()


async def test_an_overrun_is_cut_at_the_deadline_and_the_child_replaced(sandbox: Sandbox) -> None:
    first = await sandbox.run(child_pid)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await sandbox.run(spin, 60.0)
    assert time.monotonic() - started < BOUND_SECONDS

    assert await _until_it_answers(sandbox) == 42
    assert await sandbox.run(child_pid) != first


async def test_the_event_loop_keeps_running_meanwhile(tmp_path: Path) -> None:
    # The child works until the loop has ticked three times: it answers only if the loop ran
    # meanwhile, however busy the machine (the deadline is a guard against hanging).
    sandbox = Sandbox(deadline=60.0, name="test sandbox")
    ticked = tmp_path / "ticked"
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
            if ticks == 3:
                ticked.touch()

    ticker = asyncio.ensure_future(tick())
    try:
        assert await sandbox.run(hold, None, str(ticked)) == "done"
    finally:
        ticker.cancel()
        await sandbox.close()
    assert ticks >= 3


async def test_a_second_caller_waits_at_most_the_deadline_for_a_busy_child(
    sandbox: Sandbox,
) -> None:
    slow = asyncio.ensure_future(sandbox.run(spin, 60.0))
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await sandbox.run(double, 1)
    assert time.monotonic() - started < BOUND_SECONDS
    with pytest.raises(DeadlineExceeded):
        await slow


async def test_errors_and_deaths_are_sandbox_errors(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="ValueError: no good"):
        await sandbox.run(fail)
    assert await sandbox.run(double, 2) == 4  # the same child goes on

    with pytest.raises(SandboxError):
        await sandbox.run(die)
    assert await _until_it_answers(sandbox) == 42


async def test_a_cancelled_call_does_not_hand_its_answer_to_the_next(tmp_path: Path) -> None:
    # Cancelled while its child works; the child's answer is released only afterwards, so a
    # child kept alive would hand "done" to the next call. No deadline runs out meanwhile.
    sandbox = Sandbox(deadline=60.0, name="test sandbox")
    started, release = tmp_path / "started", tmp_path / "release"
    try:
        call = asyncio.ensure_future(sandbox.run(hold, str(started), str(release)))
        deadline = time.monotonic() + 60  # a wait for a condition: only a failure waits it out
        while not started.exists():
            assert time.monotonic() < deadline, "the call never reached its child"
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        release.touch()

        assert await _until_it_answers(sandbox) == 42
    finally:
        await sandbox.close()


async def test_close_stops_the_children() -> None:
    sandbox = Sandbox(deadline=DEADLINE)
    pid = await sandbox.run(child_pid)
    await sandbox.close()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(SandboxError):
        await sandbox.run(double, 1)
