"""Migrations build the whole schema on an empty database, match the models, and go back down."""

from __future__ import annotations

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
from storage.models import Base

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


async def test_0004_down_to_0002_drops_the_organise_tables_and_hidden_snippets(
    empty_database_url: str,
) -> None:
    await upgrade(empty_database_url)
    assert {"snippet_tags", "snippet_revisions", "share_links"} <= await _inspect(
        empty_database_url, _tables
    )

    await downgrade(empty_database_url, "0002")

    assert await current_revision(empty_database_url) == "0002"
    tables = await _inspect(empty_database_url, _tables)
    assert not {"snippet_tags", "snippet_revisions", "share_links"} & tables
    columns = await _inspect(
        empty_database_url,
        lambda c: {column["name"] for column in sa.inspect(c).get_columns("snippets")},
    )
    assert "deleted_at" not in columns
    await upgrade(empty_database_url)
    assert await _inspect(empty_database_url, _schema_differences) == []
