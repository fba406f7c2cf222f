"""timeline: scheduled messages

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 14:45:00

- `scheduled_messages`: messages a user asked to be sent later (private to them until
  sent): the conversation, the body and what a send may carry (reply_to_seq,
  thread_root_seq, also_to_conversation), `send_at`, `state` (pending, sending, sent,
  failed, cancelled), `failure` (why a delivery failed), `sent_seq` (the message's seq
  once sent), `version` (grows with each edit: the delivery job of an older version does
  nothing), created_at, updated_at. A per-user table keyed on the sender first (like
  `saved_messages`); `ix_scheduled_messages_sender_state` lists and counts a user's
  pending ones.
- `scheduled_attachments`: the files a scheduled message will carry (the sender's own
  uploads), in their order; the file collection keeps a file named by one that is not
  sent yet (`ix_scheduled_attachments_file`).

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_messages",
        sa.Column("sender_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reply_to_seq", sa.BigInteger(), nullable=True),
        sa.Column("thread_root_seq", sa.BigInteger(), nullable=True),
        sa.Column("also_to_conversation", sa.Boolean(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("sent_seq", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender_id", "id"),
    )
    op.create_index(
        "ix_scheduled_messages_sender_state",
        "scheduled_messages",
        ["sender_id", "state", "send_at"],
    )
    op.create_table(
        "scheduled_attachments",
        sa.Column("sender_id", sa.String(32), nullable=False),
        sa.Column("scheduled_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("sender_id", "scheduled_id", "position"),
    )
    op.create_index("ix_scheduled_attachments_file", "scheduled_attachments", ["file_id"])


def downgrade() -> None:
    op.drop_index("ix_scheduled_attachments_file", table_name="scheduled_attachments")
    op.drop_table("scheduled_attachments")
    op.drop_index("ix_scheduled_messages_sender_state", table_name="scheduled_messages")
    op.drop_table("scheduled_messages")
