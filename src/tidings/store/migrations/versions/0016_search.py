"""search: the message search index (issue 16)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 13:30:00

- `search_docs`: one row per indexed message, keyed on the conversation first
  (Citus-compatible; the index partitions with the messages): its id, sender, time
  (`created_at_us`, microseconds since the epoch: one integer on both engines, compared
  and ordered cheaply), `tokens` (the space-separated index tokens of the body and of the
  attachments' file names, tidings.search.text.index_tokens), `has_file`, `has_link`,
  `mentions` (the mentioned user ids, space-separated, padded with a space on both sides
  so that `mentions:me` is one LIKE), `thread_root_seq` (issue 17: NULL until threads).
  Written only by the `search.index` jobs and `tidings search reindex`.
- SQLite: `doc_id` (INTEGER PRIMARY KEY, the rowid, stable through VACUUM) and the
  contentless FTS5 table `search_fts` over the tokens, each token written hex-encoded
  (search/fts5.py), so that FTS5's tokenizer splits on the spaces only and a token
  (`10.0.3.7`, `inc-4521`, `数据库`) matches exactly, never in parts.
- PostgreSQL: `tsv`, a generated tsvector made from the array of tokens
  (array_to_tsvector: each token one lexeme, exactly; the 'simple' parser would split
  on punctuation), with a GIN index; partial indexes of the documents with a file and
  with a link (filters without words).
- Both: an index on (conversation_id, created_at_us) for newest-first scans of the
  caller's conversations (filters without words); the cursor of the event consumer
  "search" (job_cursors) at the stream's head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("has_file", sa.Boolean(), nullable=False),
        sa.Column("has_link", sa.Boolean(), nullable=False),
        sa.Column("mentions", sa.Text(), nullable=False),
        sa.Column("thread_root_seq", sa.BigInteger(), nullable=True),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_table(
            "search_docs",
            *_columns(),
            sa.PrimaryKeyConstraint("conversation_id", "seq"),
        )
        op.execute(
            "ALTER TABLE search_docs ADD COLUMN tsv tsvector GENERATED ALWAYS AS"
            " (array_to_tsvector(string_to_array(tokens, ' '))) STORED"
        )
        op.execute("CREATE INDEX ix_search_docs_tsv ON search_docs USING gin (tsv)")
        # has:file / has:link without words: the caller's few such documents, not a
        # fetch of all their conversations' (1M documents: 229 -> 12 ms)
        for flag in ("file", "link"):
            op.execute(
                f"CREATE INDEX ix_search_docs_{flag} ON search_docs"
                f" (conversation_id, created_at_us) WHERE has_{flag}"
            )
    else:
        op.create_table(
            "search_docs",
            sa.Column("doc_id", sa.Integer(), primary_key=True, autoincrement=True),
            *_columns(),
            sa.UniqueConstraint("conversation_id", "seq", name="uq_search_docs_key"),
        )
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "tokens, content='', columnsize=1, tokenize='ascii')"
        )
    # seq too: a conversation's documents newest first in the cursor's order (the
    # PostgreSQL plan of very common tokens merges one such scan per conversation)
    op.create_index(
        "ix_search_docs_time", "search_docs", ["conversation_id", "created_at_us", "seq"]
    )
    # The event consumer "search" starts at the stream's head as of this upgrade (a
    # consumer first seen by the worker would start at the head of then, and miss what
    # was sent between): messages sent from now on are indexed by jobs; those sent
    # before are indexed by `tidings search reindex` (docs/search.md).
    op.execute(
        "INSERT INTO job_cursors (name, position) SELECT 'search',"
        " COALESCE((SELECT value FROM counters WHERE name = 'events'), 0)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM job_cursors WHERE name = 'search'")
    op.drop_index("ix_search_docs_time", table_name="search_docs")
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_docs")
