"""The audit log's hash chain. Pure: each entry's hash covers its fields and the hash of
the entry before it, so changing, inserting or removing an entry breaks every hash after it."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tidings.core.models import AuditEntry

GENESIS = "0" * 64  # the prev_hash of the first entry


class AuditAction:
    """The actions recorded (a closed list, so that exports are easy to filter)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    REAUTH_FAILED = "reauth_failed"  # a signed-in user's password or code check failed
    LOGOUT = "logout"
    SESSION_REVOKED = "session_revoked"
    SESSIONS_REVOKED = "sessions_revoked"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    TOTP_ENABLED = "totp_enabled"
    TOTP_DISABLED = "totp_disabled"
    TOTP_RESET = "totp_reset"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
    RECOVERY_CODE_USED = "recovery_code_used"
    USER_CREATED = "user_created"
    USER_UPDATED = "user_updated"
    AVATAR_REMOVED = "avatar_removed"  # by an admin (moderation); one's own: user_updated
    ROLE_CHANGED = "role_changed"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    BOT_CREATED = "bot_created"
    BOT_TOKEN_ROTATED = "bot_token_rotated"
    MEMBERS_ADDED = "members_added"
    MEMBER_REMOVED = "member_removed"
    CONVERSATION_ARCHIVED = "conversation_archived"  # details: kind, name
    CONVERSATION_UNARCHIVED = "conversation_unarchived"
    CONVERSATION_SETTINGS_CHANGED = "conversation_settings_changed"  # details: kind, new values
    MEMBER_ROLE_CHANGED = "member_role_changed"  # details: user_id, role, was
    DEPARTMENT_CREATED = "department_created"
    DEPARTMENT_MEMBER_CHANGED = "department_member_changed"
    DEPARTMENT_RENAMED = "department_renamed"  # details: name (new), old_name
    DEPARTMENT_MOVED = "department_moved"  # details: parent_id (new), old_parent_id
    DEPARTMENT_DELETED = "department_deleted"  # details: name, parent_id
    SETTINGS_CHANGED = "settings_changed"
    AUDIT_HEAD_ADOPTED = "audit_head_adopted"
    SECRETS_ROTATED = "secrets_rotated"
    JOB_RETRIED = "job_retried"
    JOBS_PURGED = "jobs_purged"
    BACKUP_CREATED = "backup_created"  # details: file, bytes, stream head (never a path's secret)
    BACKUP_RESTORED = "backup_restored"  # details: the backup's head, where positions resume
    SEARCH_REINDEXED = "search_reindexed"  # details: messages indexed, removed, seconds
    # accounts kept by an identity provider (services/identity.py): details name it
    IDENTITY_USER_CREATED = "identity_user_created"
    IDENTITY_USER_UPDATED = "identity_user_updated"
    IDENTITY_USER_DISABLED = "identity_user_disabled"
    IDENTITY_USER_LINKED = "identity_user_linked"
    IDENTITY_LDAP_TESTED = "identity_ldap_tested"  # an admin's check (with a sign-in, maybe)
    IDENTITY_SYNCED = "identity_synced"  # one sync run that changed something, or failed
    INCOMING_WEBHOOK_CREATED = "incoming_webhook_created"
    INCOMING_WEBHOOK_UPDATED = "incoming_webhook_updated"  # renamed, disabled, enabled
    INCOMING_WEBHOOK_ROTATED = "incoming_webhook_rotated"  # a new URL secret
    INCOMING_WEBHOOK_DELETED = "incoming_webhook_deleted"
    INCOMING_WEBHOOK_POSTED = "incoming_webhook_posted"  # only with audit_incoming_posts
    COMMAND_CREATED = "command_created"
    COMMAND_UPDATED = "command_updated"
    COMMAND_SECRET_ROTATED = "command_secret_rotated"
    COMMAND_DELETED = "command_deleted"
    # SCIM provisioning (services/scim.py): the actor is the SCIM token's id
    SCIM_TOKEN_CREATED = "scim_token_created"
    SCIM_TOKEN_REVOKED = "scim_token_revoked"
    SCIM_USER_CREATED = "scim_user_created"
    SCIM_USER_UPDATED = "scim_user_updated"
    SCIM_USER_DELETED = "scim_user_deleted"
    SCIM_GROUP_CREATED = "scim_group_created"
    SCIM_GROUP_ADOPTED = "scim_group_adopted"
    SCIM_GROUP_UPDATED = "scim_group_updated"
    SCIM_GROUP_DELETED = "scim_group_deleted"
    WEBHOOK_CREATED = "webhook_created"
    WEBHOOK_UPDATED = "webhook_updated"  # url, events, enabled (details.changes)
    WEBHOOK_SECRET_ROTATED = "webhook_secret_rotated"
    WEBHOOK_DELETED = "webhook_deleted"
    WEBHOOK_DISABLED = "webhook_disabled"  # by the server: failures, or 410 Gone
    FILE_UPLOADED = "file_uploaded"  # details: name, size, content_type, sha256
    FILES_COLLECTED = "files_collected"  # unreferenced uploads and blobs deleted (gc)
    USER_EMAIL_CHANGED = "user_email_changed"  # by the user (details: had, has: booleans)
    DIGESTS_UNSUBSCRIBED = "digests_unsubscribed"  # through a mail's unsubscribe link


