"""Trigram indexes so that substring search on title and code does not scan (Postgres only).

Search filters on `lower(title) LIKE lower(:pattern)`; a GIN index over `lower(...)` with
`gin_trgm_ops` serves such `LIKE '%…%'` patterns. SQLite has no equivalent and scans.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Named in storage.migrate.SEARCH_INDEXES too (autogenerate leaves them alone).
TRIGRAM_INDEXES = {"ix_snippets_title_trgm": "title", "ix_snippets_code_trgm": "code"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PG 13+): the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON snippets USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    # The extension stays: it may have been there before us, and other schemas may use it.
