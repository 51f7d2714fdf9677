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
from argparse import SUPPRESS
from dataclasses import asdict, fields, replace
from pathlib import Path

from bench.e2e import table as e2e_table
from bench.rows import table
from bench.run import Results, Sizes, run

PACKAGE_DIR = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="SnippetVault benchmarks: end to end (the bot as deployed, over HTTP, against "
        "an echo bot) and in process (every command against its framework and I/O floors), on "
        "this machine's Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379).",
    )
    defaults = Sizes()
    for item in fields(Sizes):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        help_text = f"{item.metadata['help']} (default {default})"
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(flag, type=type(default), default=SUPPRESS, help=help_text)
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


def sizes_from(args: argparse.Namespace) -> Sizes:
    """The quick or default sizes, with every size given on the command line instead."""
    base = Sizes.quick() if args.quick else Sizes()
    given = {item.name: getattr(args, item.name) for item in fields(Sizes) if item.name in args}
    return replace(base, **given)


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
    ]
    if results.e2e_rows:
        e2e = results.extra.get("e2e", {})
        parts += [
            "",
            "## End to end: the bot as deployed, against an echo bot",
            "",
            "`snippetvault run` (Postgres, Redis, an SMTP sink process, its outbox worker in the "
            "same process) and a bare python-telegram-bot echo bot, each a process of its own, "
            "both long-polling one HTTP Bot API on localhost (`bench/botapi.py`); a round trip "
            "is "
            '"user sends → the Bot API receives the reply". Slices alternate, echo then '
            f"product, {results.sizes.slices} of {results.sizes.slice_seconds:g} s each per "
            "bot and row. CPU per reply: the bot process's utime + stime from /proc (for the "
            "product, until the slice's emails reached the SMTP sink). Paced: one command a "
            "second per chat at random phases, `TELEGRAM_RATE_LIMIT` 30. Saturation: closed "
            f"loop, `TELEGRAM_RATE_LIMIT=0`. Load before `{e2e.get('load_before')}`, after "
            f"`{e2e.get('load_after')}`.",
            "",
            e2e_table(results.e2e_rows),
        ]
    if results.http_rows:
        http = results.extra.get("http", {})
        parts += [
            "",
            "## HTTP: the REST API as deployed, against its floors",
            "",
            "`snippetvault api` as a process of its own (uvicorn with httptools, the services "
            "and the outbox worker, as deployed; `bench/api_process.py` adds the floors' routes "
            "to the same app), driven from the bench process over real HTTP round trips "
            f"(httpx, {results.sizes.http_concurrency} keep-alive connections in a closed loop, "
            f"{results.sizes.http_requests} requests a row). Each route is compared with its "
            "I/O floor (a route on the same server making the route's unavoidable round trips "
            "with the bare drivers), measured right before it; the notes compare it with the "
            "framework floor (a route returning a constant). CPU per request: the server "
            "process's utime + stime from /proc, over the row and until the outbox worker has "
            "sent the row's emails (each row starts with none left over). Load before "
            f"`{http.get('load_before')}`, after `{http.get('load_after')}`.",
            "",
            table(results.http_rows),
        ]
    if results.rows:
        parts += [
            "",
            "## In process: every command against its floors",
            "",
            "Latency: from parsing an update to the bot's reply request for its chat, with "
            f"{results.sizes.concurrency} chats sending at once (closed loop, "
            "`concurrent_updates` on, the production rate limiter with a budget the loop never "
            "reaches). The ratio compares p50 latencies with the I/O floor row named; each row and "
            "its floor ran in two halves each, alternating (floor, row, floor, row), so that a "
            "change in the machine's load weighs on both.",
            "",
            table(results.rows),
        ]
    if results.search_plan:
        parts += [
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
        "e2e_rows": [row.as_json() for row in results.e2e_rows],
        "http_rows": [row.as_json() for row in results.http_rows],
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
    sizes = sizes_from(args)
    results = asyncio.run(run(sizes))
    host = machine()
    if results.e2e_rows:
        print(e2e_table(results.e2e_rows))
    if results.http_rows:
        print(table(results.http_rows))
    print(table(results.rows))
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    (output / "RESULTS.md").write_text(markdown(results, host))
    (output / "results.json").write_text(json.dumps(as_json(results, host), indent=2) + "\n")
    print(f"\nwrote {output / 'RESULTS.md'} and {output / 'results.json'}")
    missed = [f"{row.mode} {row.name}" for row in results.e2e_rows if row.met is False]
    missed += [f"HTTP {row.name}" for row in results.http_rows if row.met is False]
    missed += [row.name for row in results.rows if row.met is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 0
