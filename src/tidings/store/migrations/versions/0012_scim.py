"""SCIM 2.0 provisioning: its bearer tokens, and the SCIM side of users and groups

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:00:00

- `scim_tokens`: the bearer tokens an admin issues for an identity provider (only
  their SHA-256 is kept; revoked ones stay, for the audit log's sake).
- `scim_users`: a SCIM User: its `id` (the subject of the account's `scim` identity
  link, identity_links), its account, the `userName` the provider gave (kept as given,
  unique case-insensitively by `user_name_key`), its `externalId`, and the SCIM
  attributes Tidings keeps beside the account (name, emails, displayName as given) as
  JSON. The account itself (display name, email, disabled) stays in `users`. A SCIM
  DELETE removes this row and the link (and disables the account, keeping its
  messages).
- `scim_groups`: a department provisioned (or adopted) as a SCIM Group.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="uq_scim_tokens_hash"),
    )
    op.create_table(
        "scim_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=False),
        sa.Column("user_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", name="uq_scim_users_user_id"),
        sa.UniqueConstraint("user_name_key", name="uq_scim_users_user_name"),
    )
    op.create_index("ix_scim_users_external_id", "scim_users", ["external_id"])
    op.create_table(
        "scim_groups",
        sa.Column("department_id", sa.String(length=32), nullable=False),
        sa.Column("display_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("department_id"),
        sa.UniqueConstraint("display_name_key", name="uq_scim_groups_display_name"),
    )
    op.create_index("ix_scim_groups_external_id", "scim_groups", ["external_id"])


def downgrade() -> None:
    op.drop_index("ix_scim_groups_external_id", table_name="scim_groups")
    op.drop_table("scim_groups")
    op.drop_index("ix_scim_users_external_id", table_name="scim_users")
    op.drop_table("scim_users")
    op.drop_table("scim_tokens")
