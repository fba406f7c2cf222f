"""The group commit's statements on the embedded database, run on sqlite3 directly.

A batch of sends costs a fixed handful of statements (see SqlTx), but through
SQLAlchemy each of them also costs compiling its parameters, one Python dict per row,
a bind processor per value and a result proxy: measured on this path, about 1.5 ms of
the event loop per batch of 17 sends against 0.5 ms for SQLite's own work. Here the
same statements, with the same values in the same formats, go to the driver at once.

Only the SQL adapter uses this, inside a write transaction on the same connection
(begun and committed by dialect.SqliteWriter); it is chosen only when statements run on
the loop's thread (`_InlineSqlite`), so nothing here blocks longer than SQLAlchemy's
path would have. PostgreSQL keeps SQLAlchemy's path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import orjson

from tidings.core.models import Message, StoredEvent

Timestamp = Callable[[datetime], str]

_TARGETS = (
    "SELECT c.id, c.last_seq, m.user_id FROM conversations AS c "
    "LEFT OUTER JOIN members AS m ON m.conversation_id = c.id "
    "AND m.user_id IN ({users}) AND m.left_pos IS NULL "
    "WHERE c.id IN ({convs})"
)
# A join with the keys as a table: SQLite searches the unique index once per key
# (two IN lists would probe every sender with every client_msg_id; a row-value IN over
# VALUES scans the whole index).
_CLIENT_IDS = (
    "SELECT m.sender_id, m.client_msg_id FROM ({keys}) AS k "
    "JOIN messages AS m ON m.sender_id = k.column1 AND m.client_msg_id = k.column2"
)
_SET_LAST_SEQ = "UPDATE conversations SET last_seq = ?, last_activity_at = ? WHERE id = ?"
_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, seq, id, client_msg_id, sender_id, body, "
    "reply_to_seq, mentions, created_at, edited_at, deleted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)"
)
_INSERT_MENTION = "INSERT INTO mentions (conversation_id, user_id, seq) VALUES (?, ?, ?)"
_ADVANCE_READ = (
    "UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ? AND read_seq < ?"
)
_RESERVE = "UPDATE counters SET value = value + ? WHERE name = 'events' RETURNING value"
_INSERT_EVENT = (
    "INSERT INTO events (position, conversation_id, user_id, kind, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


class SqliteHot:
    """The send path's reads and writes on one sqlite3 connection. `timestamp` is
    SQLAlchemy's own bind processor for the schema's timestamps, so that rows written
    here read back exactly like rows written through SQLAlchemy."""

    __slots__ = ("db", "timestamp")

    def __init__(self, db: sqlite3.Connection, timestamp: Timestamp) -> None:
        self.db = db
        self.timestamp = timestamp

    def existing_client_ids(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (sender_id, client_msg_id) are already stored."""
        unique = list(set(keys))
        sql = _CLIENT_IDS.format(keys="VALUES " + ", ".join(["(?, ?)"] * len(unique)))
        params = [part for key in unique for part in key]
        return {(sender, cmid) for sender, cmid in self.db.execute(sql, params)}

    def send_targets(
        self, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, int], set[tuple[str, str]]]:
        users = list({uid for _, uid in keys})
        convs = list({cid for cid, _ in keys})
        sql = _TARGETS.format(users=_marks(len(users)), convs=_marks(len(convs)))
        last_seqs: dict[str, int] = {}
        active: set[tuple[str, str]] = set()
        for cid, last_seq, uid in self.db.execute(sql, users + convs):
            last_seqs[cid] = int(last_seq)
            if uid is not None:
                active.add((cid, uid))
        return last_seqs, active

    def append_messages(
        self, messages: Sequence[Message], last_seqs: Mapping[str, int], now: datetime
    ) -> None:
        db, ts = self.db, self.timestamp
        stamp = ts(now)
        db.executemany(_SET_LAST_SEQ, [(seq, stamp, cid) for cid, seq in last_seqs.items()])
        dumps = orjson.dumps
        db.executemany(
            _INSERT_MESSAGE,
            [
                (
                    m.conversation_id,
                    m.seq,
                    m.id,
                    m.client_msg_id,
                    m.sender_id,
                    m.body,
                    m.reply_to_seq,
                    dumps(list(m.mentions)).decode(),
                    stamp if m.created_at is now else ts(m.created_at),
                )
                for m in messages
            ],
        )
        mentioned = [(m.conversation_id, u, m.seq) for m in messages for u in m.mentions]
        if mentioned:
            db.executemany(_INSERT_MENTION, mentioned)
        read: dict[tuple[str, str], int] = {}  # a sender has read its own messages
        for m in messages:
            read[(m.conversation_id, m.sender_id)] = m.seq
        db.executemany(_ADVANCE_READ, [(seq, cid, uid, seq) for (cid, uid), seq in read.items()])

    def reserve_positions(self, count: int) -> int | None:
        """The last of `count` newly reserved positions; None if there is no counter."""
        rows = self.db.execute(_RESERVE, (count,)).fetchall()
        return int(rows[0][0]) if rows else None

    def insert_events(self, events: Sequence[StoredEvent], now: datetime) -> None:
        stamp = self.timestamp(now)
        dumps = orjson.dumps
        self.db.executemany(
            _INSERT_EVENT,
            [
                (
                    e.position,
                    e.conversation_id,
                    e.user_id,
                    str(e.payload["kind"]),
                    dumps(e.payload).decode(),
                    stamp,
                )
                for e in events
            ],
        )
