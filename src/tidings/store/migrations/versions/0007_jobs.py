"""durable jobs: the outbox table every job is written to, and the event consumers' cursors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:00:00

- `jobs`: one row per job, written in the transaction of what it follows from (the
  transactional outbox); the relay moves due rows to the in-process runners or to
  RabbitMQ, and the row keeps the job's state, attempts and last error (dead letters
  included) for `tidings jobs` and the admin view.
- `job_cursors`: per event consumer (webhooks, plugins), the last event position it has
  turned into jobs; moved in the transaction that writes those jobs.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_state_due", "jobs", ["state", "run_after"])
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"])
    op.create_table(
        "job_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("job_cursors")
    op.drop_index("ix_jobs_finished", table_name="jobs")
    op.drop_index("ix_jobs_state_due", table_name="jobs")
    op.drop_table("jobs")
