"""Migrations build the whole schema on an empty database, match the models, and go back down."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.engine import create_engine
from storage.migrate import (
    SEARCH_INDEXES,
    current_revision,
    downgrade,
    downgrade_to_base,
    head_revision,
    include_object,
    upgrade,
)
from storage.models import Base, UTCDateTime

T0 = datetime(2030, 1, 1, tzinfo=UTC)
APP_TABLES = {table.name for table in Base.metadata.sorted_tables}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'not-yet-there' / 'snippetvault.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


async def _inspect(url: str, look: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _schema_differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include_object}
    )
    return list(compare_metadata(context, Base.metadata))


def _index_names(connection: sa.Connection) -> set[str]:
    return {index["name"] for index in sa.inspect(connection).get_indexes("snippets")}


async def test_upgrade_builds_the_schema_the_models_describe(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing depends on the working directory
    assert await current_revision(empty_database_url) is None

    await upgrade(empty_database_url)

    assert await current_revision(empty_database_url) == head_revision()
    assert await _inspect(empty_database_url, _tables) >= APP_TABLES
    assert await _inspect(empty_database_url, _schema_differences) == []


async def test_upgrade_twice_changes_nothing(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()


async def test_downgrade_to_base_removes_everything_and_upgrade_rebuilds(
    empty_database_url: str,
) -> None:
    await upgrade(empty_database_url)

    await downgrade_to_base(empty_database_url)

    assert await current_revision(empty_database_url) is None
    assert not APP_TABLES & await _inspect(empty_database_url, _tables)
    await upgrade(empty_database_url)
    assert await _inspect(empty_database_url, _schema_differences) == []


@pytest.mark.postgres
async def test_the_search_indexes_come_with_0002_and_go_with_it(empty_postgres_url: str) -> None:
    await upgrade(empty_postgres_url)
    assert await _inspect(empty_postgres_url, _index_names) >= SEARCH_INDEXES

    await downgrade(empty_postgres_url, "0001")

    assert not SEARCH_INDEXES & await _inspect(empty_postgres_url, _index_names)


_TYPES = {"user_id": sa.Uuid(), "snippet_id": sa.Uuid(), "now": UTCDateTime()}


async def _execute(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    statement = sa.text(sql).bindparams(
        *(sa.bindparam(name, type_=kind) for name, kind in _TYPES.items() if name in params)
    )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(statement, params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_sessions_and_snippets_survive_every_migration_up_and_down(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    await upgrade(url, "0002")
    user_id = uuid.uuid4()
    await _execute(
        url,
        "INSERT INTO users (id, email, hashed_password, is_verified, created_at, snippet_seq) "
        "VALUES (:user_id, 'ada@example.com', '!', true, :now, 0)",
        user_id=user_id,
        now=T0,
    )
    await _execute(
        url,
        "INSERT INTO snippets (id, owner_id, ref, title, code, language, created_at, "
        "updated_at) VALUES (:snippet_id, :user_id, 1, 'Kept', 'x = 1', 'Python', :now, :now)",
        snippet_id=uuid.uuid4(),
        user_id=user_id,
        now=T0,
    )
    for jti, chat_id in (("one", 7_000_000_001), ("two", -100)):
        await _execute(
            url,
            "INSERT INTO sessions (jti, user_id, chat_id, token, issued_at, expires_at) "
            "VALUES (:jti, :user_id, :chat_id, 't', :now, :now)",
            jti=jti,
            user_id=user_id,
            chat_id=chat_id,
            now=T0,
        )

    await upgrade(url)
    rows = await _execute(
        url, "SELECT jti, client_kind, client_key, parent_jti FROM sessions ORDER BY jti"
    )
    assert rows == [("one", "chat", "7000000001", None), ("two", "chat", "-100", None)]
    assert await _execute(url, "SELECT title FROM snippets") == [("Kept",)]
    await _execute(
        url,
        "INSERT INTO sessions (jti, user_id, client_kind, client_key, token, issued_at, "
        "expires_at, parent_jti) VALUES ('api', :user_id, 'api', NULL, 't', :now, :now, 'one')",
        user_id=user_id,
        now=T0,
    )

    await downgrade(url, "0002")
    rows = await _execute(url, "SELECT jti, chat_id FROM sessions ORDER BY jti")
    assert rows == [("one", 7_000_000_001), ("two", -100)]  # the API session cannot go back
    assert await _execute(url, "SELECT title FROM snippets") == [("Kept",)]


async def test_0004_down_to_0003_drops_the_organise_tables_and_hidden_snippets(
    empty_database_url: str,
) -> None:
    await upgrade(empty_database_url)
    assert {"snippet_tags", "snippet_revisions", "share_links"} <= await _inspect(
        empty_database_url, _tables
    )

    await downgrade(empty_database_url, "0003")

    assert await current_revision(empty_database_url) == "0003"
    tables = await _inspect(empty_database_url, _tables)
    assert not {"snippet_tags", "snippet_revisions", "share_links"} & tables
    columns = await _inspect(
        empty_database_url,
        lambda c: {column["name"] for column in sa.inspect(c).get_columns("snippets")},
    )
    assert "deleted_at" not in columns
    await upgrade(empty_database_url)
    assert await _inspect(empty_database_url, _schema_differences) == []
