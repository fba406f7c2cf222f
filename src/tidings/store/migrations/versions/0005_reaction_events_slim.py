"""events: a reaction's event keeps the change, not the whole message

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:45:00

Reaction events used to store the message they were about, with every reaction on it:
the k-th reaction on a message stored k of them (1,000 reactions on one message stored
about 20 MB of events). Since this release a reaction event is `seq`, `emoji`,
`user_id`, `added` and `count` (how many have that emoji now). This rewrites the rows
written before to that shape, `count` read from the message each one carried, so that a
replay or `/sync` gives clients one shape. Rows are read in pages by position; both
SQLite and PostgreSQL keep `payload` as JSON text. SQLite reuses the freed pages (a
`VACUUM` gives them back to the file system); PostgreSQL's autovacuum does the same.
Downgrade leaves the rows as they are: the messages they carried are not kept.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PAGE = 500
events = sa.table(
    "events",
    sa.column("position", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("payload", sa.Text),
)


def slim(payload: dict[str, object]) -> dict[str, object] | None:
    """The new shape of an old reaction payload (None: it has it already)."""
    message = payload.pop("message", None)
    if "count" in payload or not isinstance(message, dict):
        return None
    reactions = message.get("reactions")
    users = reactions.get(payload.get("emoji")) if isinstance(reactions, dict) else None
    payload["count"] = len(users) if isinstance(users, list) else 0
    return payload


def upgrade() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(
            sa.select(events.c.position, events.c.payload)
            .where(events.c.kind == "reaction", events.c.position > after)
            .order_by(events.c.position)
            .limit(PAGE)
        ).all()
        if not rows:
            return
        for position, text in rows:
            new = slim(orjson.loads(text))
            if new is not None:
                bind.execute(
                    sa.update(events)
                    .where(events.c.position == position)
                    .values(payload=orjson.dumps(new).decode())
                )
        after = rows[-1][0]


def downgrade() -> None:
    pass
