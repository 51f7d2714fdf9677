"""`python -m bench` (what `make bench` runs): the sizes as arguments, a table on stdout,
`RESULTS.md` and `results.json` in the output directory (this package's directory by default).

`RESULTS.md` is written anew on every run; the hand-written analysis (profiles, fixes with
their before/after numbers) lives in `bench/NOTES.md` and is appended to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
from dataclasses import asdict, fields
from pathlib import Path

from bench.rows import table
from bench.run import Results, Sizes, run

PACKAGE_DIR = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Sizes()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="SnippetVault benchmarks: every command against its framework and I/O "
        "floors, on this machine's Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379).",
    )
    parser.add_argument(
        "--updates",
        type=int,
        default=defaults.updates,
        help="updates per timed row (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help="chats sending at once (default %(default)s)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=defaults.users,
        help="users (logged-in chats) (default %(default)s)",
    )
    parser.add_argument(
        "--snippets",
        type=int,
        default=defaults.snippets,
        help="snippets in the database, spread over the users (default %(default)s)",
    )
    parser.add_argument(
        "--logins",
        type=int,
        default=defaults.logins,
        help="concurrent logins in the login scenario (default %(default)s)",
    )
    parser.add_argument(
        "--emails",
        type=int,
        default=defaults.emails,
        help="emails queued for the outbox scenario (default %(default)s)",
    )
    parser.add_argument(
        "--memory-updates",
        type=int,
        default=defaults.memory_updates,
        help="updates the memory subprocess handles (default %(default)s)",
    )
    parser.add_argument(
        "--no-fake-api-floor",
        action="store_true",
        help="skip the framework floor through tests.fakebotapi",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (a few seconds; the test suite runs this); explicit "
        "size arguments still win",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=PACKAGE_DIR,
        help="where RESULTS.md and results.json go (default: bench/)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each row as it ends")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace, argv: list[str] | None) -> Sizes:
    base = Sizes.quick() if args.quick else Sizes()
    given = set(argv if argv is not None else [])
    values = asdict(base)
    for item in fields(Sizes):
        flag = "--" + item.name.replace("_", "-")
        if item.name in ("fake_api_floor",):
            continue
        if args.quick and not any(arg.split("=")[0] == flag for arg in given):
            continue
        values[item.name] = getattr(args, item.name)
    values["fake_api_floor"] = not args.no_fake_api_floor
    return Sizes(**values)


def machine() -> dict[str, str]:
    cpu = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": memory,
        "os": platform.platform(),
    }


def markdown(results: Results, host: dict[str, str]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in results.versions.items())
    sizes = ", ".join(f"{name}={value}" for name, value in asdict(results.sizes).items())
    seeding = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in results.seed_seconds.items())
    parts = [
        "# SnippetVault benchmark results",
        "",
        f"Run {results.started_at} (UTC), {results.duration_seconds:.0f} s, with `python -m bench`"
        " (`make bench`).",
        "",
        f"- Machine: {host['nproc']} CPUs ({host['cpu']}), {host['ram']} RAM, {host['os']}",
        f"- Versions: {versions}",
        f"- Load (/proc/loadavg) before: `{results.load.get('before')}`, after: "
        f"`{results.load.get('after')}` — other work was running on this machine",
        f"- Settings: {sizes}",
        f"- Seeding: {seeding}",
        "",
        "Latency: from parsing an update to the bot's reply request for its chat, with "
        f"{results.sizes.concurrency} chats sending at once (closed loop, `concurrent_updates` "
        "on). The ratio compares p50 latencies with the I/O floor row named; each floor was "
        "measured right before its row in the same run.",
        "",
        table(results.rows),
        "",
        "## /search plan",
        "",
        f"The statements the app sent for `/search {results.extra.get('search_term', '')}`, "
        "with EXPLAIN (ANALYZE, BUFFERS); trigram indexes used: "
        f"{'yes' if results.extra.get('search_uses_trigram_indexes') else 'NO'}.",
        "",
        "```",
        results.search_plan,
        "```",
    ]
    notes = PACKAGE_DIR / "NOTES.md"
    if notes.exists():
        parts += ["", notes.read_text().strip()]
    return "\n".join(parts) + "\n"


def as_json(results: Results, host: dict[str, str]) -> dict[str, object]:
    return {
        "started_at": results.started_at,
        "duration_seconds": results.duration_seconds,
        "machine": host,
        "versions": results.versions,
        "load": results.load,
        "sizes": asdict(results.sizes),
        "seed_seconds": results.seed_seconds,
        "rows": [row.as_json() for row in results.rows],
        "search_plan": results.search_plan,
        "extra": results.extra,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    sizes = sizes_from(args, argv)
    results = asyncio.run(run(sizes))
    host = machine()
    print(table(results.rows))
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    (output / "RESULTS.md").write_text(markdown(results, host))
    (output / "results.json").write_text(json.dumps(as_json(results, host), indent=2) + "\n")
    print(f"\nwrote {output / 'RESULTS.md'} and {output / 'results.json'}")
    missed = [row.name for row in results.rows if row.met is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 0
