"""HTTP rows: the REST API as deployed (`snippetvault api`: uvicorn, httptools, the services and
the outbox worker in one process), driven over real HTTP round trips from this process.

Each route is measured against two floors served by the same server in the same run, right
before it (`bench/api_process.py`): a bare route returning a constant (the framework floor)
and the route's unavoidable round trips made with the bare drivers (its I/O floor). Latency:
from sending a request to reading its whole response, with `concurrency` keep-alive
connections in a closed loop. CPU per request: the server process's utime + stime from /proc
over the row and until its outbox worker has sent the row's emails (so that no row pays for
the emails of the one before).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt

from bench.e2e import ChildProcess, free_port
from bench.rows import Row
from bench.seed import PASSWORD, Fixture

START_TIMEOUT_SECONDS = 60
DRAIN_TIMEOUT_SECONDS = 30
UNSENT_SQL = (
    "SELECT count(*) FROM outbox WHERE status = 'sending' "
    "OR (status = 'pending' AND next_attempt_at <= now())"
)
GET_P99_LIMIT_MS = 50.0
SAVE_CODE = "def quick_sort(items):\n    return sorted(items)\n"

Request = Callable[[httpx.AsyncClient, int, int], Awaitable[httpx.Response]]
"""(client, worker index, request number) → the response."""


@dataclass
class _Sample:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class _User:
    id: str
    address: str
    token: str
    jti: str
    snippet_ids: list[str]


class HttpBench:
    def __init__(
        self,
        *,
        database_dsn: str,
        database_url: str,
        redis_url: str,
        smtp_port: int,
        jwt_secret: str,
        data_dir: Path,
        fixture: Fixture,
        requests: int,
        concurrency: int,
        search_terms: list[str],
    ) -> None:
        self.dsn, self.database_url, self.redis_url = database_dsn, database_url, redis_url
        self.smtp_port, self.jwt_secret, self.data_dir = smtp_port, jwt_secret, data_dir
        self.fixture = fixture
        self.requests, self.concurrency = requests, concurrency
        self.search_terms = search_terms
        self.rows: list[Row] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: ChildProcess | None = None

    # -- the server -----------------------------------------------------------------------------

    async def start(self) -> None:
        env = {
            **os.environ,
            "BENCH_DSN": self.dsn,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "SMTP_SECURITY": "none",
            "JWT_SECRET": self.jwt_secret,
            "DATA_DIR": str(self.data_dir),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            # As behind the deployment's proxy: each simulated user has an address of its own
            # (the login throttle counts per address).
            "TRUSTED_PROXIES": "127.0.0.1/32",
        }
        env.pop("BOT_WEBHOOK_URL", None)
        self.server = server = ChildProcess(
            "api",
            [sys.executable, "-m", "bench.api_process"],
            env,
            self.data_dir / "snippetvault-api.log",
        )
        await server.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        async with httpx.AsyncClient(base_url=self.base) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/__bench/constant")).status_code == 200:
                        return
                exited = server.process is not None and server.process.returncode is not None
                if exited or time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start:\n" + server.log_tail())
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    def _cpu(self) -> float:
        assert self.server is not None
        return self.server.cpu_seconds()

    # -- driving --------------------------------------------------------------------------------

    def _client(self, connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=self.base, limits=limits, timeout=30)

    async def _drive(
        self,
        request: Request,
        *,
        total: int,
        concurrency: int,
        ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
        stop: asyncio.Event | None = None,
        until_emails_sent: bool = True,
    ) -> _Sample:
        """`until_emails_sent=False` for drives that overlap (their emails mix)."""
        sample = _Sample()
        counter = iter(range(total))
        async with self._client(concurrency) as client:

            async def lane(index: int) -> None:
                for number in counter:
                    if stop is not None and stop.is_set():
                        return
                    began = time.perf_counter()
                    try:
                        response = await request(client, index, number)
                        good = ok(response)
                        detail = f"{response.status_code} {response.text[:200]}"
                    except httpx.HTTPError as error:
                        good, detail = False, repr(error)
                    sample.latencies.append(time.perf_counter() - began)
                    if not good:
                        sample.failures += 1
                        if len(sample.failure_samples) < 3:
                            sample.failure_samples.append(detail)

            cpu, began = self._cpu(), time.perf_counter()
            await asyncio.gather(*(lane(index) for index in range(concurrency)))
            sample.seconds = time.perf_counter() - began
            if until_emails_sent:
                await self._emails_sent()
            sample.cpu_seconds = self._cpu() - cpu
        return sample

    async def _emails_sent(self) -> None:
        """Waits until the server's outbox worker has sent what the row queued: its CPU counts
        in the row's, and none of it spills into the next row (which, measured right after a
        row of 600 emails, ran at half speed whichever came second: floor or product)."""
        connection = await asyncpg.connect(self.dsn)
        try:
            deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
            while await connection.fetchval(UNSENT_SQL):
                if time.monotonic() > deadline:
                    left = await connection.fetch(
                        "SELECT kind, status, attempts, last_error FROM outbox "
                        "WHERE status IN ('pending', 'sending') LIMIT 5"
                    )
                    raise RuntimeError(f"the outbox worker did not send the row's emails: {left}")
                await asyncio.sleep(0.02)
        finally:
            await connection.close()

    def _row(self, name: str, sample: _Sample) -> Row:
        count = len(sample.latencies)
        ms = [value * 1000 for value in sample.latencies]
        row = Row(
            name,
            updates=count,
            p50_ms=statistics.median(ms) if ms else math.nan,
            p95_ms=_percentile(ms, 0.95),
            p99_ms=_percentile(ms, 0.99),
            per_second=count / sample.seconds if sample.seconds else math.nan,
            cpu_ms=sample.cpu_seconds * 1000 / count if count else math.nan,
            failures=sample.failures,
        )
        if sample.failure_samples:
            row.extra["failure_samples"] = sample.failure_samples
        self.rows.append(row)
        return row

    # -- the rows -------------------------------------------------------------------------------

    async def run(self) -> list[Row]:
        await self.start()
        try:
            await self._log_in()
            await self._rows()
        finally:
            await self.stop()
        return self.rows

    async def _log_in(self) -> None:
        """Tokens for as many users as connections, over `POST /auth/login` (bcrypt)."""
        users = self.fixture.users[: self.concurrency]
        by_owner: dict[Any, list[tuple[int, Any]]] = {}
        for (owner, ref), snippet_id in self.fixture.snippet_ids.items():
            by_owner.setdefault(owner, []).append((ref, snippet_id))
        self.users: list[_User] = []
        async with self._client(len(users)) as client:

            async def login(index: int) -> _User:
                user = users[index]
                address = f"10.20.{index // 250}.{1 + index % 250}"
                response = await client.post(
                    "/auth/login",
                    json={"email": user.email, "password": PASSWORD},
                    headers={"X-Forwarded-For": address},
                )
                response.raise_for_status()
                token = response.json()["access_token"]
                claims = jwt.decode(token, options={"verify_signature": False})
                ids = [str(snippet_id) for _, snippet_id in sorted(by_owner[user.id])]
                return _User(str(user.id), address, token, claims["jti"], ids)

            self.users = list(await asyncio.gather(*(login(i) for i in range(len(users)))))

    def _headers(self, user: _User) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.users_token(user)}",
            "X-Forwarded-For": user.address,
        }

    @staticmethod
    def users_token(user: _User) -> str:
        return user.token

    async def _rows(self) -> None:
        n, c = self.requests, self.concurrency
        users = self.users
        floor = self._row(
            "framework floor (GET constant)",
            await self._drive(lambda cl, i, k: cl.get("/__bench/constant"), total=n, concurrency=c),
        )
        floor.note = "a bare route on the same server returning a constant"

        def user(index: int) -> _User:
            return users[index % len(users)]

        def hot(u: _User, k: int) -> str:
            return u.snippet_ids[k % 3]

        # Warm the cache of the hot snippets and of every user's first page.
        async def warm(cl: httpx.AsyncClient, i: int, k: int) -> httpx.Response:
            u = user(k)
            await cl.get(f"/snippets/{hot(u, k // len(users))}", headers=self._headers(u))
            return await cl.get("/snippets", headers=self._headers(u))

        await self._drive(warm, total=3 * len(users), concurrency=c)

        await self._pair(
            "GET /snippets/{id} (cached)",
            lambda cl, i, k: cl.get(f"/__bench/io/get/{hot(user(i), k)}?jti={user(i).jti}"),
            lambda cl, i, k: cl.get(f"/snippets/{hot(user(i), k)}", headers=self._headers(user(i))),
            1.5,
        )
        cold_base = [100]

        def cold(u: _User, k: int, offset: int) -> str:
            return u.snippet_ids[(offset + k) % len(u.snippet_ids)]

        # Distinct snippets, each read once: floor and product on different ones (never cached).
        await self._pair(
            "GET /snippets/{id} (cold cache)",
            lambda cl, i, k: cl.get(
                f"/__bench/io/cold/{cold(user(i), k, cold_base[0])}?jti={user(i).jti}"
            ),
            lambda cl, i, k: cl.get(
                f"/snippets/{cold(user(i), k, cold_base[0] + n)}", headers=self._headers(user(i))
            ),
            2.0,
        )
        await self._pair(
            "POST /snippets",
            lambda cl, i, k: cl.post(
                f"/__bench/io/save?jti={user(i).jti}",
                json={"title": f"Floor {k}", "code": SAVE_CODE},
            ),
            lambda cl, i, k: cl.post(
                "/snippets",
                json={"title": f"Bench {k}", "code": SAVE_CODE, "language": "python"},
                headers=self._headers(user(i)),
            ),
            2.0,
            ok=lambda r: r.status_code == 201,
        )
        # The saves emptied the cached first pages: fill them again.
        await self._drive(
            lambda cl, i, k: cl.get("/snippets", headers=self._headers(user(k))),
            total=len(users),
            concurrency=c,
        )
        await self._pair(
            "GET /snippets (first page)",
            lambda cl, i, k: cl.get(f"/__bench/io/list?jti={user(i).jti}"),
            lambda cl, i, k: cl.get("/snippets", headers=self._headers(user(i))),
            2.0,
        )
        terms = self.search_terms
        await self._pair(
            f"GET /snippets?q= ({len(self.fixture.snippet_ids):,} snippets)",
            lambda cl, i, k: cl.get(
                f"/__bench/io/search?jti={user(i).jti}&q={terms[(i + k) % len(terms)]}"
            ),
            lambda cl, i, k: cl.get(
                "/snippets",
                params={"q": terms[(i + k) % len(terms)]},
                headers=self._headers(user(i)),
            ),
            2.0,
        )
        await self._logins()

    async def _pair(
        self,
        name: str,
        floor_request: Request,
        request: Request,
        limit: float,
        ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
    ) -> None:
        n, c = self.requests, self.concurrency
        floor = self._row(
            f"I/O floor: {name}", await self._drive(floor_request, total=n, concurrency=c, ok=ok)
        )
        row = self._row(name, await self._drive(request, total=n, concurrency=c, ok=ok))
        row.compare(floor, limit)
        framework = next(r for r in self.rows if r.name.startswith("framework floor"))
        # CPU comes from /proc in clock ticks (10 ms): a short row may read none at all.
        cpu = row.cpu_ms / framework.cpu_ms if framework.cpu_ms else math.nan
        row.note = (
            f"{row.p50_ms / framework.p50_ms:.2f}× the framework floor (p50); CPU {cpu:.2f}× its"
        )

    async def _logins(self) -> None:
        """`POST /auth/login` ×N at once (bcrypt) while two connections keep sending cached
        GETs; the GETs' p99 is the row."""
        users = self.users[:2]
        login_users = self.fixture.login_users

        def get(cl: httpx.AsyncClient, i: int, k: int) -> Awaitable[httpx.Response]:
            u = users[i % len(users)]
            return cl.get(f"/snippets/{u.snippet_ids[k % 3]}", headers=self._headers(u))

        baseline = self._row(
            f"GET /snippets/{{id}} (cached), {len(users)} connections, no logins",
            await self._drive(get, total=max(50, self.requests // 4), concurrency=len(users)),
        )
        baseline.note = "baseline for the next row"
        stop = asyncio.Event()
        gets = asyncio.create_task(
            self._drive(
                get, total=10**9, concurrency=len(users), stop=stop, until_emails_sent=False
            )
        )
        await asyncio.sleep(0.2)

        def login(cl: httpx.AsyncClient, i: int, k: int) -> Awaitable[httpx.Response]:
            who = login_users[k]
            return cl.post(
                "/auth/login",
                json={"email": who.email, "password": PASSWORD},
                headers={"X-Forwarded-For": f"10.30.0.{1 + k % 250}"},
            )

        began = time.perf_counter()
        logins = await self._drive(
            login,
            total=len(login_users),
            concurrency=len(login_users),
            until_emails_sent=False,
        )
        window = time.perf_counter() - began
        stop.set()
        during = self._row(
            f"GET /snippets/{{id}} (cached), {len(users)} connections, during "
            f"{len(login_users)} logins",
            await gets,
        )
        self.rows.remove(during)
        login_row = self._row(f"POST /auth/login ×{len(login_users)} at once", logins)
        self.rows.remove(login_row)
        self.rows += [during, login_row]
        during.target = f"p99 ≤ {GET_P99_LIMIT_MS:g} ms"
        during.met = during.failures == 0 and during.p99_ms <= GET_P99_LIMIT_MS
        during.note = f"the logins took {window:.2f} s"
        login_row.note = "bcrypt rounds=12, one hashing thread"
