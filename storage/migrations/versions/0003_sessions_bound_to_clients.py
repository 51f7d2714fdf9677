"""Sessions are bound to a client (a chat, or the HTTP API), and may hang off a parent session.

`sessions.chat_id` becomes `client_kind` ("chat" or "api") with `client_key` (the chat id, as
text; NULL for an API session), and `parent_jti` names the session one was opened from (the
Mini App's token ends with its chat's session). Existing sessions are chat sessions. Going back
down drops API sessions: the old schema cannot hold them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("client_kind", sa.String(16), server_default="chat", nullable=False)
        )
        batch.add_column(sa.Column("client_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("parent_jti", sa.String(64), nullable=True))
    op.execute("UPDATE sessions SET client_key = CAST(chat_id AS VARCHAR(64))")
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("client_kind", server_default=None)
        batch.drop_index("ix_sessions_chat_id")
        batch.drop_column("chat_id")
        batch.create_index("ix_sessions_client", ["client_kind", "client_key"])
        batch.create_index("ix_sessions_parent_jti", ["parent_jti"])


def downgrade() -> None:
    op.execute("DELETE FROM sessions WHERE client_kind <> 'chat' OR client_key IS NULL")
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE sessions SET chat_id = CAST(client_key AS BIGINT)")
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("chat_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_index("ix_sessions_parent_jti")
        batch.drop_index("ix_sessions_client")
        batch.drop_column("parent_jti")
        batch.drop_column("client_key")
        batch.drop_column("client_kind")
        batch.create_index("ix_sessions_chat_id", ["chat_id"])
