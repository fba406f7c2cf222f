"""identity base: users.email, users.origin, identity_links

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 18:45:00

What LDAP, OpenID Connect and SCIM share (services/identity.py):
- `users.email` (nullable) and `users.origin` ('local' | 'ldap' | 'oidc' | 'scim'; every
  existing account is 'local').
- `identity_links`: (provider, subject) -> user: which account a provider's identity is.
  A provider is "ldap", "oidc:<name>" or "scim"; a subject its stable id for the person.

Runs on SQLite (batch_alter_table rebuilds the table) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(
            sa.Column("origin", sa.String(length=16), nullable=False, server_default="local")
        )
    op.create_table(
        "identity_links",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("provider", "subject"),
    )
    op.create_index("ix_identity_links_user", "identity_links", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_identity_links_user", table_name="identity_links")
    op.drop_table("identity_links")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("origin")
        batch_op.drop_column("email")
