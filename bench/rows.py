"""What one row of the results holds, and how a row compares with its floor and target."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.harness import Stats


@dataclass
class Row:
    name: str
    updates: int = 0
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    per_second: float = math.nan
    cpu_ms: float = math.nan
    """CPU time of the bench process per update (robust to other load on the machine)."""
    failures: int = 0
    floor: str | None = None
    """The name of the row this one is compared with (its I/O floor)."""
    ratio: float | None = None
    """p50 latency ÷ the floor's p50 latency."""
    cpu_ratio: float | None = None
    """CPU per update ÷ the floor's."""
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_stats(cls, name: str, stats: Stats, **kwargs: Any) -> Row:
        row = cls(
            name,
            updates=stats.count,
            p50_ms=stats.p50_ms,
            p95_ms=stats.p95_ms,
            p99_ms=stats.p99_ms,
            per_second=stats.per_second,
            cpu_ms=stats.cpu_ms_per_update,
            failures=stats.failures,
            **kwargs,
        )
        if stats.failure_samples:
            row.extra["failure_samples"] = stats.failure_samples
        return row

    def compare(self, floor: Row, limit: float) -> None:
        self.floor = floor.name
        self.ratio = self.p50_ms / floor.p50_ms if floor.p50_ms else math.nan
        self.cpu_ratio = self.cpu_ms / floor.cpu_ms if floor.cpu_ms else math.nan
        self.target = f"≤ {limit:g}× floor"
        self.met = self.failures == 0 and self.ratio <= limit

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = None
        return data


def verdict(met: bool | None) -> str:
    if met is None:
        return ""
    return "met" if met else "**missed**"


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| row | updates | p50 ms | p95 ms | p99 ms | updates/s | CPU ms/update | vs floor (p50) "
        "| vs floor (CPU) | target | result | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else ""
        cpu_ratio = f"{row.cpu_ratio:.2f}×" if row.cpu_ratio is not None else ""
        notes = row.note
        if row.failures:
            notes = f"{row.failures} failed; {notes}"
        lines.append(
            f"| {row.name} | {row.updates or ''} | {fmt(row.p50_ms)} | {fmt(row.p95_ms)} | "
            f"{fmt(row.p99_ms)} | {fmt(row.per_second, 0)} | {fmt(row.cpu_ms, 2)} | {ratio} | "
            f"{cpu_ratio} | {row.target} | "
            f"{verdict(row.met)} | {notes} |"
        )
    return "\n".join(lines)
