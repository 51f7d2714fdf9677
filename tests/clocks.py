"""Clocks a test moves forward instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SteppedMonotonic:
    """Stands in for `time.monotonic` (circuit breakers, pauses): still until `advance`."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeTime:
    """Stands in for a clock and `asyncio.sleep` together (the rate limiters): a sleep is
    recorded and moves the clock on at once."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
