"""identity links remember whether their provider disabled the account

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:25:00

`identity_links.disabled_by_provider`: set when the provider (a sync, SCIM) disabled the
account, cleared when it enables it again. A provider enables only an account it
disabled itself: one an admin disabled here stays disabled whatever the directory says
(services/identity.py). Existing links: false.

Runs on SQLite (batch_alter_table rebuilds the table) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "disabled_by_provider", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.drop_column("disabled_by_provider")
