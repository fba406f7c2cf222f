"""The send path's statements, each written once for every engine.

`?` placeholders; run by the engine's BatchRunner straight on the driver (see
engines/base.py), by messages.py, conversations.py and events.py. A batch of sends
costs this fixed handful of statements, not a few per send.
"""

# A join with the keys as a table: SQLite searches the unique index once per key (two
# IN lists would probe every sender with every client_msg_id; a row-value IN over VALUES
# scans the whole index). PostgreSQL names a VALUES list's columns the same way.
CLIENT_IDS = (
    "SELECT m.sender_id, m.client_msg_id FROM (VALUES {keys}) AS k "
    "JOIN messages AS m ON m.sender_id = k.column1 AND m.client_msg_id = k.column2"
)
TARGETS = (
    "SELECT c.id, c.last_seq, m.user_id FROM conversations AS c "
    "LEFT OUTER JOIN members AS m ON m.conversation_id = c.id "
    "AND m.user_id IN ({users}) AND m.left_pos IS NULL "
    "WHERE c.id IN ({convs})"
)
SET_LAST_SEQ = "UPDATE conversations SET last_seq = ?, last_activity_at = ? WHERE id = ?"
INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, seq, id, client_msg_id, sender_id, body, "
    "reply_to_seq, mentions, created_at, edited_at, deleted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, FALSE)"
)
INSERT_MENTION = "INSERT INTO mentions (conversation_id, user_id, seq) VALUES (?, ?, ?)"
ADVANCE_READ = (
    "UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ? AND read_seq < ?"
)
RESERVE = "UPDATE counters SET value = value + ? WHERE name = 'events' RETURNING value"
INSERT_EVENT = (
    "INSERT INTO events (position, conversation_id, user_id, kind, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
