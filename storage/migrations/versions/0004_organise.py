"""Tags, kept versions, share links, and deletes that can be undone for a while.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snippets") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "snippet_tags",
        sa.Column("snippet_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snippet_id"],
            ["snippets.id"],
            name="fk_snippet_tags_snippet_id_snippets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_snippet_tags_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("snippet_id", "tag", name="pk_snippet_tags"),
    )
    op.create_index("ix_snippet_tags_owner_id_tag", "snippet_tags", ["owner_id", "tag"])

    op.create_table(
        "snippet_revisions",
        sa.Column("snippet_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("language", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["snippet_id"],
            ["snippets.id"],
            name="fk_snippet_revisions_snippet_id_snippets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snippet_id", "number", name="pk_snippet_revisions"),
    )

    op.create_table(
        "share_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("snippet_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("single_use", sa.Boolean(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["snippet_id"],
            ["snippets.id"],
            name="fk_share_links_snippet_id_snippets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_share_links_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_share_links"),
        sa.UniqueConstraint("token_hash", name="uq_share_links_token_hash"),
    )
    op.create_index("ix_share_links_snippet_id", "share_links", ["snippet_id"])
    op.create_index("ix_share_links_owner_id", "share_links", ["owner_id"])


def downgrade() -> None:
    op.drop_table("share_links")
    op.drop_table("snippet_revisions")
    op.drop_table("snippet_tags")
    # What was deleted but not yet purged goes for good: the older schema cannot hide it.
    op.execute("DELETE FROM snippets WHERE deleted_at IS NOT NULL")
    with op.batch_alter_table("snippets") as batch:
        batch.drop_column("deleted_at")
