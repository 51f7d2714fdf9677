"""Service fixtures shared by the whole suite: PostgreSQL, Redis and SQLite databases.

PostgreSQL: `TEST_POSTGRES_ADMIN_URL` (default `postgresql://postgres@127.0.0.1:5432/test`)
must be allowed to create databases; each session works in databases of its own, dropped at
its end.
Redis: `TEST_REDIS_URL` (default: a free database index on 127.0.0.1:6379, flushed per test;
under pytest-xdist, worker N uses the index N above `TEST_REDIS_URL`'s).
An unreachable service skips its tests, or fails them with `SNIPPETVAULT_REQUIRE_SERVICES=1`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis
from sqlalchemy.engine import URL, make_url

from storage.database import Database
from storage.migrate import upgrade
from storage.models import Base

# PTB 22 warns on every RetryAfter unless timedelta values are opted in; tests treat
# warnings as errors, and the bot (bot/cli.py) opts in the same way. (Set before any test
# module imports telegram.)
os.environ.setdefault("PTB_TIMEDELTA", "1")

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL")
REDIS_DEFAULT_SERVER = "redis://127.0.0.1:6379"
REQUIRE_SERVICES = os.environ.get("SNIPPETVAULT_REQUIRE_SERVICES") == "1"
START_HINT = "start it with `docker compose up -d postgres redis`"
_REDIS_CLAIM_KEY = "snippetvault:test-run"


def service_unavailable(service: str, setting: str, error: BaseException) -> NoReturn:
    """Skips the test, or fails it when the run must not skip services."""
    message = f"{service} is not reachable ({error!r}): {START_HINT}, or point {setting} at one"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} [SNIPPETVAULT_REQUIRE_SERVICES=1]", pytrace=False)
    pytest.skip(message)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"postgres_url", "fresh_postgres_url", "empty_postgres_url"}:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in names:
            item.add_marker(pytest.mark.redis)


# PostgreSQL ---------------------------------------------------------------------------------


def _dsn(url: str) -> str:
    """`url` as asyncpg takes it (no `+driver`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _app_url(database: str) -> str:
    url: URL = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        await connection.execute(statement, timeout=30)
    finally:
        await connection.close()


def _create_database(kind: str) -> str:
    name = f"snippetvault_{kind}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_execute(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        service_unavailable("PostgreSQL", "TEST_POSTGRES_ADMIN_URL", error)
    return name


def _drop_database(name: str) -> None:
    asyncio.run(_execute(POSTGRES_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def _migrated_database(kind: str) -> Iterator[str]:
    name = _create_database(kind)
    try:
        url = _app_url(name)
        asyncio.run(upgrade(url))
        yield url
    finally:
        _drop_database(name)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated database shared by the session: keep data unique per test (fresh UUIDs)."""
    with _migrated_database("shared") as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_scratch_url() -> Iterator[str]:
    with _migrated_database("scratch") as url:
        yield url


@pytest.fixture
def fresh_postgres_url(_postgres_scratch_url: str) -> str:
    """A migrated database whose tables are empty when the test starts.

    (Emptied rather than created anew: creating a database costs half a second.)
    """
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    asyncio.run(_execute(_postgres_scratch_url, f"TRUNCATE {tables} RESTART IDENTITY"))
    return _postgres_scratch_url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A database of this test alone without any schema (not migrated)."""
    name = _create_database("empty")
    yield _app_url(name)
    _drop_database(name)


# SQLite -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "snippetvault.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database file of this test alone."""
    path = tmp_path / "snippetvault.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


# Both backends ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database of this test, once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


# Redis --------------------------------------------------------------------------------------


def _claim_redis_database() -> str:
    """A database index no other test run on this server uses right now."""
    run_id = uuid.uuid4().hex
    last_error: BaseException | None = None
    for index in range(15, 0, -1):
        url = f"{REDIS_DEFAULT_SERVER}/{index}"
        try:
            with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
                if client.set(_REDIS_CLAIM_KEY, run_id, nx=True, ex=3600):
                    return url
        except redis.RedisError as error:
            last_error = error
            break
    service_unavailable(
        "Redis", "TEST_REDIS_URL", last_error or RuntimeError("every database index is in use")
    )


def _worker_redis_url(url: str, worker: str) -> str:
    """`url` for one pytest-xdist worker: `gw<N>` uses the database index N above `url`'s, so
    that workers (which share `TEST_REDIS_URL`) never flush each other's keys."""
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    index = base + int(worker[2:])
    if index > 15:
        raise pytest.UsageError(
            f"TEST_REDIS_URL={url}: pytest-xdist worker {worker} would need Redis database "
            f"index {index} (the default server has 0-15): use a lower index or fewer workers"
        )
    return urlunsplit(parts._replace(path=f"/{index}"))


@pytest.fixture(scope="session")
def _redis_server_url() -> Iterator[str]:
    if REDIS_URL:
        yield _worker_redis_url(REDIS_URL, os.environ.get("PYTEST_XDIST_WORKER", ""))
        return
    url = _claim_redis_database()
    yield url
    with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
        client.flushdb()


@pytest.fixture
def redis_url(_redis_server_url: str) -> str:
    """An empty Redis database (flushed before the test)."""
    try:
        with redis.Redis.from_url(
            _redis_server_url, socket_connect_timeout=1, socket_timeout=1
        ) as client:
            client.flushdb()
            if not REDIS_URL:
                client.set(_REDIS_CLAIM_KEY, "claimed", ex=3600)
    except redis.RedisError as error:
        service_unavailable("Redis", "TEST_REDIS_URL", error)
    return _redis_server_url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ThrowawayRedis:
    """A `redis-server` of this test alone, which the test may stop, restart, pause, resume."""

    def __init__(self, binary: str, port: int) -> None:
        self._binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self.resume()
            self._process.terminate()
            self._process.wait(timeout=5)
            self._process = None

    def pause(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    """A Redis server of this test alone (from `redis-server` on PATH), on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_unavailable("redis-server", "PATH", FileNotFoundError("redis-server"))
    server = ThrowawayRedis(binary, _free_port())
    server.start()
    yield server
    server.stop()
