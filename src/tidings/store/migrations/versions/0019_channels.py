"""channels: private and announcement conversations, history for new members, moderators

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 17:05:00

(Written beside 0017 threads and 0018 profiles: it adds columns to `members` and
`conversations` and the `pins` table, nothing they touch.)

- `conversations.private`: a private channel (invite-only, not in channel browsing,
  invisible to non-members). Groups and direct conversations are always private:
  existing ones are set true; existing channels false (public, as they were).
- `conversations.announcement`: only owners and moderators post. Existing: false.
- `conversations.shared_history`: members added later read earlier history (true) or
  only from when they joined (false). Existing conversations: true (what they did).
- `members.first_seq`: the lowest seq the member may read (1, or the first after the
  conversation's last seq when they joined, if history is not shared). Existing: 1.
- `members.role` may now also be `moderator` (the column is a string already).
- `pins`: the pinned messages of each conversation (conversation_id, seq: the message),
  who pinned it and when; keyed on the conversation first (Citus-compatible).

Runs on SQLite (batch_alter_table rebuilds the tables) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("announcement", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("shared_history", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_seq", sa.BigInteger(), nullable=False, server_default="1")
        )
    op.create_table(
        "pins",
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pinned_by", sa.String(32), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "seq"),
    )
    conversations = sa.table("conversations", sa.column("kind"), sa.column("private"))
    op.execute(
        conversations.update().where(conversations.c.kind != "channel").values(private=sa.true())
    )


def downgrade() -> None:
    op.drop_table("pins")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("first_seq")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("shared_history")
        batch_op.drop_column("announcement")
        batch_op.drop_column("private")
