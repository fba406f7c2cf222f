"""conversations can be archived

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 23:10:00

`conversations.archived_at`: set when an owner or an admin archives the conversation
(read-only, hidden from member lists by default), cleared when it is unarchived.
Existing conversations: NULL (not archived).

Runs on SQLite (batch_alter_table rebuilds the table) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
