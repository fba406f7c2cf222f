"""the profile: custom status and preferences

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 17:00:00

`users.status_text` / `status_emoji` / `status_until`: the custom status others see
beside the name (NULL text: none; `status_until` NULL: until cleared), and the owner's
preferences: `language` (NULL: the device's), `time_zone` (an IANA name; NULL: the
device's), `theme` (system, light or dark). Existing accounts: no status, the
device's language and zone, the system's theme.

Runs on SQLite (batch_alter_table rebuilds the table) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("status_emoji", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("status_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column("theme", sa.String(8), nullable=False, server_default="system")
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in ("theme", "time_zone", "language", "status_until", "status_emoji"):
            batch_op.drop_column(name)
        batch_op.drop_column("status_text")
