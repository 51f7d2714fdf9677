"""The bench run: backends up, data in, the bot started, every scenario, everything torn down."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy import event

from bench.e2e import Command, E2ERow, EndToEnd
from bench.environment import BenchDatabase, SmtpSink, claim_redis, release_redis
from bench.floors import FloorDrivers, Floors
from bench.harness import (
    BOT_TOKEN,
    BOT_USERNAME,
    AnyApplication,
    Check,
    LeanRequest,
    LoopLag,
    Replies,
    Reply,
    Stats,
    Text,
    Updates,
    drive,
)
from bench.http import HttpBench
from bench.rows import Row
from bench.seed import PASSWORD, Fixture, seed
from bootstrap import bootstrap
from bot.app import build_application
from core.entities import Snippet, User
from core.events import SnippetRetrieved
from core.notifications import email_for
from core.security import default_hashing_threads
from core.settings import Settings, SmtpSecurity, load_settings
from mail.render import CodeHighlighter, EmailRenderer
from storage.database import Database

log = logging.getLogger("bench")

IN_PROCESS_RATE_LIMIT = 100_000
"""Messages/s for the in-process rows: the limiter's work without its queue."""
CACHED_REFS = 3
"""Refs per chat that the cached /get row cycles through (warmed first)."""
PAIR_HALVES = 2
"""Halves of each in-process row and its I/O floor, run alternately (floor, product, floor…)."""
LOGIN_GET_CHATS = 2
"""Chats sending /get while the logins run."""
SAVE_CODE = "\n".join(
    [
        "```python",
        "def quick_sort(items):",
        "    if len(items) <= 1:",
        "        return items",
        "    pivot, *rest = items",
        "    return quick_sort([x for x in rest if x < pivot]) + [pivot] + \\",
        "        quick_sort([x for x in rest if x >= pivot])",
        "```",
    ]
)


