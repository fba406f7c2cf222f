"""timeline: saved messages, forwarded messages

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 11:20:00

- `saved_messages`: each user's saved messages (private to them): the message
  (conversation_id, seq), when it was saved, and the stream position of its
  `message_saved` event (the list's order, newest first, and its cursor). A per-user
  table keyed on the user first (like `tokens`); `ix_saved_messages_message` finds the
  savers of a recalled message.

- `messages.forwarded_cid`, `messages.forwarded_seq`: a forwarded copy names the
  message it was forwarded from (null: not forwarded). Existing messages: null.

Runs on SQLite (batch_alter_table adds the columns) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_messages",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "conversation_id", "seq"),
    )
    op.create_index("ix_saved_messages_user_position", "saved_messages", ["user_id", "position"])
    op.create_index("ix_saved_messages_message", "saved_messages", ["conversation_id", "seq"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forwarded_cid", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("forwarded_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("forwarded_seq")
        batch_op.drop_column("forwarded_cid")
    op.drop_index("ix_saved_messages_message", table_name="saved_messages")
    op.drop_index("ix_saved_messages_user_position", table_name="saved_messages")
    op.drop_table("saved_messages")
