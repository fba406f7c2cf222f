"""members.removed_by: who removed a member

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:50:00

A member removed by someone else (not one who left) keeps who did it in `removed_by`:
only a conversation owner or an org admin adds them back (core/rules.py:check_can_add).
Runs on SQLite and PostgreSQL through batch_alter_table; existing rows get NULL (a past
removal and a leave look alike: neither restricts a re-add).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("removed_by")
