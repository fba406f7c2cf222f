"""incoming webhooks and slash commands

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:00:00

- `incoming_webhooks`: a secret URL that posts into one conversation as its integration
  user (a bot account made for it); only the SHA-256 of the URL's secret is kept.
- `slash_commands`: `/name` and its target (an outgoing URL or a bot), its signing
  secret sealed under a server key (services/keyring.py).
- `command_invocations`: one use of a command, for its response URL (expiry, uses left).

Runs on SQLite and PostgreSQL (new tables only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incoming_webhooks",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("posts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_post_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("conversation_id", "id"),
        sa.UniqueConstraint("id"),
    )
    op.create_table(
        "slash_commands",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("usage", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "command_invocations",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("command_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responses_left", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "id"),
        sa.UniqueConstraint("id"),
    )
    op.create_index(
        "ix_command_invocations_expires", "command_invocations", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_command_invocations_expires", table_name="command_invocations")
    op.drop_table("command_invocations")
    op.drop_table("slash_commands")
    op.drop_table("incoming_webhooks")
