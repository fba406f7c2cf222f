"""The Store port: what services may ask of storage. One small Protocol per aggregate
(`UsersTx`, `ConversationsTx`, `MessagesTx`, `EventsTx`, `SecurityTx`, `JobsTx`,
`IdentityTx`, `OidcTx`), each implemented by one module of the SQL adapter
(store/sql/users.py, ...), composed in `Tx` as store/sql/store.py:SqlTx composes those
modules. Results are domain values (core/models.py) or the small frozen records below,
never bare tuples.

tests/unit/store/test_ports.py checks that each module implements its Protocol with the
same parameters and annotations, and nothing public beyond it, and that SqlTx and
SqlStore implement Tx and Store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tidings.core.integrations import IncomingWebhook, Invocation, SlashCommand
from tidings.core.jobs import JobRecord, JobState
from tidings.core.models import (
    AuditEntry,
    Avatar,
    Conversation,
    ConversationId,
    ConversationKind,
    CustomStatus,
    Department,
    Dnd,
    FileInfo,
    FileStatus,
    IdentityLink,
    Member,
    MemberNotify,
    MemberRole,
    MemberView,
    Message,
    OrgRole,
    Pin,
    Preferences,
    SavedMessage,
    ScheduledMessage,
    ScheduledState,
    Session,
    SessionInfo,
    StoredEvent,
    ThreadState,
    ThreadSummary,
    User,
    UserId,
    UserOrigin,
)
from tidings.core.notifications import (
    MissedItem,
    NotifySettings,
    PushSubscription,
    ReachableMember,
)
from tidings.core.webhooks import Delivery, Webhook

AfterCommit = Callable[[], Awaitable[None]]


# --- records ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Credentials:
    """A user and their stored password hash (for signing in)."""

    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class SendTargets:
    """For a batch of sends: the `last_seq` of each conversation that exists, and the
    (conversation_id, user_id) pairs that are active memberships, and the conversations
    that are archived (read-only), those that are announcement conversations, and each
    active member's role and first readable seq (history not shared: members.first_seq)."""

    last_seqs: dict[str, int]
    active: set[tuple[str, str]]
    archived: set[str]
    announcement: set[str] = field(default_factory=set)
    roles: dict[tuple[str, str], MemberRole] = field(default_factory=dict)
    first_seqs: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Membership:
    """One of a user's member rows (active or left) and its conversation."""

    conversation: Conversation
    member: Member


@dataclass(frozen=True, slots=True)
class ThreadRoot:
    """What a reply's checks need of the message it names as its root."""

    sender_id: UserId
    thread_root_seq: int | None  # set: a reply itself (no thread of its own)
    deleted: bool


@dataclass(frozen=True, slots=True)
class MessagePage:
    """Messages ascending by seq, and whether there are more in the direction asked."""

    messages: list[Message]
    more: bool


