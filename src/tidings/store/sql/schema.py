"""The schema as SQLAlchemy Core tables. Migrations (store/migrations) create it.

Every conversation-scoped table keys on conversation_id first (Citus-compatible).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

metadata = MetaData()
TS = DateTime(timezone=True)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("display_name", String(80), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("password_hash", Text, nullable=False),
    Column("search_key", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    # 0003: a bot account (no password; authenticates with a bot token)
    Column("bot", Boolean, nullable=False, server_default=false()),
    # 0008: identity base (services/identity.py)
    Column("email", String(254), nullable=True),
    Column("origin", String(16), nullable=False, server_default="local"),
    # 0018: the profile (services/profile.py): custom status, preferences
    Column("status_text", Text, nullable=True),
    Column("status_emoji", String(64), nullable=True),
    Column("status_until", TS, nullable=True),
    Column("language", String(16), nullable=True),
    Column("time_zone", String(64), nullable=True),
    Column("theme", String(8), nullable=False, server_default="system"),
    # 0020: do not disturb (services/notifications.py): until, and a daily schedule
    Column("dnd_until", TS, nullable=True),
    Column("dnd_start", String(5), nullable=True),
    Column("dnd_end", String(5), nullable=True),
    # 0022: notifications for closed tabs (services/digests.py, services/push.py)
    Column("email_digests", Boolean, nullable=False, server_default=true()),
    Column("notify_previews", Boolean, nullable=False, server_default=true()),
    Column("digest_sent_at", TS, nullable=True),
    # 0023: the avatar (services/avatars.py); NULL avatar_id: none
    Column("avatar_id", String(32), nullable=True),
    Column("avatar_sha256", String(64), nullable=True),
    Column("avatar_type", String(16), nullable=True),
    Column("avatar_updated_at", TS, nullable=True),
)

departments = Table(
    "departments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("parent_id", String(32), nullable=True),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("parent_id", "name", name="uq_departments_parent_name"),
)

department_members = Table(
    "department_members",
    metadata,
    Column("department_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    PrimaryKeyConstraint("department_id", "user_id"),
    Index("ix_department_members_user", "user_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(32), nullable=False),
    Column("device", String(120), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    # 0002: security baseline
    Column("last_seen_at", TS, nullable=True),
    Column("address", String(64), nullable=False, server_default=""),
    Column("enrol_only", Boolean, nullable=False, server_default=false()),
    Index("ix_tokens_user", "user_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(80), nullable=False),
    Column("topic", String(250), nullable=False),
    Column("direct_key", String(80), nullable=True, unique=True),
    Column("created_by", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_activity_at", TS, nullable=False),
    Column("member_count", Integer, nullable=False),
    Column("archived_at", TS, nullable=True),  # set: read-only, hidden from lists by default
    # migration 0019: a private channel; only owners and moderators post; new members
    # read the history from seq 1 (true) or from when they joined
    Column("private", Boolean, nullable=False, server_default=false()),
    Column("announcement", Boolean, nullable=False, server_default=false()),
    Column("shared_history", Boolean, nullable=False, server_default=true()),
    Index("ix_conversations_kind", "kind"),
)

members = Table(
    "members",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("role", String(16), nullable=False),
    Column("read_seq", BigInteger, nullable=False),
    Column("joined_at", TS, nullable=False),
    Column("joined_pos", BigInteger, nullable=False),
    Column("left_pos", BigInteger, nullable=True),
    Column("left_seq", BigInteger, nullable=True),
    Column("removed_by", String(32), nullable=True),
    Column("first_seq", BigInteger, nullable=False, server_default="1"),  # 0019: lowest seq read
    # 0020: notification settings (services/notifications.py); NULL level: the default
    Column("notify_level", String(8), nullable=True),
    Column("muted", Boolean, nullable=False, server_default=false()),
    Column("muted_until", TS, nullable=True),
    PrimaryKeyConstraint("conversation_id", "user_id"),
    Index("ix_members_user", "user_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("id", String(32), nullable=False),
    Column("client_msg_id", String(64), nullable=False),
    Column("sender_id", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("reply_to_seq", BigInteger, nullable=True),
    Column("mentions", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("edited_at", TS, nullable=True),
    Column("deleted", Boolean, nullable=False),
    # 0017: threads (a reply names its root; also shown in the main timeline or not)
    Column("thread_root_seq", BigInteger, nullable=True),
    Column("also_to_conversation", Boolean, nullable=False, server_default=false()),
    # 0021: a forwarded copy names its original (conversation, seq)
    Column("forwarded_cid", String(32), nullable=True),
    Column("forwarded_seq", BigInteger, nullable=True),
    PrimaryKeyConstraint("conversation_id", "seq"),
    UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg_id"),
    # only the replies are in it
    Index(
        "ix_messages_thread",
        "conversation_id",
        "thread_root_seq",
        "seq",
        postgresql_where=text("thread_root_seq IS NOT NULL"),
        sqlite_where=text("thread_root_seq IS NOT NULL"),
    ),
)

# migration 0019: the pinned messages of a conversation
pins = Table(
    "pins",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("pinned_by", String(32), nullable=False),
    Column("pinned_at", TS, nullable=False),
    PrimaryKeyConstraint("conversation_id", "seq"),
)

# migration 0021: each user's saved messages (private), keyed on the user (a per-user
# table, like tokens); `position` is that of the message_saved event (order, cursor)
saved_messages = Table(
    "saved_messages",
    metadata,
    Column("user_id", String(32), nullable=False),
    Column("conversation_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("saved_at", TS, nullable=False),
    Column("position", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "conversation_id", "seq"),
    Index("ix_saved_messages_user_position", "user_id", "position"),
    Index("ix_saved_messages_message", "conversation_id", "seq"),
)

# migration 0024: messages to send later (private to their sender until sent), keyed
# on the sender (a per-user table, like saved_messages); `version` grows with each edit
scheduled_messages = Table(
    "scheduled_messages",
    metadata,
    Column("sender_id", String(32), nullable=False),
    Column("id", String(32), nullable=False),
    Column("conversation_id", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("reply_to_seq", BigInteger, nullable=True),
    Column("thread_root_seq", BigInteger, nullable=True),
    Column("also_to_conversation", Boolean, nullable=False),
    Column("send_at", TS, nullable=False),
    Column("state", String(16), nullable=False),
    Column("failure", Text, nullable=True),
    Column("sent_seq", BigInteger, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("sender_id", "id"),
    Index("ix_scheduled_messages_sender_state", "sender_id", "state", "send_at"),
)

# migration 0024: the files a scheduled message will carry, in their order (kept from
# the file collection while it is not sent)
scheduled_attachments = Table(
    "scheduled_attachments",
    metadata,
    Column("sender_id", String(32), nullable=False),
    Column("scheduled_id", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("file_id", String(32), nullable=False),
    PrimaryKeyConstraint("sender_id", "scheduled_id", "position"),
    Index("ix_scheduled_attachments_file", "file_id"),
)

# the unread-mention rows: one per mentioned user and message; a message that mentions
# everyone (@all, @channel, @here) has one more row, of user MENTION_EVERYONE (no user
# id is "*"), counted for every member but its sender (store/sql/conversations.py)
MENTION_EVERYONE = "*"

mentions = Table(
    "mentions",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("conversation_id", "user_id", "seq"),
)

reactions = Table(
    "reactions",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("emoji", String(64), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("conversation_id", "seq", "emoji", "user_id"),
)

events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("conversation_id", String(32), nullable=True),
    Column("user_id", String(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_events_conversation", "conversation_id", "position"),
    Index("ix_events_user", "user_id", "position"),
)

# --- 0002: security baseline -------------------------------------------------------

second_factors = Table(
    "second_factors",
    metadata,
    Column("user_id", String(32), primary_key=True),
    # 0006: sealed under the server key `key_id` (services/keyring.py); NULL: as is
    Column("secret", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("enabled_at", TS, nullable=True),  # None while enrolment is unconfirmed
    Column("last_step", BigInteger, nullable=True),  # a code is accepted once
    Column("key_id", String(16), nullable=True),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", String(32), nullable=False),
    # 0006: argon2id, encoded (older rows: SHA-256 hex)
    Column("code_hash", String(160), nullable=False),
    Column("used_at", TS, nullable=True),
    PrimaryKeyConstraint("user_id", "code_hash"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(160), primary_key=True),  # "user:<name>" or "addr:<address>"
    Column("failures", Integer, nullable=False),
    Column("first_at", TS, nullable=False),
    Column("last_at", TS, nullable=False),
    Column("locked_until", TS, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", TS, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor_id", String(32), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("address", String(64), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_at", "at"),
)

# --- 0006: the audit log's signed head, sealed TOTP secrets -------------------------

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row: id 1
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("mac", String(64), nullable=False),
)

# --- 0007: durable jobs (the outbox) ------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("queue", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", TS, nullable=False),
    Column("lease_until", TS, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
    Index("ix_jobs_state_due", "state", "run_after"),
    Index("ix_jobs_finished", "finished_at"),
)

job_cursors = Table(
    "job_cursors",
    metadata,
    Column("name", String(64), primary_key=True),  # an event consumer
    Column("position", BigInteger, nullable=False),  # the last event it has seen
)

# --- 0008: identity base: accounts kept by an identity provider ---------------------

identity_links = Table(
    "identity_links",
    metadata,
    Column("provider", String(64), nullable=False),  # "ldap", "oidc:<name>", "scim"
    Column("subject", String(255), nullable=False),  # the provider's stable id
    Column("user_id", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=True),
    # 0010: the provider disabled the account (it may enable it again; an admin's
    # disable it never undoes)
    Column("disabled_by_provider", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("provider", "subject"),
    Index("ix_identity_links_user", "user_id"),
)

# --- 0009: OpenID Connect sign-ins in progress ---------------------------------------

oidc_logins = Table(
    "oidc_logins",
    metadata,
    # sha256 of the `state` (kind "pending") or of the one-time hand-off code ("handoff")
    Column("key_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("browser_hash", String(64), nullable=False),  # sha256 of the browser's cookie
    Column("payload", Text, nullable=False),  # JSON: nonce, PKCE verifier, ... or user_id
    Column("expires_at", TS, nullable=False),
    Index("ix_oidc_logins_expires_at", "expires_at"),
)

# --- 0011: incoming webhooks and slash commands ----------------------------------------

incoming_webhooks = Table(
    "incoming_webhooks",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("id", String(32), nullable=False, unique=True),
    Column("name", String(80), nullable=False),
    Column("user_id", String(32), nullable=False),  # the integration user it posts as
    Column("secret_hash", String(64), nullable=False),  # SHA-256 of the URL's secret
    Column("created_by", String(32), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("posts", BigInteger, nullable=False, server_default="0"),
    Column("last_post_at", TS, nullable=True),
    PrimaryKeyConstraint("conversation_id", "id"),
)

slash_commands = Table(
    "slash_commands",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(32), nullable=False, unique=True),
    Column("description", String(200), nullable=False),
    Column("usage", String(100), nullable=False),
    Column("target", String(8), nullable=False),  # url | bot
    Column("url", Text, nullable=True),
    Column("user_id", String(32), nullable=False),  # who answers: the bot or the integration
    # the signing secret, sealed under the server key `key_id` (services/keyring.py)
    Column("secret", Text, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("created_by", String(32), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)

command_invocations = Table(
    "command_invocations",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("id", String(32), nullable=False, unique=True),
    Column("command_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("responses_left", Integer, nullable=False),
    PrimaryKeyConstraint("conversation_id", "id"),
    Index("ix_command_invocations_expires", "expires_at"),
)

# --- 0012: SCIM 2.0 provisioning (services/scim.py) ---------------------------------

scim_tokens = Table(
    "scim_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(80), nullable=False),
    Column("created_by", String(32), nullable=True),  # None: the command line
    Column("created_at", TS, nullable=False),
    Column("last_used_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
)

scim_users = Table(
    "scim_users",
    metadata,
    Column("id", String(32), primary_key=True),  # the SCIM id: the scim link's subject
    Column("user_id", String(32), nullable=False, unique=True),
    Column("user_name", String(256), nullable=False),  # as the provider gave it
    Column("user_name_key", String(256), nullable=False, unique=True),  # casefolded
    Column("external_id", String(256), nullable=True),
    Column("attributes", Text, nullable=False),  # JSON: name, emails, displayName
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_scim_users_external_id", "external_id"),
)

scim_groups = Table(
    "scim_groups",
    metadata,
    Column("department_id", String(32), primary_key=True),
    Column("display_name_key", String(256), nullable=False, unique=True),
    Column("external_id", String(256), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_scim_groups_external_id", "external_id"),
)

# --- 0013: outgoing webhooks ----------------------------------------------------------

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event kinds
    Column("conversation_id", String(32), nullable=True),  # NULL: org-wide
    Column("owner_id", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(16), nullable=True),
    Column("failures", Integer, nullable=False),  # consecutive failed attempts
    Column("since_position", BigInteger, nullable=False),  # gets events after it
    Column("secret", Text, nullable=False),  # sealed under the server key `key_id`
    Column("key_id", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_webhooks_owner", "owner_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("webhook_id", String(32), nullable=False),
    Column("id", String(32), nullable=False),  # time-ordered: the log's order
    Column("delivery_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("position", BigInteger, nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Column("status", String(16), nullable=False),
    Column("response_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("error", String(300), nullable=False),
    PrimaryKeyConstraint("webhook_id", "id"),
)

# --- 0015: files ---------------------------------------------------------------------

# One row per stored blob: the same bytes (sha256) are stored once.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("blob_key", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", TS, nullable=False),
)

# One row per upload (its own name and uploader), its bytes the blob of its sha256.
files = Table(
    "files",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("uploader_id", String(32), nullable=False),
    Column("name", String(1000), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("blob_key", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("inline_safe", Boolean, nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("thumb_key", String(255), nullable=True),
    Column("preview_key", String(255), nullable=True),
    Column("created_at", TS, nullable=False),
    Index("ix_files_uploader", "uploader_id", "created_at"),
    Index("ix_files_sha256", "sha256"),
)

# The files a message carries, in their order (conversation-scoped).
message_attachments = Table(
    "message_attachments",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("file_id", String(32), nullable=False),
    PrimaryKeyConstraint("conversation_id", "seq", "position"),
    Index("ix_message_attachments_file", "file_id"),
)

# --- 0017: threads -------------------------------------------------------------------

# A root's thread summary (one row per root that has had replies).
threads = Table(
    "threads",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("root_seq", BigInteger, nullable=False),
    Column("reply_count", BigInteger, nullable=False),
    Column("last_reply_seq", BigInteger, nullable=True),
    Column("last_reply_at", TS, nullable=True),
    Column("participants", Text, nullable=False),  # JSON list of user ids, newest first
    PrimaryKeyConstraint("conversation_id", "root_seq"),
    Index("ix_threads_activity", "conversation_id", "last_reply_at", "root_seq"),
)

# One user's explicit state in a thread (following NULL: the default).
thread_members = Table(
    "thread_members",
    metadata,
    Column("conversation_id", String(32), nullable=False),
    Column("root_seq", BigInteger, nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("following", Boolean, nullable=True),
    Column("read_seq", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("conversation_id", "root_seq", "user_id"),
)

# migration 0022: Web Push subscriptions, one per device and session (services/push.py)
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("token_id", String(32), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("user_id", "endpoint", name="uq_push_subscriptions_user_endpoint"),
    Index("ix_push_subscriptions_token", "token_id"),
)
