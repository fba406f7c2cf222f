"""files: uploads, their blobs (stored once per sha256), and message attachments

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 04:30:00

- `blobs`: one row per stored blob, keyed by its sha256 (content addressing: the same
  bytes are stored once); `blob_key` is its key in the blob store (blobs/).
- `files`: one row per upload, with its own (sanitized) name and uploader, the sniffed
  content type, its status (processing | ready | quarantined), image sizes and derived
  keys once the job that follows the upload has made them.
- `message_attachments`: the files a message carries, keyed on the conversation first
  (Citus-compatible), with an index on the file for access checks.

Runs on SQLite and PostgreSQL (new tables only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("uploader_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inline_safe", sa.Boolean(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("thumb_key", sa.String(length=255), nullable=True),
        sa.Column("preview_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_files_uploader", "files", ["uploader_id", "created_at"])
    op.create_index("ix_files_sha256", "files", ["sha256"])
    op.create_table(
        "message_attachments",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "seq", "position"),
    )
    op.create_index("ix_message_attachments_file", "message_attachments", ["file_id"])


def downgrade() -> None:
    op.drop_index("ix_message_attachments_file", table_name="message_attachments")
    op.drop_table("message_attachments")
    op.drop_index("ix_files_sha256", table_name="files")
    op.drop_index("ix_files_uploader", table_name="files")
    op.drop_table("files")
    op.drop_table("blobs")
