"""A password generation per user, remembered by each session.

Every password change bumps `users.password_generation`; a session whose
`password_generation` is older no longer works. This closes the race of a login that checked
the old password while a reset changed it: its session, inserted after the reset, is refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "sessions")
# Plain ALTER TABLE on SQLite too, never a batch copy: copying `users` drops the old table,
# and its foreign keys (ON DELETE CASCADE) would take every snippet and session with it.


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column(
                "password_generation", sa.Integer(), server_default=sa.text("0"), nullable=False
            ),
        )


def downgrade() -> None:
    for table in TABLES:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN password_generation")  # SQLite 3.35+
        else:
            op.drop_column(table, "password_generation")
