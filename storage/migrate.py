"""Applies the Alembic migrations that ship inside this package; no alembic.ini, any cwd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.engine import create_engine
from storage.errors import unavailable_as_domain_error

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_Command = Callable[[Config], None]

MIGRATION_COMMAND_TIMEOUT_SECONDS = 3600.0
"""Building an index over a big table takes a while; the application's limit is far shorter."""

SEARCH_INDEXES = frozenset({"ix_snippets_title_trgm", "ix_snippets_code_trgm"})
"""Postgres-only indexes that migration 0002 creates and the models leave out."""


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate filter: what the models describe (so not the search indexes)."""
    return not (type_ == "index" and name in SEARCH_INDEXES)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Brings the schema up to `revision`; raises `StorageUnavailable` if the database is down."""
    await _run(database_url, lambda config: command.upgrade(config, revision))


async def downgrade(database_url: str, revision: str) -> None:
    await _run(database_url, lambda config: command.downgrade(config, revision))


async def downgrade_to_base(database_url: str) -> None:
    """Drops everything the migrations created."""
    await downgrade(database_url, "base")


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None for an empty (unmigrated) database."""
    engine = create_engine(database_url)
    try:
        with unavailable_as_domain_error():
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
    finally:
        await engine.dispose()


async def _run(database_url: str, alembic_command: _Command) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        alembic_command(config)

    engine = create_engine(database_url, command_timeout=MIGRATION_COMMAND_TIMEOUT_SECONDS)
    try:
        with unavailable_as_domain_error():
            async with engine.begin() as connection:
                await connection.run_sync(run)
    finally:
        await engine.dispose()