@dataclass(frozen=True, slots=True)
class SecondFactor:
    """A user's TOTP: its secret as stored (sealed under the key `key_id`; None: stored
    as is, before secrets were sealed), whether enrolment finished, the last time step
    used."""

    secret: str
    enabled: bool
    last_step: int | None
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The audit log's newest entry (its seq and hash), signed with a server key: kept
    beside the log, moved in the transaction of every entry, so that removing the
    newest entries shows."""

    seq: int
    hash: str
    key_id: str
    mac: str


# Signs the head at (seq, hash): given to the store by the container (app/container.py).
AuditSigner = Callable[[int, str], AuditHead]


@dataclass(frozen=True, slots=True)
class LoginFailures:
    """Failed sign-ins counted under one key (a username or an address)."""

    failures: int
    first_at: datetime
    last_at: datetime
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """The stream head and a user's conversations as of that head (one snapshot)."""

    head: int
    conversation_ids: list[ConversationId]
    # the first seq the user may read in those of them where it is not 1 (history not
    # shared with members added later: Member.first_seq)
    first_seqs: dict[ConversationId, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenSeen:
    """A session token was used: when, and from which address (None: not known)."""

    token_id: str
    at: datetime
    address: str | None


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A secret the server reads back (to sign with it), sealed under key `key_id`."""

    key_id: str
    sealed: str


@dataclass(frozen=True, slots=True)
class ScimToken:
    """A SCIM bearer token as an admin sees it (never the token itself)."""

    id: str
    name: str
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScimUserRecord:
    """The SCIM side of a provisioned account: its SCIM id (the subject of the account's
    `scim` identity link), the provider's userName (as given) and externalId, and the
    SCIM attributes kept beside the account (JSON values)."""

    id: str
    user_id: str
    user_name: str
    external_id: str | None
    attributes: dict[str, object]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ScimGroupRecord:
    """A department provisioned (or adopted) as a SCIM Group."""

    department_id: str
    display_name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime


# --- one Protocol per aggregate ------------------------------------------------------
class UsersTx(Protocol):
    """Accounts, departments, the directory (store/sql/users.py)."""

    async def insert_user(self, user: User, password_hash: str, search_key: str) -> None: ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_users(self, user_ids: Iterable[str]) -> list[User]: ...

    async def get_credentials(self, username: str) -> Credentials | None: ...

    async def get_password_hash(self, user_id: str) -> str | None: ...

    async def users_by_usernames(self, usernames: Iterable[str]) -> list[User]: ...

    async def search_users(
        self, query: str, department_ids: Sequence[str] | None, limit: int
    ) -> list[User]: ...

    async def set_display_name(self, user_id: str, display_name: str, search_key: str) -> None:
        """A new display name, and the search key made from it."""
        ...

    async def set_profile(
        self,
        user_id: str,
        *,
        display_name: str,
        search_key: str,
        status: CustomStatus | None,
        preferences: Preferences,
    ) -> None:
        """What services/profile.py changes: name (and its search key), status,
        preferences, written whole."""
        ...

    async def set_avatar(self, user_id: str, avatar: Avatar | None) -> None:
        """A user's avatar (services/avatars.py); None: none."""
        ...

    async def sharing_a_conversation(self, user_id: str, among: Sequence[str]) -> set[str]:
        """Which of `among` are members now of a conversation (any kind) the user is a
        member of now."""
        ...

    async def avatar_in_use(self, sha256: str) -> bool:
        """Whether any user's avatar is the one of these renditions (their blobs stay)."""
        ...

    async def get_dnd(self, user_id: str) -> Dnd:
        """A user's do not disturb (users.dnd_until, dnd_start, dnd_end); a user who is
        not there: off."""
        ...

    async def set_dnd(self, user_id: str, dnd: Dnd) -> None: ...

    async def set_role(self, user_id: str, role: OrgRole) -> None: ...

    async def set_disabled(self, user_id: str, disabled: bool) -> None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def count_active_owners(self) -> int: ...

    async def active_user_ids_with_roles(self, roles: Sequence[OrgRole]) -> list[UserId]:
        """People (never bots: they have no second factor) with one of these roles."""
        ...

    async def bot_user_ids(self) -> list[UserId]:
        """The ids of every bot account, by username."""
        ...

    async def insert_department(self, dep: Department, now: datetime) -> None: ...

    async def list_departments(self) -> list[Department]: ...

    async def add_department_member(self, department_id: str, user_id: str) -> None: ...

    async def remove_department_member(self, department_id: str, user_id: str) -> None: ...

    async def rename_department(self, department_id: str, name: str) -> None: ...

    async def usage_per_day(self, starts: Sequence[datetime]) -> list[tuple[int, int]]:
        """For each day [starts[i], starts[i+1]) (the last one until starts[-1] + 1 day):
        (messages sent, distinct senders who are not bots), in one pass over the
        messages of the window."""
        ...

    async def database_bytes(self) -> int:
        """The database's size on disk, in bytes."""
        ...

    async def move_department(self, department_id: str, parent_id: str | None) -> None:
        """Give the department a new parent (None: top level). Conflict when its parent
        already has one of that name."""
        ...

    async def delete_department(self, department_id: str) -> None:
        """The department, its memberships and its sub-departments' link to it (they
        become top-level)."""
        ...

    async def department_member_ids(self, department_id: str) -> list[UserId]: ...


class ConversationsTx(Protocol):
    """Conversations, their members and read positions (store/sql/conversations.py)."""

    async def insert_conversation(self, conv: Conversation, direct_key: str | None) -> None: ...

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def find_direct(self, direct_key: str) -> Conversation | None: ...

    async def set_conversation_name(self, conversation_id: str, name: str) -> None: ...

    async def set_conversation_topic(self, conversation_id: str, topic: str) -> None: ...

    async def list_channels(
        self, query: str, limit: int, member_id: str | None = None
    ) -> list[Conversation]:
        """Channels whose name contains `query`, archived ones left out, and private
        ones left out unless `member_id` is an active member."""
        ...

    async def set_conversation_settings(
        self,
        conversation_id: str,
        *,
        private: bool | None = None,
        announcement: bool | None = None,
        shared_history: bool | None = None,
    ) -> None:
        """Change the settings given (None: as it is)."""
        ...

    async def set_conversation_archived(
        self, conversation_id: str, archived_at: datetime | None
    ) -> None:
        """Archive (a time) or unarchive (None) a conversation."""
        ...

    async def all_conversations(
        self,
        *,
        query: str,
        kind: str | None,
        archived: bool | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Conversation], int]:
        """Every conversation (an admin's list), newest activity first: those whose name
        contains `query` (case-insensitive), of `kind`, archived or not (`archived`;
        None: both); one page of `limit` from `offset`, and how many match in all."""
        ...

    async def upsert_member(self, member: Member) -> bool:
        """Add (or re-add) a member. Returns False when already an active member."""
        ...

    async def get_member(self, conversation_id: str, user_id: str) -> Member | None: ...

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> None: ...

    async def set_member_notify(
        self, conversation_id: str, user_id: str, notify: MemberNotify
    ) -> None:
        """A member's notification settings, written whole."""
        ...

    async def count_owners(self, conversation_id: str) -> int:
        """How many active members are owners."""
        ...

    async def list_members(self, conversation_id: str) -> list[Member]: ...

    async def mark_member_left(
        self,
        conversation_id: str,
        user_id: str,
        position: int,
        seq: int,
        removed_by: str | None = None,
    ) -> None:
        """The member left (`removed_by` None) or was removed by `removed_by`."""
        ...

    async def advance_read(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move a read position forward only. True when it moved."""
        ...

    async def move_read_back(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move a read position back to `seq` only (mark unread). True when it moved."""
        ...

    async def member_views(
        self, user_id: str, include_archived: bool = False
    ) -> list[MemberView]: ...

    async def thread_only_after(self, conversation_id: str, seq: int) -> int:
        """How many thread replies not also sent to the conversation come after `seq`."""
        ...

    async def active_conversation_ids(self, user_id: str) -> list[ConversationId]: ...

    async def memberships(self, user_id: str) -> list[Membership]:
        """Every member row of the user, active or left, with its conversation (archived
        ones included): what the user may read (search)."""
        ...

    async def stream_snapshot(self, user_id: str) -> StreamSnapshot:
        """The stream head and the user's conversations as of that head, from one
        snapshot."""
        ...

    async def contacts_of(self, user_id: str) -> list[UserId]:
        """People who share a direct or group conversation with the user."""
        ...


class MessagesTx(Protocol):
    """Messages, mentions, reactions, and the group commit of sends: a few statements
    per batch, not per message (store/sql/messages.py)."""

    async def messages_by_client_ids(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Message]:
        """Stored messages by (sender_id, client_msg_id), for idempotent retries."""
        ...

    async def get_pin(self, conversation_id: str, seq: int) -> Pin | None: ...

    async def add_pin(self, pin: Pin) -> None: ...

    async def remove_pin(self, conversation_id: str, seq: int) -> bool:
        """Unpin; True when it was pinned."""
        ...

    async def count_pins(self, conversation_id: str) -> int: ...

    async def list_pins(self, conversation_id: str, min_seq: int, max_seq: int | None) -> list[Pin]:
        """The pins of messages within min_seq..max_seq, the newest pin first."""
        ...

    async def get_saved(
        self, user_id: str, conversation_id: str, seq: int
    ) -> SavedMessage | None: ...

    async def add_saved(self, saved: SavedMessage) -> None: ...

    async def remove_saved(self, user_id: str, conversation_id: str, seq: int) -> bool:
        """Unsave; True when it was saved."""
        ...

    async def count_saved(self, user_id: str) -> int: ...

    async def remove_saved_of_message(self, conversation_id: str, seq: int) -> list[UserId]:
        """Drop every user's save of one message (it was recalled); returns the savers."""
        ...

    async def list_saved(
        self, user_id: str, *, before_position: int | None, limit: int
    ) -> list[SavedMessage]:
        """The user's saved messages they may still read (not recalled, within their
        membership range), newest save first, before `before_position`."""
        ...

    # --- scheduled messages (per sender) ------------------------------------------------
    async def add_scheduled(self, scheduled: ScheduledMessage) -> None: ...

    async def get_scheduled(self, sender_id: str, scheduled_id: str) -> ScheduledMessage | None:
        ...

    async def update_scheduled(
        self, scheduled: ScheduledMessage, *, state: ScheduledState, version: int
    ) -> bool:
        """Write `scheduled`'s state, body, send_at, version, failure and sent_seq over the
        row of its (sender_id, id) if that row is still in `state` at `version`; True
        when it was (an optimistic check: an edit and a delivery never both win)."""
        ...

    async def count_scheduled(self, sender_id: str, states: Sequence[ScheduledState]) -> int: ...

    async def list_scheduled(
        self,
        sender_id: str,
        states: Sequence[ScheduledState],
        *,
        conversation_id: str | None = None,
        limit: int,
    ) -> list[ScheduledMessage]:
        """The sender's scheduled messages in `states`, the soonest first."""
        ...

    async def send_targets(self, keys: Sequence[tuple[str, str]]) -> SendTargets:
        """For the (conversation_id, user_id) pairs of a batch of sends."""
        ...

    async def append_messages(
        self, messages: Sequence[Message], last_seqs: Mapping[str, int], now: datetime
    ) -> None:
        """Insert new messages whose seqs follow the conversations' `last_seq` read in this
        transaction, set each conversation's `last_seq`, and mark each message read by
        its sender (read positions only move forward)."""
        ...

    async def get_message(self, conversation_id: str, seq: int) -> Message | None: ...

    async def messages_by_keys(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Message]:
        """The messages of these (conversation_id, seq) that exist, recalled ones
        included (a few queries per conversation)."""
        ...

    async def list_messages(
        self,
        conversation_id: str,
        *,
        before_seq: int | None,
        after_seq: int | None,
        limit: int,
        max_seq: int | None,
        thread_root_seq: int | None = None,
        min_seq: int = 1,
    ) -> MessagePage:
        """A page of the conversation's messages within min_seq..max_seq (a member's
        range; `thread_root_seq`: of that thread's replies only), ascending by seq."""
        ...

    async def edit_message(
        self,
        conversation_id: str,
        seq: int,
        body: str,
        mentions: Sequence[str],
        edited_at: datetime,
    ) -> None:
        """A new body and its mentions (the message's and the unread-mention rows)."""
        ...

    async def recall_message(self, conversation_id: str, seq: int) -> None:
        """The message stays in place, its body and mentions gone."""
        ...

    async def set_reaction(
        self,
        conversation_id: str,
        seq: int,
        emoji: str,
        user_id: str,
        on: bool,
        now: datetime,
    ) -> bool:
        """Add or remove one reaction. True when something changed."""
        ...


class ThreadsTx(Protocol):
    """Threads: roots' summaries, who follows and has read what (store/sql/threads.py).
    A reply is an ordinary message (MessagesTx) with `thread_root_seq` set."""

    async def thread_roots(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], ThreadRoot]:
        """The messages of these (conversation_id, seq) that exist, as roots (one query
        for a batch of sends)."""
        ...

    async def thread_summaries(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], ThreadSummary]:
        """The stored summaries of these (conversation_id, root_seq), those that exist."""
        ...

    async def put_thread_summaries(
        self, summaries: Sequence[ThreadSummary], existing: set[tuple[str, int]]
    ) -> None:
        """Write these summaries: an update of the rows in `existing`, an insert of the
        others (the send path: one statement of each kind per batch)."""
        ...

    async def count_thread(
        self, conversation_id: str, root_seq: int, cap: int, max_seq: int | None
    ) -> ThreadSummary:
        """A root's summary counted from its replies (recalled ones not counted; only
        up to `max_seq` when given), `cap` participants at most."""
        ...

    async def list_threads(
        self,
        conversation_id: str,
        *,
        before: int | None,
        limit: int,
        max_seq: int | None,
        cap: int,
        min_seq: int = 1,
    ) -> list[ThreadSummary]:
        """Threads with at least one visible reply, newest activity first (by their
        last reply's seq, below `before` when given). `max_seq`: counted from the
        replies up to it (a member who left; `cap` participants), else the stored
        summaries."""
        ...

    async def thread_states(
        self,
        conversation_id: str,
        user_id: str,
        roots: Sequence[tuple[int, str]],
        max_seq: int | None,
    ) -> dict[int, ThreadState]:
        """The user's state in each thread of `roots` ((root_seq, root sender))."""
        ...

    async def set_thread_member(
        self,
        conversation_id: str,
        root_seq: int,
        user_id: str,
        *,
        following: bool | None,
        read_seq: int | None,
    ) -> bool:
        """Set the user's explicit `following` (None: as it is) and move their read
        position forward to `read_seq` (None: as it is). True when something changed."""
        ...