def _size(default: Any, help: str) -> Any:
    """A field of `Sizes`; `bench.cli` makes an option of it, with `help`."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Sizes:
    updates: int = _size(1200, "updates per timed in-process row")
    concurrency: int = _size(32, "chats sending at once in the in-process rows")
    users: int = _size(100, "users (logged-in chats)")
    snippets: int = _size(100_000, "snippets in the database, spread over the users")
    logins: int = _size(20, "concurrent logins in the login scenario")
    emails: int = _size(5000, "emails queued for the outbox scenario")
    memory_updates: int = _size(10_000, "updates the memory subprocess handles")
    in_process: bool = _size(True, "the in-process rows (the bot driven inside this process)")
    end_to_end: bool = _size(
        True, "the end-to-end rows (`snippetvault run` and an echo bot as processes, over HTTP)"
    )
    slice_seconds: float = _size(6.0, "length of one slice of an end-to-end row")
    slices: int = _size(3, "slices per bot in each end-to-end row, echo and product alternating")
    paced_chats: int = _size(20, "chats sending one command a second each (end-to-end, paced)")
    saturation_chats: int = _size(10, "chats in a closed loop (end-to-end, saturation)")
    commands: str = _size("get,save,list,search", "the end-to-end rows' commands, comma-separated")
    http: bool = _size(True, "the HTTP rows (`snippetvault api` as a process, over real HTTP)")
    http_requests: int = _size(600, "requests per timed HTTP row")
    http_concurrency: int = _size(8, "keep-alive connections sending at once in the HTTP rows")

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            updates=64,
            concurrency=8,
            users=8,
            snippets=400,
            logins=2,
            emails=60,
            memory_updates=200,
            slice_seconds=0.6,
            slices=1,
            paced_chats=6,
            saturation_chats=3,
            commands="get,list",
            http_requests=40,
            http_concurrency=4,
        )


@dataclass
class Results:
    sizes: Sizes
    rows: list[Row] = field(default_factory=list)
    e2e_rows: list[E2ERow] = field(default_factory=list)
    http_rows: list[Row] = field(default_factory=list)
    search_plan: str = ""
    search_sql: str = ""
    seed_seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    load: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    duration_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> Row:
        return next(row for row in self.rows if row.name == name)


def _reply_contains(*needles: str) -> Check:
    def check(reply: Reply) -> bool:
        return any(needle in reply.text for needle in needles)

    return check


FLOOR_OK = _reply_contains("ok")
GET_OK = _reply_contains("<pre>")
SAVE_OK = _reply_contains("Saved")
LIST_OK = _reply_contains("Your snippets")
SEARCH_OK = _reply_contains("matching", "Nothing matches")
LOGIN_OK = _reply_contains("Logged in as")


def _get_ref(ref: int) -> Text:
    return lambda c, n: f"/get {ref}"


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


class Bench:
    def __init__(self, sizes: Sizes, stack: AsyncExitStack) -> None:
        self.sizes = sizes
        self.stack = stack
        self.replies = Replies()
        self.updates = Updates()
        self.results = Results(sizes)
        self.jwt_secret = secrets.token_urlsafe(48)

    # -- setting up ------------------------------------------------------------------------

    async def setup(self) -> None:
        sizes = self.sizes
        self.database = await BenchDatabase.create()
        self.stack.push_async_callback(self.database.drop)
        self.redis_url = await claim_redis()
        self.stack.push_async_callback(release_redis, self.redis_url)
        self.sink = SmtpSink()
        await self.sink.start()
        self.stack.push_async_callback(self.sink.stop)
        log.info(
            "database %s, redis %s, smtp :%d", self.database.name, self.redis_url, self.sink.port
        )
        self.fixture: Fixture = await seed(
            self.database.dsn,
            self.jwt_secret,
            users=sizes.users,
            snippets=sizes.snippets,
            login_users=sizes.logins,
        )
        self.results.seed_seconds = self.fixture.seed_seconds
        self.chats = [user.chat_id for user in self.fixture.users]
        self.data_dir = Path(tempfile.mkdtemp(prefix="snippetvault-bench-"))
        self.settings = self.bench_settings()
        self.services = await bootstrap(self.settings)
        # The production rate limiter (shared through Redis) with a budget the closed loop
        # never reaches: its cost is in every row, its queue in none.
        self.application = build_application(
            self.settings,
            services=self.services,
            run_worker=False,
            request=LeanRequest(self.replies),
        )
        self.drivers = FloorDrivers(self.database.dsn, self.redis_url, self.sizes.concurrency)
        await self.drivers.open()
        self.stack.push_async_callback(self.drivers.close)
        Floors(self.drivers, self.fixture.snippet_ids).install(self.application)
        await self.start(self.application, with_services=True)
        await self.record_versions()

    def bench_settings(self) -> Settings:
        return load_settings(
            telegram_bot_token=BOT_TOKEN,
            database_url=self.database.url,
            redis_url=self.redis_url,
            smtp_host="127.0.0.1",
            smtp_port=self.sink.port,
            smtp_security=SmtpSecurity.NONE,
            jwt_secret=self.jwt_secret,
            data_dir=str(self.data_dir),
            telegram_rate_limit=IN_PROCESS_RATE_LIMIT,
            _env_file=None,
        )

    async def start(self, application: AnyApplication, *, with_services: bool) -> None:
        await application.initialize()
        if with_services:
            await application.post_init(application)  # type: ignore[misc]
        await application.start()

        async def stop() -> None:
            await application.stop()
            if with_services:
                await application.post_shutdown(application)  # type: ignore[misc]
            await application.shutdown()

        self.stack.push_async_callback(stop)

    async def record_versions(self) -> None:
        import sqlalchemy
        import telegram

        connection = await asyncpg.connect(self.database.dsn)
        try:
            postgres = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            info = await client.info("server")
        finally:
            await client.aclose()
        self.results.versions = {
            "python": sys.version.split()[0],
            "postgres": str(postgres),
            "redis": str(info.get("redis_version")),
            "python-telegram-bot": telegram.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "asyncpg": asyncpg.__version__,
        }

    # -- HTTP ------------------------------------------------------------------------------

    async def http(self) -> None:
        sink = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.smtp_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert sink.stdin is not None and sink.stdout is not None
        port = int((await sink.stdout.readline()).split()[1])
        emails = 0

        async def count(announcements: asyncio.StreamReader) -> None:
            nonlocal emails
            while await announcements.readline():
                emails += 1

        counting = asyncio.create_task(count(sink.stdout))
        load_before = loadavg()
        began = time.perf_counter()
        try:
            runner = HttpBench(
                database_dsn=self.database.dsn,
                database_url=self.database.url,
                redis_url=self.redis_url,
                smtp_port=port,
                jwt_secret=self.jwt_secret,
                data_dir=self.data_dir,
                fixture=self.fixture,
                requests=self.sizes.http_requests,
                concurrency=min(self.sizes.http_concurrency, len(self.fixture.users)),
                search_terms=self.fixture.search_terms[:20],
            )
            self.results.http_rows = await runner.run()
        finally:
            sink.stdin.close()
            await sink.wait()
            await counting
        self.results.extra["http"] = {
            "load_before": load_before,
            "load_after": loadavg(),
            "seconds": time.perf_counter() - began,
            "emails_received": emails,
        }

    # -- end to end ------------------------------------------------------------------------

    async def end_to_end(self) -> None:
        sizes = self.sizes
        needed = max(sizes.paced_chats, sizes.saturation_chats)
        if len(self.chats) < needed:
            raise SystemExit(f"the end-to-end rows need {needed} users: raise --users")
        terms = self.fixture.search_terms

        def contains(*needles: str) -> Callable[[str], bool]:
            return lambda text: any(needle in text for needle in needles)

        every = [
            Command(
                "/get (cached)", lambda c, n: f"/get {1 + n % CACHED_REFS}", contains("<pre>"), True
            ),
            Command(
                "/save", lambda c, n: f"/save Bench e2e {n}\n{SAVE_CODE}", contains("Saved"), True
            ),
            Command("/list", lambda c, n: "/list", contains("Your snippets"), False),
            Command(
                "/search",
                lambda c, n: f"/search {terms[(c + n) % len(terms)]}",
                contains("matching", "Nothing matches"),
                False,
            ),
        ]
        chosen = {name.strip() for name in sizes.commands.split(",")}
        commands = [c for c in every if c.name.split()[0].removeprefix("/") in chosen]
        load_before = loadavg()
        began = time.perf_counter()
        runner = EndToEnd(
            database_url=self.database.url,
            redis_url=self.redis_url,
            jwt_secret=self.jwt_secret,
            data_dir=self.data_dir,
            chats=self.chats,
            bot_token=BOT_TOKEN,
            bot_username=BOT_USERNAME,
            slice_seconds=sizes.slice_seconds,
            slices=sizes.slices,
            paced_chats=sizes.paced_chats,
            saturation_chats=sizes.saturation_chats,
            commands=commands,
        )
        self.results.e2e_rows = await runner.run()
        self.results.extra["e2e"] = {
            "load_before": load_before,
            "load_after": loadavg(),
            "seconds": time.perf_counter() - began,
        }

    # -- running rows ----------------------------------------------------------------------

    async def run_row(
        self,
        text: Text,
        *,
        check: Check,
        total: int | None = None,
        chats: list[int] | None = None,
        application: AnyApplication | None = None,
        rounds: int | None = None,
    ) -> Stats:
        chats = chats or self.chats
        if total is None and rounds is None:
            rounds = math.ceil(self.sizes.updates / len(chats))  # every chat as often
        return await drive(
            application or self.application,
            self.replies,
            self.updates,
            chats,
            text,
            total=total or 0,
            concurrency=self.sizes.concurrency,
            check=check,
            rounds=rounds,
        )

    def add(self, row: Row) -> Row:
        self.results.rows.append(row)
        log.info(
            "%-28s p50 %7.2f ms  p99 %7.2f ms  %7.0f/s  failures %d",
            row.name,
            row.p50_ms,
            row.p99_ms,
            row.per_second,
            row.failures,
        )
        return row

    async def warm(self, text: Text, check: Check) -> None:
        """One update from every chat, untimed."""
        await self.run_row(text, check=check, rounds=1)

    async def framework_floors(self) -> Row:
        await self.run_row(lambda c, n: "/floor", check=FLOOR_OK)
        lag = LoopLag()
        lag.start()
        stats = await self.run_row(lambda c, n: "/floor", check=FLOOR_OK)
        await lag.stop()
        return self.add(
            Row.from_stats(
                "framework floor",
                stats,
                note="lean in-process Bot API (used by every other row); "
                f"loop lag p99 {lag.p99_ms():.1f} ms",
            )
        )

    async def pair(
        self,
        name: str,
        real: Text,
        floor: Text,
        check: Check,
        limit: float,
        *,
        warm: bool = True,
        before_each: Any = None,
    ) -> tuple[Row, Row]:
        """The I/O floor and the real command, compared: `PAIR_HALVES` halves of each row,
        alternating floor and product, so that a drift of the machine's load during the pair
        weighs on both rows alike. Each half has the server's connections to itself: the
        product's pools close theirs before a floor half, the floor's close before a product
        half (they open again as needed, in the warm-up)."""
        rounds = math.ceil(self.sizes.updates / len(self.chats) / PAIR_HALVES)
        floor_halves: list[Stats] = []
        real_halves: list[Stats] = []
        lag = LoopLag()
        for _ in range(PAIR_HALVES):
            await self.services.database.dispose()
            if warm:
                await self.warm(floor, FLOOR_OK)
            else:  # its first run would spoil the row (a cold cache): its connections open only
                await self.warm(lambda c, n: "/floor_search nothing-matches", FLOOR_OK)
            if before_each is not None:
                await before_each()
            floor_halves.append(await self.run_row(floor, check=FLOOR_OK, rounds=rounds))
            await self.drivers.release()
            if warm:
                await self.warm(real, check)
            else:
                await self.warm(lambda c, n: "/search nothing-matches", SEARCH_OK)
            if before_each is not None:
                await before_each()
            lag.start(keep=True)
            real_halves.append(await self.run_row(real, check=check, rounds=rounds))
            await lag.stop()
        floor_row = self.add(Row.from_stats(f"I/O floor: {name}", Stats.merged(floor_halves)))
        row = Row.from_stats(name, Stats.merged(real_halves))
        row.extra["loop_lag_p99_ms"] = lag.p99_ms()
        row.compare(floor_row, limit)
        return floor_row, self.add(row)

    async def cached_get(self) -> None:
        # Two passes over each (chat, ref): the first caches the ref, the second the snippet.
        for _ in range(2):
            for ref in range(1, CACHED_REFS + 1):
                await self.warm(_get_ref(ref), GET_OK)
        await self.pair(
            "/get (cached)",
            lambda c, n: f"/get {1 + n % CACHED_REFS}",
            lambda c, n: f"/floor_get {1 + n % CACHED_REFS}",
            GET_OK,
            1.5,
        )

    async def cold_get(self) -> None:
        rounds = math.ceil(self.sizes.updates / len(self.chats))
        spare = self.fixture.snippets_per_user - CACHED_REFS
        if spare < rounds:
            raise SystemExit(
                f"cold /get needs {rounds} uncached snippets per user, there are {spare}: "
                "raise --snippets or --users, or lower --updates"
            )
        await self.pair(
            "/get (cold cache)",
            lambda c, n: f"/get {CACHED_REFS + 1 + n}",
            lambda c, n: f"/floor_cold {CACHED_REFS + 1 + n}",
            GET_OK,
            1.5,
            warm=False,
            before_each=self.drop_cached_snippets,
        )

    async def drop_cached_snippets(self) -> None:
        """Every snippet and ref key goes (the sessions live in Postgres, lists stay)."""
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            for pattern in ("snippet:*", "user:*:ref:*", "floor:*"):
                batch = [key async for key in client.scan_iter(match=pattern, count=1000)]
                for start in range(0, len(batch), 1000):
                    await client.delete(*batch[start : start + 1000])
        finally:
            await client.aclose()

    async def save(self) -> None:
        await self.pair(
            "/save",
            lambda c, n: f"/save Bench sort {n}\n{SAVE_CODE}",
            lambda c, n: f"/floor_save Bench sort {n}\n{SAVE_CODE}",
            SAVE_OK,
            2.0,
        )

    async def list_first_page(self) -> None:
        await self.warm(lambda c, n: "/list", LIST_OK)  # caches every chat's first page
        await self.pair(
            "/list (first page)", lambda c, n: "/list", lambda c, n: "/floor_list", LIST_OK, 2.0
        )

    async def search(self) -> None:
        terms = self.fixture.search_terms

        def term(c: int, n: int) -> str:
            return terms[(c + n) % len(terms)]

        _, row = await self.pair(
            "/search",
            lambda c, n: f"/search {term(c, n)}",
            lambda c, n: f"/floor_search {term(c, n)}",
            SEARCH_OK,
            2.0,
        )
        row.note = f"{self.sizes.snippets} snippets, {self.sizes.users} users"
        # The latency target is a person's: one search at a time, no queue of other chats.
        alone = await drive(
            self.application,
            self.replies,
            self.updates,
            self.chats,
            lambda c, n: f"/search {term(c, n)}",
            total=min(400, self.sizes.updates),
            concurrency=1,
            check=SEARCH_OK,
        )
        single = Row.from_stats("/search, one chat at a time", alone)
        single.target = "p95 ≤ 20 ms"
        single.met = single.failures == 0 and single.p95_ms <= 20.0
        single.note = f"{self.sizes.snippets} snippets, {self.sizes.users} users; plan below"
        self.add(single)
        await self.explain_search(term(self.chats[0], 0))

    async def explain_search(self, term: str) -> None:
        """EXPLAIN ANALYZE of the exact statements the app sends for one /search."""
        captured: list[tuple[str, Any]] = []

        def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "LIKE" in statement:
                captured.append((statement, parameters))

        engine = self.services.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", capture)
        try:
            await self.run_row(
                lambda c, n: f"/search {term}", check=SEARCH_OK, total=1, chats=self.chats[:1]
            )
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        connection = await asyncpg.connect(self.database.dsn)
        plans = []
        try:
            for statement, parameters in captured:
                rows = await connection.fetch(
                    f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *tuple(parameters)
                )
                plans.append(statement.strip() + "\n\n" + "\n".join(r[0] for r in rows))
        finally:
            await connection.close()
        self.results.search_plan = "\n\n---\n\n".join(plans)
        used = "ix_snippets_title_trgm" in self.results.search_plan and (
            "ix_snippets_code_trgm" in self.results.search_plan
        )
        self.results.extra["search_uses_trigram_indexes"] = used
        self.results.extra["search_term"] = term

    async def logins(self) -> None:
        """Logins (bcrypt, cost 12) all at once while a few chats keep sending /get.

        The /get traffic is light (`LOGIN_GET_CHATS` chats in a closed loop) so that its
        latency shows what the logins do to other chats rather than a saturated queue; the
        same traffic without logins is measured first, for comparison.
        """
        get_chats = self.chats[:LOGIN_GET_CHATS]
        get_text: Text = lambda c, n: f"/get {1 + n % CACHED_REFS}"  # noqa: E731
        baseline_lag = LoopLag()
        baseline_lag.start()
        baseline = await drive(
            self.application,
            self.replies,
            self.updates,
            get_chats,
            get_text,
            total=0,
            rounds=max(10, self.sizes.updates // (4 * len(get_chats))),
            concurrency=len(get_chats),
            check=GET_OK,
        )
        await baseline_lag.stop()
        base = Row.from_stats(f"/get, {len(get_chats)} chats, no logins", baseline)
        base.note = (
            f"baseline for the next row; loop lag p99 {baseline_lag.p99_ms():.1f} ms, "
            f"max {baseline_lag.max_ms():.1f} ms"
        )
        self.add(base)

        stop = asyncio.Event()
        lag = LoopLag()
        login_users = self.fixture.login_users
        by_chat = {user.chat_id: user for user in login_users}
        lag.start()
        gets = asyncio.create_task(
            drive(
                self.application,
                self.replies,
                self.updates,
                get_chats,
                get_text,
                total=10**9,
                concurrency=len(get_chats),
                check=GET_OK,
                stop=stop,
            )
        )
        began = time.perf_counter()
        logins = await drive(
            self.application,
            self.replies,
            self.updates,
            list(by_chat),
            lambda c, n: f"/login {by_chat[c].email} {PASSWORD}",
            total=len(login_users),
            concurrency=len(login_users),
            check=LOGIN_OK,
        )
        window = time.perf_counter() - began
        stop.set()
        get_stats = await gets
        await lag.stop()
        row = Row.from_stats(
            f"/get, {len(get_chats)} chats, during {len(login_users)} logins", get_stats
        )
        row.target = "p99 ≤ 50 ms"
        row.met = get_stats.failures == 0 and row.p99_ms <= 50.0
        row.note = (
            f"loop lag p99 {lag.p99_ms():.1f} ms, max {lag.max_ms():.1f} ms; "
            f"the logins took {window:.2f} s; hashing threads at once: "
            f"{default_hashing_threads()}"
        )
        row.extra.update(loop_lag_p99_ms=lag.p99_ms(), loop_lag_max_ms=lag.max_ms())
        self.add(row)
        login_row = Row.from_stats(f"/login ×{len(login_users)} at once", logins)
        login_row.note = "bcrypt rounds=12; latency includes waiting for a hashing slot"
        self.add(login_row)

    # -- the outbox ------------------------------------------------------------------------

    async def email_rendering(self) -> None:
        """`Your Requested Snippet` emails of a few snippet versions fetched again and again, as
        the outbox worker renders them (highlighting in its child process, then the MIME parts),
        one at a time: with every body rendered anew, then with the body kept per version."""
        now = datetime.now(UTC)
        owner = User(uuid.uuid4(), "reader@example.com", "x", True, now)
        code = SAVE_CODE.strip("`\npython")
        versions = [
            Snippet(
                uuid.uuid4(),
                owner.id,
                ref,
                f"Quick sort {ref}",
                f"{code}\n# v{ref}\n",
                "python",
                now,
                now,
            )
            for ref in range(1, CACHED_REFS + 1)
        ]
        count = max(60, self.sizes.updates // 4)
        emails = [
            email_for(SnippetRetrieved(owner, versions[n % len(versions)]), now)
            for n in range(count)
        ]
        rows = []
        for name, entries in (("every body rendered", 0), ("body kept per version", 256)):
            renderer = EmailRenderer(CodeHighlighter(), cache_entries=entries)
            try:
                await renderer.highlight(emails[0])  # the child process started
                began, cpu = time.perf_counter(), time.process_time()
                for email in emails:
                    highlighted = await renderer.highlight(email)
                    renderer.render(email, self.settings.smtp_from, highlighted=highlighted)
                seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
            finally:
                await renderer.close()
            row = Row(f"email render ×{count} ({len(versions)} snippet versions): {name}")
            row.updates = count
            row.per_second = count / seconds
            row.p50_ms = seconds * 1000 / count
            row.cpu_ms = cpu * 1000 / count
            row.note = (
                "one at a time; p50 column: wall ms per email (the highlighting child's CPU "
                "included), CPU: the rendering process's only"
            )
            rows.append(row)
        before, after = rows
        after.floor = before.name
        after.ratio = after.p50_ms / before.p50_ms
        after.cpu_ratio = after.cpu_ms / before.cpu_ms
        after.note = f"{before.p50_ms / after.p50_ms:.1f}× faster per email; " + after.note
        for row in rows:
            self.add(row)

    async def outbox(self) -> None:
        for workers in (1, 2):
            await self.queue_emails(self.sizes.emails)
            self.sink.reset()
            row = await self.drain(workers)
            row.target = "≥ 300 emails/s" if workers == 2 else ""
            row.met = (row.per_second >= 300 and row.failures == 0) if workers == 2 else None
            self.add(row)

    async def queue_emails(self, count: int) -> None:
        connection = await asyncpg.connect(self.database.dsn)
        try:
            await connection.execute("TRUNCATE outbox")
            now = datetime.now(UTC)
            owner = User(uuid.uuid4(), "reader@example.com", "x", True, now)
            records = []
            for n in range(count):
                snippet = Snippet(
                    id=uuid.uuid4(),
                    owner_id=owner.id,
                    ref=n + 1,
                    title=f"Quick sort {n}",
                    code=SAVE_CODE.strip("`\npython"),
                    language="python",
                    created_at=now,
                    updated_at=now,
                )
                email = email_for(SnippetRetrieved(owner, snippet), now)
                records.append(
                    (
                        email.id,
                        email.message_id,
                        email.to,
                        email.kind.value,
                        json.dumps(email.context),
                        "pending",
                        0,
                        now,
                        now,
                    )
                )
            await connection.copy_records_to_table(
                "outbox",
                records=records,
                columns=[
                    "id",
                    "message_id",
                    "recipient",
                    "kind",
                    "context",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "created_at",
                ],
            )
        finally:
            await connection.close()

    async def drain(self, workers: int) -> Row:
        """`workers` worker processes drain the queue; the sink (this process) counts."""
        arguments = json.dumps(
            {
                "database_url": self.database.url,
                "smtp_port": self.sink.port,
                "sender": self.settings.smtp_from,
            }
        )
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.outbox_worker",
                arguments,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(workers)
        ]
        for process in processes:
            assert process.stdout is not None
            ready = await process.stdout.readline()
            if ready.strip() != b"ready":
                raise RuntimeError(f"an outbox worker did not start: {ready!r}")
        began, sink_cpu_began = time.perf_counter(), time.process_time()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        outputs = [await process.communicate() for process in processes]
        seconds = time.perf_counter() - began
        sink_cpu = time.process_time() - sink_cpu_began
        reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        database = Database(self.database.url)
        try:
            counts = await database.outbox_queue().counts()
        finally:
            await database.dispose()
        sent = counts.get("sent", 0)
        cpu = sum(report["cpu_seconds"] for report in reports)
        row = Row(f"outbox: {self.sizes.emails} emails, {workers} worker process(es)")
        row.updates = self.sink.received
        row.per_second = sent / seconds if seconds else math.nan
        row.cpu_ms = cpu * 1000 / max(1, sent)
        row.failures = (self.sizes.emails - sent) + self.sink.duplicates
        row.note = (
            f"{self.sink.received} received, {len(self.sink.message_ids)} distinct Message-IDs, "
            f"{self.sink.duplicates} sent twice; {seconds:.1f} s; "
            f"claimed per worker {[report['claimed'] for report in reports]}; "
            f"CPU ms/email: the workers' (the SMTP sink in the bench process used "
            f"{sink_cpu * 1000 / max(1, sent):.1f} ms/email more)"
        )
        row.extra.update(
            received=self.sink.received,
            distinct_message_ids=len(self.sink.message_ids),
            duplicates=self.sink.duplicates,
            outbox_counts=counts,
            seconds=seconds,
            sink_cpu_ms_per_email=sink_cpu * 1000 / max(1, sent),
            workers=reports,
        )
        return row

    # -- scale-out -------------------------------------------------------------------------

    async def processes(self) -> None:
        """Cached /get served by one bot process, then by two at once on the same Postgres
        and Redis (chats split between them): the throughput of two against one."""
        await self.services.database.dispose()  # the server's connections go to the processes
        single = await self._bot_processes(1)
        double = await self._bot_processes(2)
        ratio = double.per_second / single.per_second if single.per_second else math.nan
        double.note = f"{ratio:.2f}× the throughput of one process; " + double.note
        double.extra["ratio_to_one_process"] = ratio
        self.add(single)
        self.add(double)

    async def _bot_processes(self, count: int) -> Row:
        shares = [self.chats[index::count] for index in range(count)]
        per_process = self.sizes.updates // count
        processes = []
        for chats in shares:
            arguments = {
                **self._bot_process_arguments(chats, per_process),
                "mix": "get",
                "barrier": True,
                "concurrency": max(1, self.sizes.concurrency // count),
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.memory",
                json.dumps(arguments),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert process.stdout is not None
            if (await process.stdout.readline()).strip() != b"ready":
                raise RuntimeError("a bot process of the scale-out row did not start")
            processes.append(process)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        outputs = [await process.communicate() for process in processes]
        reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        # They started together: the slowest one's serving time (start-up and shutdown left
        # out) is how long the two took.
        seconds = max(report["seconds"] for report in reports)
        handled = sum(report["updates"] - report["failures"] for report in reports)
        row = Row(f"/get (cached): {count} bot process{'es' if count > 1 else ''}")
        row.updates = handled
        row.per_second = handled / seconds if seconds else math.nan
        row.p50_ms = max(report["p50_ms"] for report in reports)
        row.p99_ms = max(report["p99_ms"] for report in reports)
        row.failures = sum(report["failures"] for report in reports)
        row.note = f"{handled} updates in {seconds:.1f} s (p50/p99: the slowest process)"
        row.extra.update(seconds=seconds, processes=reports)
        return row

    def _bot_process_arguments(self, chats: list[int], updates: int) -> dict[str, object]:
        return {
            "database_url": self.database.url,
            "redis_url": self.redis_url,
            "smtp_port": self.sink.port,
            "jwt_secret": self.jwt_secret,
            "data_dir": str(self.data_dir),
            "chats": chats,
            "search_terms": self.fixture.search_terms[:20],
            "updates": updates,
            "concurrency": self.sizes.concurrency,
            "cached_refs": CACHED_REFS,
        }

    # -- memory ----------------------------------------------------------------------------

    async def memory(self) -> None:
        arguments = self._bot_process_arguments(self.chats, self.sizes.memory_updates)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.memory",
            json.dumps(arguments),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the memory subprocess failed ({process.returncode})")
        report = json.loads(out.decode().strip().splitlines()[-1])
        row = Row(f"memory: bot process after {report['updates']} updates")
        row.updates = report["updates"]
        row.per_second = report["per_second"]
        row.failures = report["failures"]
        peak = report["vm_hwm_kb"] / 1024
        row.target = "peak RSS ≤ 150 MB"
        row.met = peak <= 150 and row.failures == 0
        row.note = (
            f"peak RSS (VmHWM) {peak:.0f} MB; RSS after start-up "
            f"{report['rss_start_kb'] / 1024:.0f} MB, at the end "
            f"{report['vm_rss_kb'] / 1024:.0f} MB (subprocess, mixed commands)"
        )
        row.extra.update(report)
        self.add(row)


@asynccontextmanager
async def bench(sizes: Sizes) -> AsyncIterator[Bench]:
    async with AsyncExitStack() as stack:
        runner = Bench(sizes, stack)
        await runner.setup()
        yield runner


async def run(sizes: Sizes) -> Results:
    began = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = loadavg()
    async with bench(sizes) as runner:
        if sizes.end_to_end:
            await runner.end_to_end()
        if sizes.http:
            await runner.http()
        if sizes.in_process:
            await runner.framework_floors()
            await runner.cached_get()
            await runner.cold_get()
            await runner.save()
            await runner.list_first_page()
            await runner.search()
            await runner.logins()
            await runner.email_rendering()
            await runner.outbox()
            await runner.processes()
            await runner.memory()
        results = runner.results
    results.started_at = started_at
    results.duration_seconds = time.perf_counter() - began
    results.load = {"before": load_before, "after": loadavg()}
    return results
