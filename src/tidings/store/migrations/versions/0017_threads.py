"""threads: replies in the thread of a root message (issue 17)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 17:00:00

- `messages.thread_root_seq`: a reply names its root (a message of the same
  conversation that is no reply itself); NULL for every other message.
  `messages.also_to_conversation`: a reply shown in the main timeline too.
  A partial index of the replies by (conversation, root, seq): one thread's replies in
  order, its unread replies counted, and no index entry for any other message (the
  send path of ordinary messages writes nothing more than before).
- `threads`: one row per root that has (had) replies: the summary every member sees
  (reply_count, last_reply_seq, last_reply_at, participants: a JSON list of user ids,
  the most recent first, capped), written in the send's transaction (one row per root
  per group commit) and recomputed when a reply is recalled. Indexed by
  (conversation, last_reply_at, root_seq) for the thread list, newest activity first.
- `thread_members`: one user's explicit state in a thread: `following` (NULL: the
  default, i.e. the root's author and every replier follow), `read_seq` (the last reply
  they have read). Rows exist only once a user followed, unfollowed or read a thread.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("thread_root_seq", sa.BigInteger(), nullable=True))
    op.add_column(
        "messages",
        sa.Column("also_to_conversation", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_messages_thread",
        "messages",
        ["conversation_id", "thread_root_seq", "seq"],
        postgresql_where=sa.text("thread_root_seq IS NOT NULL"),
        sqlite_where=sa.text("thread_root_seq IS NOT NULL"),
    )
    op.create_table(
        "threads",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("root_seq", sa.BigInteger(), nullable=False),
        sa.Column("reply_count", sa.BigInteger(), nullable=False),
        sa.Column("last_reply_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("participants", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "root_seq"),
    )
    op.create_index(
        "ix_threads_activity", "threads", ["conversation_id", "last_reply_at", "root_seq"]
    )
    op.create_table(
        "thread_members",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("root_seq", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("following", sa.Boolean(), nullable=True),
        sa.Column("read_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("conversation_id", "root_seq", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("thread_members")
    op.drop_index("ix_threads_activity", table_name="threads")
    op.drop_table("threads")
    op.drop_index("ix_messages_thread", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("also_to_conversation")
        batch.drop_column("thread_root_seq")
