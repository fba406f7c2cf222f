"""OpenID Connect sign-ins in progress

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:00:00

- `oidc_logins`: a sign-in started at the provider (kind `pending`, keyed by the hash of
  its `state`) or finished and waiting for the web client to take its session (kind
  `handoff`, keyed by the hash of the one-time code), each bound to the browser that
  started it (the hash of a cookie) and short-lived; a row is deleted when used, so a
  replayed `state` or code finds nothing (services/oidc.py).

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_logins",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_oidc_logins_expires_at", "oidc_logins", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_logins_expires_at", table_name="oidc_logins")
    op.drop_table("oidc_logins")
