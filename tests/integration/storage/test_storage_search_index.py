"""On Postgres, the search query the repository runs can use the trigram indexes."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from storage_builders import new_user

from storage.database import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def postgres_database(fresh_postgres_url: str) -> Any:
    database = Database(fresh_postgres_url)
    yield database
    await database.dispose()


async def test_search_uses_the_trigram_indexes(postgres_database: Database) -> None:
    owner = new_user()
    async with postgres_database.uow_factory()() as uow:
        await uow.users.add(owner)
        await uow.commit()
    async with postgres_database.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO snippets (id, owner_id, ref, title, code, language, created_at,"
                " updated_at) SELECT gen_random_uuid(), :owner, n, 'snippet ' || n,"
                " md5(n::text) || ' filler ' || md5((n * 7)::text), 'text', now(), now()"
                " FROM generate_series(1, 3000) AS n"
            ),
            {"owner": owner.id},
        )
    async with postgres_database.engine.connect() as connection:
        # VACUUM merges GIN's pending list, as autovacuum would on a live table.
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(sa.text("VACUUM ANALYZE snippets"))

    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "LIKE" in statement and "LIMIT" in statement:
            captured.append((statement, parameters))

    sa.event.listen(postgres_database.engine.sync_engine, "before_cursor_execute", capture)
    async with postgres_database.uow_factory()() as uow:
        page = await uow.snippets.search(owner.id, "zqxjv", 0, 10)
    sa.event.remove(postgres_database.engine.sync_engine, "before_cursor_execute", capture)
    assert page.total == 0
    [(statement, parameters)] = captured

    async with postgres_database.engine.connect() as connection:
        plan = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        lines = [line for (line,) in plan]

    text = "\n".join(lines)
    assert "ix_snippets_title_trgm" in text, text
    assert "ix_snippets_code_trgm" in text, text