class EventsTx(Protocol):
    """The event stream clients resume from (store/sql/events.py)."""

    async def reserve_positions(self, count: int) -> int:
        """Reserve `count` stream positions; returns the first. Taken in the committing
        transaction, so positions commit in order on every engine."""
        ...

    async def insert_events(self, events: Sequence[StoredEvent], now: datetime) -> None: ...

    async def head_position(self) -> int: ...

    async def move_head(self, to: int) -> int:
        """Move the stream counter forward to `to`, never back (a restore); the head."""
        ...

    async def first_position_after(self, after: int) -> int | None:
        """The first event's position after `after` (None: none)."""
        ...

    async def events_between(self, after: int, until: int) -> list[StoredEvent]:
        """Every committed event with after < position <= until, in order."""
        ...

    async def events_for_user(self, user_id: str, since: int, limit: int) -> list[StoredEvent]:
        """Events after `since` that the user may see: those of each conversation within
        the user's membership range, and the user's own events."""
        ...

    async def first_seqs(self, user_id: str) -> dict[ConversationId, int]:
        """The first seq the user may read in each conversation they are or were a
        member of, where it is not 1 (Member.first_seq)."""
        ...


class SecurityTx(Protocol):
    """Session tokens, second factor, login failures and the audit log
    (store/sql/security.py)."""

    async def insert_token(
        self,
        token_id: str,
        token_hash: str,
        user_id: str,
        device: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def session_for_token(self, token_hash: str, now: datetime) -> Session | None: ...

    async def revoke_token(self, token_id: str, now: datetime) -> None: ...

    async def revoke_user_tokens(self, user_id: str, now: datetime) -> None: ...

    async def delete_dead_tokens(self, before: datetime) -> int:
        """Delete tokens expired or revoked before `before`; returns how many."""
        ...

    async def set_tokens_seen(self, seen: Sequence[TokenSeen]) -> None:
        """When (and from where) each of these sessions was last seen."""
        ...

    async def list_sessions(self, user_id: str, now: datetime) -> list[SessionInfo]:
        """The user's live sessions (not revoked, not expired), newest first."""
        ...

    async def token_owner(self, token_id: str) -> str | None:
        """The user of a live (not revoked) token."""
        ...

    async def live_token_ids(self, token_ids: Sequence[str], now: datetime) -> set[str]:
        """Those of `token_ids` that still authenticate (not revoked or expired, user
        not disabled)."""
        ...

    async def revoke_user_tokens_except(self, user_id: str, keep: str, now: datetime) -> None: ...

    async def set_tokens_enrol_only(self, user_ids: Sequence[str], enrol_only: bool) -> None:
        """Restrict (or free) the live sessions of these users to enrolling a factor."""
        ...

    async def set_token_enrol_only(self, token_id: str, enrol_only: bool) -> None: ...

    async def get_second_factor(self, user_id: str) -> SecondFactor | None:
        """A user's TOTP, if any."""
        ...

    async def put_second_factor(
        self, user_id: str, secret: str, key_id: str | None, now: datetime
    ) -> None:
        """Start (or restart) an enrolment: a new secret (sealed under `key_id`), not
        enabled yet."""
        ...

    async def second_factor_key_ids(self) -> dict[str | None, int]:
        """How many stored TOTP secrets each key id sealed (None: stored as is)."""
        ...

    async def second_factors_under(
        self, key_id: str | None, after_user_id: str, limit: int
    ) -> list[tuple[str, SecondFactor]]:
        """Up to `limit` (user id, second factor) whose secret is sealed under `key_id`
        (None: stored as is), by user id, after `after_user_id`."""
        ...

    async def reseal_second_factor(
        self, user_id: str, old_key_id: str | None, secret: str, key_id: str
    ) -> bool:
        """Replace a secret sealed under `old_key_id` by the same secret sealed under
        `key_id`; False when it changed meanwhile."""
        ...

    async def enable_second_factor(self, user_id: str, now: datetime, step: int) -> None: ...

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record a time step as used; False when it (or a later one) was used already,
        so that one code cannot be replayed."""
        ...

    async def delete_second_factor(self, user_id: str) -> None: ...

    async def second_factor_user_ids(self, user_ids: Sequence[str]) -> set[str]:
        """Which of these users have an enabled second factor."""
        ...

    async def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str]) -> None: ...

    async def use_recovery_code(self, user_id: str, code_hash: str, now: datetime) -> bool:
        """Spend one recovery code; False when unknown or already spent."""
        ...

    async def unspent_recovery_hashes(self, user_id: str) -> list[str]: ...

    async def recovery_codes_left(self, user_id: str) -> int: ...

    async def get_login_failures(self, keys: Sequence[str]) -> dict[str, LoginFailures]:
        """The failures counted under each of these keys (absent: none)."""
        ...

    async def put_login_failure(self, key: str, record: LoginFailures) -> None: ...

    async def clear_login_failures(self, key: str) -> None: ...

    async def reserve_audit_seq(self) -> int:
        """Take the next audit seq. The counter row stays locked until commit, so audit
        writers are serialized and each sees its predecessor's hash."""
        ...

    async def audit_hash(self, seq: int) -> str | None: ...

    async def insert_audit(self, entry: AuditEntry) -> None:
        """Append `entry` and move the signed head to it (signed by the store's
        AuditSigner), in this transaction."""
        ...

    async def get_audit_head(self) -> AuditHead | None: ...

    async def put_audit_head(self, head: AuditHead) -> None: ...

    async def list_audit(
        self,
        after_seq: int,
        limit: int,
        since: datetime | None = None,
        *,
        until: datetime | None = None,
        action: str | None = None,
        actor_id: str | None = None,
        target_id: str | None = None,
    ) -> list[AuditEntry]:
        """Entries after `after_seq`, oldest first: at or after `since`, before `until`,
        of that `action`, `actor_id` and `target_id` where given."""
        ...


class JobsTx(Protocol):
    """The outbox and every job's state (store/sql/jobs.py, core/jobs.py)."""

    async def insert_jobs(self, jobs: Sequence[JobRecord]) -> list[str]:
        """Write new jobs; an id that exists already is left as it is."""
        ...

    async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def due_jobs(self, now: datetime, limit: int) -> list[JobRecord]: ...

    async def next_due_at(self) -> datetime | None: ...

    async def claim_job(
        self, job_id: str, now: datetime, lease_until: datetime, *, take_over: bool = False
    ) -> JobRecord | None:
        """Start an attempt (None: the job is not there to be had)."""
        ...

    async def mark_queued(self, job_ids: Sequence[str], now: datetime) -> None: ...

    async def finish_job(
        self,
        job_id: str,
        attempts: int,
        state: JobState,
        now: datetime,
        *,
        run_after: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Record an attempt's outcome (False: that attempt no longer holds the job)."""
        ...

    async def requeue_stale(self, now: datetime, queued_before: datetime) -> int: ...

    async def retry_job(self, job_id: str, now: datetime) -> bool: ...

    async def list_jobs(
        self,
        states: Sequence[JobState],
        kind: str | None,
        before: str | None,
        limit: int,
    ) -> list[JobRecord]: ...

    async def delete_jobs(
        self, states: Sequence[JobState], finished_before: datetime | None, kind: str | None
    ) -> int: ...

    async def job_counts(self) -> dict[tuple[str, str], int]: ...

    async def oldest_waiting(self, now: datetime) -> datetime | None: ...

    async def job_cursors(self) -> dict[str, int]: ...

    async def move_job_cursor(self, name: str, position: int) -> None: ...


class IdentityTx(Protocol):
    """Which account an identity provider's subject is, and the profile fields the
    providers keep in step (store/sql/identity.py)."""

    async def user_for_link(self, provider: str, subject: str) -> User | None: ...

    async def put_link(self, provider: str, subject: str, user_id: str, now: datetime) -> None:
        """Link (provider, subject) to an account; Conflict when it is linked already."""
        ...

    async def get_link(self, provider: str, subject: str) -> IdentityLink | None: ...

    async def delete_link(self, provider: str, subject: str) -> None: ...

    async def set_link_disabled(self, provider: str, subject: str, disabled: bool) -> None:
        """Whether the provider disabled the account of this identity."""
        ...

    async def links_of(self, user_id: str) -> list[IdentityLink]: ...

    async def provider_links(self, provider: str) -> list[IdentityLink]:
        """Every identity of `provider` (the sync's view of who it provisioned)."""
        ...

    async def touch_link(self, provider: str, subject: str, now: datetime) -> None:
        """The provider vouched for this identity at `now` (a sign-in, a sync)."""
        ...

    async def set_user_profile(
        self,
        user_id: str,
        *,
        display_name: str,
        search_key: str,
        email: str | None,
        origin: UserOrigin,
    ) -> None:
        """The fields a provider keeps: display name (and its search key), email, origin."""
        ...


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """An OpenID Connect sign-in in progress (`kind` "pending": at the provider;
    "handoff": finished, its session not yet taken), bound to one browser."""

    kind: str
    browser_hash: str
    payload: Mapping[str, str]
    expires_at: datetime


class OidcTx(Protocol):
    async def count_pending_logins(self, now: datetime) -> int:
        """Sign-ins in progress that have not expired."""
        ...

    async def put_pending_login(self, key_hash: str, login: PendingLogin, now: datetime) -> None:
        """Keep one (and delete those expired before `now`)."""
        ...

    async def take_pending_login(self, key_hash: str) -> PendingLogin | None:
        """Delete and return it: a second take of the same key finds nothing."""
        ...


class IntegrationsTx(Protocol):
    """Incoming webhooks, slash commands and their invocations
    (store/sql/integrations.py)."""

    async def insert_incoming_webhook(self, hook: IncomingWebhook, secret_hash: str) -> None: ...

    async def get_incoming_webhook(self, hook_id: str) -> IncomingWebhook | None: ...

    async def incoming_webhook_by_secret(
        self, hook_id: str, secret_hash: str
    ) -> IncomingWebhook | None:
        """The webhook whose URL this is (its id and the hash of its secret)."""
        ...

    async def list_incoming_webhooks(self, conversation_id: str | None) -> list[IncomingWebhook]:
        """Those of one conversation, or (None) every one; oldest first."""
        ...

    async def count_incoming_webhooks(self, conversation_id: str) -> int: ...

    async def update_incoming_webhook(
        self,
        hook_id: str,
        *,
        name: str | None = None,
        disabled: bool | None = None,
        secret_hash: str | None = None,
    ) -> None: ...

    async def count_incoming_post(self, hook_id: str, at: datetime) -> None:
        """One more post through the webhook, at `at`."""
        ...

    async def delete_incoming_webhook(self, hook_id: str) -> None: ...

    async def insert_command(self, command: SlashCommand, secret: SealedSecret) -> None:
        """Conflict when the name is taken."""
        ...

    async def get_command(self, command_id: str) -> SlashCommand | None: ...

    async def command_by_name(self, name: str) -> SlashCommand | None: ...

    async def list_commands(self) -> list[SlashCommand]:
        """Every command, by name."""
        ...

    async def command_secret(self, command_id: str) -> SealedSecret | None: ...

    async def update_command(
        self,
        command_id: str,
        *,
        description: str | None = None,
        usage: str | None = None,
        url: str | None = None,
        disabled: bool | None = None,
        secret: SealedSecret | None = None,
    ) -> None: ...

    async def delete_command(self, command_id: str) -> None: ...

    async def command_key_ids(self) -> dict[str, int]:
        """How many slash-command signing secrets each server key sealed (commands of a
        bot have no secret and are not counted)."""
        ...

    async def command_secrets_under(self, key_id: str) -> list[tuple[str, SealedSecret]]:
        """(command id, secret) of every command whose secret `key_id` sealed."""
        ...

    async def insert_invocation(self, invocation: Invocation) -> None: ...

    async def get_invocation(self, invocation_id: str) -> Invocation | None: ...

    async def use_invocation_response(self, invocation_id: str, now: datetime) -> bool:
        """Take one of an invocation's responses: False when it has none left or has
        expired."""
        ...

    async def delete_expired_invocations(self, before: datetime) -> int: ...


class ScimTx(Protocol):
    """SCIM provisioning: its tokens, and the SCIM side of users and groups
    (store/sql/scim.py). `field` of a search is one of the filterable attributes:
    "userName", "externalId" (users), "displayName", "externalId" (groups); None lists
    all. Pages are by id, `offset` counted from 0."""

    async def insert_scim_token(
        self, token_id: str, token_hash: str, name: str, created_by: str | None, now: datetime
    ) -> None: ...

    async def scim_token_for_hash(self, token_hash: str) -> ScimToken | None: ...

    async def list_scim_tokens(self) -> list[ScimToken]: ...

    async def revoke_scim_token(self, token_id: str, now: datetime) -> bool:
        """False when there is no such live token."""
        ...

    async def set_scim_token_used(self, token_id: str, now: datetime) -> None: ...

    async def put_scim_user(self, record: ScimUserRecord) -> None:
        """Insert or replace; Conflict when another user has the userName."""
        ...

    async def get_scim_user(self, scim_id: str) -> ScimUserRecord | None: ...

    async def scim_user_of(self, user_id: str) -> ScimUserRecord | None:
        """The SCIM User an account is, if any."""
        ...

    async def scim_users_by_ids(self, scim_ids: Sequence[str]) -> list[ScimUserRecord]: ...

    async def find_scim_users(
        self, field: str | None, value: str, offset: int, limit: int
    ) -> tuple[int, list[ScimUserRecord]]:
        """The total that match, and one page of them."""
        ...

    async def delete_scim_user(self, scim_id: str) -> None: ...

    async def put_scim_group(self, record: ScimGroupRecord) -> None:
        """Insert or replace; Conflict when another group has the displayName."""
        ...

    async def get_scim_group(self, department_id: str) -> ScimGroupRecord | None: ...

    async def find_scim_groups(
        self, field: str | None, value: str, offset: int, limit: int
    ) -> tuple[int, list[ScimGroupRecord]]: ...

    async def delete_scim_group(self, department_id: str) -> None: ...

    async def scim_members(self, department_id: str) -> list[ScimUserRecord]:
        """The department's members that are SCIM users, by SCIM id."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """A webhook's signing secret as stored: sealed under the server key `key_id`
    (services/keyring.py)."""

    sealed: str
    key_id: str


class WebhooksTx(Protocol):
    """Outgoing webhooks and their delivery log (store/sql/webhooks.py)."""

    async def insert_webhook(self, webhook: Webhook, secret: WebhookSecret) -> None: ...

    async def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    async def get_webhook_secret(self, webhook_id: str) -> WebhookSecret | None: ...

    async def list_webhooks(self, owner_id: str | None) -> list[Webhook]:
        """Every webhook (`owner_id` None) or those one user registered, oldest first."""
        ...

    async def enabled_webhooks(self) -> list[Webhook]: ...

    async def count_webhooks(self, owner_id: str) -> int: ...

    async def update_webhook(self, webhook: Webhook) -> None:
        """Store its url, events, enabled state (and why not), failures, since_position
        and updated_at."""
        ...

    async def set_webhook_secret(self, webhook_id: str, secret: WebhookSecret) -> None: ...

    async def webhook_key_ids(self) -> dict[str, int]:
        """How many webhook secrets each server key sealed."""
        ...

    async def webhook_secrets_under(self, key_id: str) -> list[tuple[str, WebhookSecret]]:
        """(webhook id, secret) of every webhook whose secret `key_id` sealed."""
        ...

    async def delete_webhook(self, webhook_id: str) -> None:
        """The webhook and its delivery log."""
        ...

    async def count_webhook_attempt(self, webhook_id: str, ok: bool) -> int:
        """One attempt's outcome: failures back to 0 on success, else one more.
        Returns the consecutive failures now (-1: no such webhook)."""
        ...

    async def insert_delivery(self, delivery: Delivery, keep: int) -> None:
        """Log one attempt and keep only the newest `keep` of the webhook's log."""
        ...

    async def list_deliveries(
        self, webhook_id: str, before_id: str | None, limit: int
    ) -> list[Delivery]:
        """The webhook's log, newest first (before `before_id`, when given)."""
        ...

    async def conversation_kinds(
        self, conversation_ids: Sequence[str]
    ) -> dict[str, ConversationKind]:
        """The kind of each of these conversations that exists."""
        ...


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as the database knows it: one per sha256 (content addressing)."""

    sha256: str
    blob_key: str
    size: int


@dataclass(frozen=True, slots=True)
class ConversationFile:
    """A file as a conversation's "Files" panel lists it: which message carries it."""

    file: FileInfo
    seq: int
    sender_id: UserId
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class FileUsage:
    """What one user's uploads take (every upload counted, deduplicated or not)."""

    user_id: UserId
    files: int
    bytes: int


class FilesTx(Protocol):
    """Uploads (files), the blobs they share (blobs, one per sha256) and the files
    messages carry (message_attachments; written by append_messages)."""

    async def blob_by_sha256(self, sha256: str) -> StoredBlob | None: ...

    async def insert_blob(self, blob: StoredBlob, now: datetime) -> None: ...

    async def insert_file(self, file: FileInfo) -> None: ...

    async def get_file(self, file_id: str) -> FileInfo | None: ...

    async def files_by_ids(self, file_ids: Sequence[str]) -> dict[str, FileInfo]:
        """The files of these ids that exist (one query)."""
        ...

    async def uploaded_bytes(self, user_id: str) -> int:
        """The sizes of every upload of this user, summed (their quota's use)."""
        ...

    async def can_see_file(self, file_id: str, user_id: str) -> bool:
        """Whether the file is attached to a message (not recalled) of a conversation
        this user is a member of and may read that message in (a removed member: the
        messages before the removal)."""
        ...

    async def conversation_files(
        self,
        conversation_id: str,
        *,
        before_seq: int | None,
        max_seq: int | None,
        limit: int,
        min_seq: int = 1,
    ) -> list[ConversationFile]:
        """The files of the conversation's messages (recalled ones left out), newest
        message first, below `before_seq`, within min_seq..max_seq."""
        ...

    async def messages_with_file(self, file_id: str) -> list[tuple[ConversationId, int]]:
        """(conversation_id, seq) of every message (not recalled) that carries the file."""
        ...

    async def update_file(
        self,
        file_id: str,
        *,
        status: FileStatus,
        width: int | None = None,
        height: int | None = None,
        thumb_key: str | None = None,
        preview_key: str | None = None,
    ) -> bool:
        """Record what the job that follows an upload found and made."""
        ...

    async def file_usage(self) -> list[FileUsage]:
        """Every uploader's files and bytes, the most bytes first."""
        ...

    async def collectable_files(self, created_before: datetime, limit: int) -> list[FileInfo]:
        """Uploads older than `created_before` that no message (not recalled) carries
        and no scheduled message not sent yet names."""
        ...

    async def delete_files(self, file_ids: Sequence[str]) -> None:
        """Delete these files and their attachment rows (of recalled messages)."""
        ...

    async def derived_keys_in_use(self, keys: Sequence[str]) -> set[str]:
        """Which of these thumbnail or preview keys a file still names."""
        ...

    async def orphan_blobs(self, limit: int) -> list[StoredBlob]:
        """Blobs no file references any more."""
        ...

    async def delete_blob_rows(self, sha256s: Sequence[str]) -> None: ...


class NotificationsTx(Protocol):
    """Web Push subscriptions and notification settings (store/sql/notifications.py)."""

    async def put_push_subscription(self, sub: PushSubscription) -> None: ...

    async def count_push_subscriptions(self, user_id: str) -> int: ...

    async def get_push_subscription(self, subscription_id: str) -> PushSubscription | None: ...

    async def push_subscriptions_of(
        self, user_id: str, now: datetime, *, sending: bool = False
    ) -> list[PushSubscription]:
        """The user's subscriptions whose session is live; `sending`: and may read
        messages (not restricted to enrolling a second factor)."""
        ...

    async def delete_push_subscription(self, subscription_id: str) -> bool: ...

    async def delete_push_subscription_by_endpoint(self, user_id: str, endpoint: str) -> bool: ...

    async def delete_push_subscriptions_of_tokens(self, token_ids: list[str]) -> int: ...

    async def delete_push_subscriptions_of_user(
        self, user_id: str, except_token: str | None = None
    ) -> int: ...

    async def reachable_members(
        self, conversation_id: str, *, push: bool, mail: bool
    ) -> list[ReachableMember]:
        """The conversation's active members whom a push (`push`: asked for) or an email
        digest (`mail`) can reach; nobody else."""
        ...

    async def get_notify_settings(self, user_id: str) -> NotifySettings: ...

    async def set_notify_settings(self, user_id: str, settings: NotifySettings) -> None: ...

    async def set_user_email(self, user_id: str, email: str | None) -> None: ...

    async def digest_sent_at(self, user_id: str) -> datetime | None: ...

    async def set_digest_sent_at(self, user_id: str, at: datetime) -> None: ...

    async def missed_items(
        self, user_id: str, since: datetime | None, until: datetime, limit: int
    ) -> tuple[list[MissedItem], int]:
        """Unread direct messages and mentions of the user in (since, until]: the
        oldest `limit` and how many more."""
        ...


class Tx(
    UsersTx,
    ConversationsTx,
    MessagesTx,
    ThreadsTx,
    EventsTx,
    SecurityTx,
    JobsTx,
    IdentityTx,
    OidcTx,
    IntegrationsTx,
    ScimTx,
    WebhooksTx,
    FilesTx,
    NotificationsTx,
    Protocol,
):
    """One transaction (read or write), across every aggregate."""

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the transaction has committed (publish after commit)."""
        ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class Lookups(Protocol):
    """What every new connection reads, one statement each, outside any transaction
    (each its own snapshot): cheaper than a read transaction, see Store.lookup."""

    async def session_for_token(self, token_hash: str, now: datetime) -> Session | None: ...

    async def stream_snapshot(self, user_id: str) -> StreamSnapshot: ...

    async def contacts_of(self, user_id: str) -> list[UserId]: ...


class Store(Protocol):
    def read(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A read-only transaction."""
        ...

    def lookup(self) -> contextlib.AbstractAsyncContextManager[Lookups]:
        """The reads of a new connection, no transaction around them."""
        ...

    def read_replica(
        self, fresh_enough: Callable[[Tx], Awaitable[bool]]
    ) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A read on a replica that is `fresh_enough`, else on the primary."""
        ...

    async def ping(self) -> None:
        """Raise when the primary cannot answer."""
        ...

    def write(
        self, waiting_since: float | None = None, *, urgent: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction; after-commit callbacks run in commit order; `urgent`
        (the send path's group commit) goes before the background writes waiting. Raises
        Unavailable, nothing written, if the database's write lock is not had within
        the bound (write_lock_timeout_seconds) of `waiting_since` (the event loop's
        clock, when the write was asked for; default now)."""
        ...

    async def close(self) -> None: ...
