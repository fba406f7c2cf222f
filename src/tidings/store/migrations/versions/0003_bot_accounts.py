"""bot accounts: users.bot

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00

A bot is a user with `bot` set: it has no password (login refuses it) and authenticates
with a bot token, a row of `tokens` that does not expire (services/bots.py). Runs on SQLite
and PostgreSQL: the column is added with a server default through batch_alter_table, so
existing accounts become ordinary users.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bot", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("bot")
