"""notifications for closed tabs: Web Push subscriptions, email digest settings

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 11:30:00

- `push_subscriptions`: one row per device subscription (the browser's endpoint and
  its keys), bound to the user and the session (token) it was made in; signing that
  session out deletes it. One endpoint once per user.
- `users.email_digests` (default true), `users.notify_previews` (default true): the
  user's own settings; `users.digest_sent_at`: until when missed messages were mailed.

Runs on SQLite (batch_alter_table rebuilds the table) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("p256dh", sa.String(128), nullable=False),
        sa.Column("auth", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "endpoint", name="uq_push_subscriptions_user_endpoint"),
    )
    op.create_index("ix_push_subscriptions_token", "push_subscriptions", ["token_id"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_digests", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("notify_previews", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("digest_sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("digest_sent_at")
        batch_op.drop_column("notify_previews")
        batch_op.drop_column("email_digests")
    op.drop_index("ix_push_subscriptions_token", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
