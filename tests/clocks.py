"""Clocks a test moves forward instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SteppedMonotonic:
    """Stands in for `time.monotonic` (circuit breakers, pauses): still until `advance`."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
