"""notification preferences: per-member level and mute, per-user do not disturb

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 11:10:00

- `members.notify_level`: all, mentions or none; NULL: the conversation kind's default
  (all in direct and group conversations, mentions in channels: core/models.py
  default_level). Existing members: NULL.
- `members.muted` / `members.muted_until`: a muted conversation notifies nothing;
  `muted_until` NULL with `muted`: until unmuted. Existing: not muted.
- `users.dnd_until`: do not disturb until then (NULL: off by time);
  `users.dnd_start` / `users.dnd_end`: a daily schedule as local "HH:MM" in the user's
  `time_zone` (both NULL: none). Existing: off.

Runs on SQLite (batch_alter_table rebuilds the tables) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_level", sa.String(8), nullable=True))
        batch_op.add_column(
            sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("muted_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dnd_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dnd_start", sa.String(5), nullable=True))
        batch_op.add_column(sa.Column("dnd_end", sa.String(5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in ("dnd_end", "dnd_start", "dnd_until"):
            batch_op.drop_column(name)
    with op.batch_alter_table("members", schema=None) as batch_op:
        for name in ("muted_until", "muted", "notify_level"):
            batch_op.drop_column(name)
