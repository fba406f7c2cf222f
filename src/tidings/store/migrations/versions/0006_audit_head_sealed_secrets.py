"""the audit log's signed head; TOTP secrets sealed; recovery codes hashed with argon2id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:00:00

- `audit_head`: one row, the newest audit entry's seq and hash signed with a server key
  (services/keyring.py), moved in the transaction of every entry. A database with
  entries but no head yet gets one when the server starts (services/secrets.py:
  `prepare`, itself an audit entry).
- `second_factors.key_id`: the key a TOTP secret is sealed under; `secret` widened to
  hold the sealed form. Existing rows keep NULL (stored as is) until the server starts
  and seals them (the key is a setting: a migration does not have it).
- `recovery_codes.code_hash` widened for encoded argon2id hashes; existing SHA-256
  hashes stay valid, each for its one use.

Runs on SQLite (batch_alter_table rebuilds the tables) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("second_factors", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=False
        )
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.alter_column(
            "code_hash",
            existing_type=sa.String(length=64),
            type_=sa.String(length=160),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.alter_column(
            "code_hash",
            existing_type=sa.String(length=160),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table("second_factors", schema=None) as batch_op:
        batch_op.drop_column("key_id")
        batch_op.alter_column(
            "secret", existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=False
        )
    op.drop_table("audit_head")
