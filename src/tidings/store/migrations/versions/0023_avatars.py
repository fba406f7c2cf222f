"""avatars: a user's picture

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 12:00:00

`users.avatar_id` (opaque, new at every change: names the avatar in its URL; NULL: no
avatar, the initials), `avatar_sha256` (of the large rendition: the address of its
blobs `a/<sha256>/<px>` and its ETag), `avatar_type` (image/jpeg, or image/webp where
it has transparency), `avatar_updated_at`. Existing accounts: no avatar.

Runs on SQLite (batch_alter_table rebuilds the table) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("avatar_id", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("avatar_sha256", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("avatar_type", sa.String(16), nullable=True))
        batch_op.add_column(
            sa.Column("avatar_updated_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in ("avatar_updated_at", "avatar_type", "avatar_sha256", "avatar_id"):
            batch_op.drop_column(name)
