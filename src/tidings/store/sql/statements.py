"""The statements run straight on the driver (the send path, a new connection's reads),
each written once for every engine.

`?` placeholders; run by the engine's BatchRunner straight on the driver (see
engines/base.py), by messages.py, conversations.py, events.py and security.py. A batch of sends
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
    "SELECT c.id, c.last_seq, m.user_id, c.archived_at, c.announcement, m.role, m.first_seq "
    "FROM conversations AS c "
    "LEFT OUTER JOIN members AS m ON m.conversation_id = c.id "
    "AND m.user_id IN ({users}) AND m.left_pos IS NULL "
    "WHERE c.id IN ({convs})"
)
SET_LAST_SEQ = "UPDATE conversations SET last_seq = ?, last_activity_at = ? WHERE id = ?"
INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, seq, id, client_msg_id, sender_id, body, "
    "reply_to_seq, mentions, created_at, edited_at, deleted, thread_root_seq, "
    "also_to_conversation, forwarded_cid, forwarded_seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, FALSE, ?, ?, ?, ?)"
)
INSERT_MENTION = "INSERT INTO mentions (conversation_id, user_id, seq) VALUES (?, ?, ?)"
INSERT_ATTACHMENT = (
    "INSERT INTO message_attachments (conversation_id, seq, position, file_id) VALUES (?, ?, ?, ?)"
)
ADVANCE_READ = (
    "UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ? AND read_seq < ?"
)
RESERVE = "UPDATE counters SET value = value + ? WHERE name = 'events' RETURNING value"
INSERT_EVENT = (
    "INSERT INTO events (position, conversation_id, user_id, kind, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)

# What every new WebSocket connection reads (a restart reconnects every client at once),
# run by a BatchRunner too: the engine's `lookup()` outside a transaction, or a
# transaction's own runner (security.py, conversations.py).

# The token, its user and the user's departments (one row per department; one without).
SESSION = (
    "SELECT tok.id, tok.device, tok.expires_at, tok.enrol_only, tok.last_seen_at, "
    "u.id, u.username, u.display_name, u.role, u.disabled, u.created_at, u.bot, "
    "u.email, u.origin, dm.department_id, "
    "u.status_text, u.status_emoji, u.status_until, u.language, u.time_zone, u.theme, "
    "u.avatar_id, u.avatar_sha256, u.avatar_type, u.avatar_updated_at "
    "FROM tokens AS tok JOIN users AS u ON u.id = tok.user_id "
    "LEFT OUTER JOIN department_members AS dm ON dm.user_id = u.id "
    "WHERE tok.token_hash = ? AND tok.revoked_at IS NULL"
)
# The stream head and the user's conversations in one statement: one snapshot, on
# PostgreSQL's read committed too (one row without any conversation; none without the
# counter row, an empty stream: then ACTIVE_CONVERSATIONS).
SNAPSHOT = (
    "SELECT c.value, m.conversation_id, m.first_seq FROM counters AS c "
    "LEFT OUTER JOIN members AS m ON m.user_id = ? AND m.left_pos IS NULL "
    "WHERE c.name = 'events'"
)
ACTIVE_CONVERSATIONS = (
    "SELECT conversation_id, first_seq FROM members WHERE user_id = ? AND left_pos IS NULL"
)
# People who share a conversation other than a channel with the user: (user, kind
# 'channel', user).
CONTACTS = (
    "SELECT DISTINCT m.user_id FROM members AS m "
    "WHERE m.conversation_id IN ("
    "SELECT mine.conversation_id FROM members AS mine "
    "JOIN conversations AS c ON c.id = mine.conversation_id "
    "WHERE mine.user_id = ? AND mine.left_pos IS NULL AND c.kind != ?) "
    "AND m.left_pos IS NULL AND m.user_id != ?"
)
