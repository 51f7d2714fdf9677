"""Building a `Database` from settings, for the embedded default and for Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.entities import Client
from core.settings import Settings
from storage.bare import BareStatements
from storage.database import Database
from storage.migrate import upgrade


async def test_the_embedded_default_creates_its_data_dir_and_works(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "var" / "data", database_url=None)  # type: ignore[call-arg]
    await upgrade(settings.effective_database_url)
    database = Database.from_settings(settings)
    try:
        await database.ping()
        assert not database.is_postgres
        assert (tmp_path / "var" / "data" / "snippetvault.db").is_file()
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_a_postgres_url_gives_a_postgres_database(postgres_url: str) -> None:
    settings = Settings(_env_file=None, database_url=postgres_url, jwt_secret="x" * 40)  # type: ignore[call-arg]
    database = Database.from_settings(settings)
    try:
        await database.ping()
        assert database.is_postgres
    finally:
        await database.dispose()


async def test_a_plain_postgresql_url_uses_asyncpg() -> None:
    database = Database("postgresql://user@127.0.0.1:1/db")
    try:
        assert database.engine.dialect.driver == "asyncpg"
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_only_the_quick_statements_commit_without_waiting_for_the_disk(
    postgres_url: str,
) -> None:
    database = Database(postgres_url)
    try:
        async with database.uow_factory()() as uow:
            connection = uow._require_connection()  # type: ignore[attr-defined]
            result = await connection.exec_driver_sql("SHOW synchronous_commit")
            assert result.scalar_one() == "on"
        quick = database.quick_statements
        assert isinstance(quick, BareStatements)
        assert await quick.latest_session(Client.chat(1)) is None  # opens the pool
        async with quick._connection() as bare:
            assert await bare.fetchval("SHOW synchronous_commit") == "off"
    finally:
        await database.dispose()