def _iso(at: datetime) -> str:
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    action: str,
    actor_id: str | None,
    target_id: str | None,
    address: str,
    details: dict[str, object],
) -> str:
    canonical = json.dumps(
        [prev_hash, seq, _iso(at), action, actor_id, target_id, address, details],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entry_hash(entry: AuditEntry) -> str:
    return chain_hash(
        entry.prev_hash,
        entry.seq,
        entry.at,
        entry.action,
        entry.actor_id,
        entry.target_id,
        entry.address,
        entry.details,
    )


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    truncated: bool = False  # the log ends before the entry its signed head names
    signed_by: str | None = None  # the key id of the signed head checked


def check_head(
    chain: ChainCheck, head: tuple[int, str] | None, hash_at_head: str | None
) -> ChainCheck:
    """The chain's check, completed with its signed head (seq, hash), whose signature
    was checked already; `hash_at_head` is the hash the chain has at the head's seq.
    Entries after the head are fine (appended since the head was read)."""
    if not chain.ok:
        return chain
    fail = functools.partial(ChainCheck, False, chain.entries, chain.head_seq, chain.head_hash)
    if head is None:
        if chain.entries == 0:
            return chain
        return fail(
            chain.head_seq,
            f"no signed head, but {chain.entries} entries: the head was removed (a database "
            "from before signed heads gets one when the server starts)",
        )
    seq, head_hash = head
    if chain.head_seq < seq:
        missing = seq - chain.head_seq
        return fail(
            chain.head_seq + 1,
            f"the log ends at entry {chain.head_seq} but its signed head is entry {seq}: "
            f"the newest {missing} {'entry was' if missing == 1 else 'entries were'} removed",
            truncated=True,
        )
    if hash_at_head != head_hash:
        return fail(
            seq,
            f"entry {seq} is not the one the signed head names: the log was rewritten from "
            "there on",
            truncated=True,
        )
    return chain


class ChainVerifier:
    """Feed entries in seq order; `result()` tells whether the chain holds."""

    def __init__(self, watch: int | None = None) -> None:
        """`watch`: remember the hash of the entry with this seq (`watched`)."""
        self.count = 0
        self.prev_seq = 0
        self.prev_hash = GENESIS
        self.broken: tuple[int, str] | None = None
        self.watch = watch
        self.watched: str | None = None

    def feed(self, entries: Iterable[AuditEntry]) -> None:
        for entry in entries:
            if self.broken is not None:
                return
            self.count += 1
            if entry.seq != self.prev_seq + 1:
                self.broken = (entry.seq, f"entry {self.prev_seq + 1} is missing")
            elif entry.prev_hash != self.prev_hash:
                self.broken = (entry.seq, "does not chain to the entry before it")
            elif entry_hash(entry) != entry.hash:
                self.broken = (entry.seq, "its content does not match its hash")
            else:
                self.prev_seq, self.prev_hash = entry.seq, entry.hash
                if entry.seq == self.watch:
                    self.watched = entry.hash

    def result(self) -> ChainCheck:
        if self.broken is not None:
            return ChainCheck(
                False, self.count, self.prev_seq, self.prev_hash, self.broken[0], self.broken[1]
            )
        return ChainCheck(True, self.count, self.prev_seq, self.prev_hash)
