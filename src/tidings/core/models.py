"""Domain values: frozen, slotted dataclasses and the enums they use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import NewType

UserId = NewType("UserId", str)
ConversationId = NewType("ConversationId", str)
DepartmentId = NewType("DepartmentId", str)
MessageId = NewType("MessageId", str)
FileId = NewType("FileId", str)
TokenId = NewType("TokenId", str)
Position = NewType("Position", int)

# The largest integer the store holds (its columns are 64-bit signed): every integer a
# client sends (a seq, a position) is bounded by it at the edge.
MAX_STORED_INT = 2**63 - 1


class OrgRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    GUEST = "guest"

    @property
    def is_admin(self) -> bool:
        return self in (OrgRole.OWNER, OrgRole.ADMIN)


class UserOrigin(StrEnum):
    """Where an account comes from and who keeps it in step: made here (`local`, a
    password of its own), or provisioned by an identity provider (services/identity.py)."""

    LOCAL = "local"
    LDAP = "ldap"
    OIDC = "oidc"
    SCIM = "scim"


class ConversationKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"
    CHANNEL = "channel"


class MemberRole(StrEnum):
    """A member's role in one conversation (docs/protocol.md, "Conversation roles", has
    the table of what each may do; core/rules.py checks it)."""

    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"

    @property
    def moderates(self) -> bool:
        """An owner or a moderator: posts in announcement channels, pins, renames,
        removes members, recalls others' messages."""
        return self in (MemberRole.OWNER, MemberRole.MODERATOR)


class PresenceState(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


@dataclass(frozen=True, slots=True)
class CustomStatus:
    """A custom status: text and/or an emoji, until a time (None: until cleared)."""

    text: str
    emoji: str
    until: datetime | None = None

    def at(self, now: datetime) -> CustomStatus | None:
        """This status as it reads at `now`: None once it has expired."""
        if self.until is not None and self.until <= now:
            return None
        return self


@dataclass(frozen=True, slots=True)
class Preferences:
    """A user's own settings: the web client's language (None: the device's), time zone
    (an IANA name; None: the device's) and theme."""

    language: str | None = None
    time_zone: str | None = None
    theme: Theme = Theme.SYSTEM


@dataclass(frozen=True, slots=True)
class Avatar:
    """A user's picture (services/avatars.py): square renditions cut from an image they
    uploaded. `id` is opaque and new at every change: it names this avatar in its URL
    (so a URL is immutable and changes when the avatar does); `sha256` (of the large
    rendition) addresses its blobs and is its ETag. Only `id` and `updated_at` are on the
    wire, so the other two take no part in equality."""

    id: str
    updated_at: datetime
    sha256: str = field(default="", compare=False)
    content_type: str = field(default="image/jpeg", compare=False)


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    username: str
    display_name: str
    role: OrgRole
    disabled: bool
    created_at: datetime
    department_ids: tuple[DepartmentId, ...] = ()
    # a bot account: no password, authenticates with a bot token (services/bots.py)
    bot: bool = False
    email: str | None = None
    origin: UserOrigin = UserOrigin.LOCAL
    # what others see beside the name (services/profile.py); past `status.until` it
    # reads as no status (CustomStatus.at)
    status: CustomStatus | None = None
    # the owner's own choices, never shown to others (services/profile.py)
    preferences: Preferences = Preferences()
    # the picture beside the name (services/avatars.py); None: the initials
    avatar: Avatar | None = None


@dataclass(frozen=True, slots=True)
class ExternalProfile:
    """An account as an identity provider (LDAP, OIDC, SCIM) describes it, already mapped
    to Tidings' terms: what services/identity.py:provision makes the account look like.

    `departments`: department paths ("Engineering/Platform": each segment a department,
    nested; created when missing); None leaves the account's departments as they are, a
    tuple (even empty) makes them exactly these. `role` None: a new account is a member,
    an existing one keeps its role. `display_name` None: the username; `email` None:
    none (it is cleared)."""

    username: str
    display_name: str | None = None
    email: str | None = None
    departments: tuple[str, ...] | None = None
    role: OrgRole | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """An account is the identity `subject` of `provider` ("ldap", "oidc:<name>",
    "scim"): a directory entry's UUID, an ID token's `sub`, a SCIM id."""

    provider: str
    subject: str
    user_id: UserId
    created_at: datetime
    last_seen_at: datetime | None
    # the provider disabled the account: it may enable it again (an admin's disable, never)
    disabled_by_provider: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated device: the token's row, never the token itself."""

    token_id: TokenId
    user: User
    device: str
    expires_at: datetime
    # set when the organization requires a second factor this account has not enrolled:
    # the session may only enrol one (services/second_factor.py) and log out
    enrol_only: bool = False
    last_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One device session as its owner (or an admin) sees it in a list."""

    token_id: TokenId
    device: str
    created_at: datetime
    last_seen_at: datetime | None
    address: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class BotInfo:
    """A bot account as an admin sees it in a list: its live token, if it has one."""

    user: User
    token: SessionInfo | None


class SecondFactorPolicy(StrEnum):
    """Who must have a second factor: an organization setting."""

    NONE = "none"
    ADMINS = "admins"
    EVERYONE = "everyone"

    def applies_to(self, role: OrgRole) -> bool:
        if self is SecondFactorPolicy.EVERYONE:
            return True
        return self is SecondFactorPolicy.ADMINS and role.is_admin


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record of the append-only audit log, chained to the previous by `hash`."""

    seq: int
    at: datetime
    action: str
    actor_id: str | None
    target_id: str | None
    address: str
    details: dict[str, object]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Department:
    id: DepartmentId
    name: str
    parent_id: DepartmentId | None


class NotifyLevel(StrEnum):
    ALL = "all"
    MENTIONS = "mentions"
    NONE = "none"


def default_level(kind: ConversationKind) -> NotifyLevel:
    """The level of a member who never chose one."""
    return NotifyLevel.MENTIONS if kind is ConversationKind.CHANNEL else NotifyLevel.ALL


@dataclass(frozen=True, slots=True)
class DndSchedule:
    """Do not disturb every day from `start` to `end` (local times, minutes; `start`
    != `end`). `end` before `start`: the schedule crosses midnight."""

    start: time
    end: time

    def covers(self, local: time) -> bool:
        """Whether the local wall-clock time `local` is within the schedule (from
        `start`, inclusive, to `end`, exclusive)."""
        at = local.replace(second=0, microsecond=0, tzinfo=None)
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end


@dataclass(frozen=True, slots=True)
class Dnd:
    """A user's do not disturb: until a time (None: not on by time) and/or a daily
    schedule (None: none). Stored on the user (users.dnd_until, dnd_start, dnd_end)."""

    until: datetime | None = None
    schedule: DndSchedule | None = None


@dataclass(frozen=True, slots=True)
class MemberNotify:
    """One member's settings in one conversation (members.notify_level, muted,
    muted_until): `level` None is the kind's default (default_level); `muted` with
    `muted_until` None: until unmuted."""

    level: NotifyLevel | None = None
    muted: bool = False
    muted_until: datetime | None = None

    def level_for(self, kind: ConversationKind) -> NotifyLevel:
        return default_level(kind) if self.level is None else self.level

    def muted_at(self, now: datetime) -> bool:
        return self.muted and (self.muted_until is None or now < self.muted_until)


@dataclass(frozen=True, slots=True)
class Member:
    conversation_id: ConversationId
    user_id: UserId
    role: MemberRole
    read_seq: int
    joined_at: datetime
    joined_pos: int
    left_pos: int | None = None
    left_seq: int | None = None
    removed_by: UserId | None = None  # who removed them, when someone else did (not a leave)
    # the lowest seq they may read: 1, or (history not shared with new members) the first
    # seq after the one they joined at
    first_seq: int = 1
    # their notification settings here (services/notifications.py; core/notify.py)
    notify: MemberNotify = MemberNotify()

    @property
    def active(self) -> bool:
        return self.left_pos is None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: ConversationId
    kind: ConversationKind
    name: str
    topic: str
    created_by: UserId
    created_at: datetime
    last_seq: int
    last_activity_at: datetime
    member_count: int
    archived_at: datetime | None = None  # archived: read-only, hidden from lists by default
    # a private channel: invite-only, not in channel browsing nor visible to non-members
    # (groups and direct conversations are always private: this is for channels)
    private: bool = False
    # an announcement conversation: only owners and moderators post (core/rules.py:
    # check_can_post); everyone may react and reply in threads
    announcement: bool = False
    # members added later read the history from seq 1 (True) or only from when they
    # joined (False: the default of groups and private channels)
    shared_history: bool = True


@dataclass(frozen=True, slots=True)
class MemberView:
    """A conversation as one member sees it in a list. `thread_only`: the thread
    replies after the member's read position that were not also sent to the
    conversation (its main timeline does not show them: they are its threads' unread,
    not the conversation's). `unread_mentions`: the unread messages of the main
    timeline that mention the member (by name, or everyone as the notification
    levels allow: core/notify.py:counts_everyone); `everyone_mentions`: those that
    mention everyone, as the store counts them, before that rule is applied (the
    service adds them to `unread_mentions` or not, and leaves 0 here)."""

    conversation: Conversation
    member: Member
    unread_mentions: int
    thread_only: int = 0
    everyone_mentions: int = 0

    @property
    def unread(self) -> int:
        return max(0, self.conversation.last_seq - self.member.read_seq - self.thread_only)


class FileStatus(StrEnum):
    """What became of an upload: `processing` until the job that follows it (image
    sizes, thumbnails, a scan) is done, then `ready`; `quarantined`: a scan flagged it
    (never served)."""

    PROCESSING = "processing"
    READY = "ready"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One upload: its own name and uploader; its bytes are the blob `blob_key` (shared
    with every other upload of the same sha256). `inline_safe`: a raster image whose
    bytes end where its format ends (no appended document): may be shown inline."""

    id: FileId
    uploader_id: UserId
    name: str
    size: int
    content_type: str
    sha256: str
    blob_key: str
    created_at: datetime
    status: FileStatus = FileStatus.PROCESSING
    inline_safe: bool = False
    width: int | None = None
    height: int | None = None
    thumb_key: str | None = None
    preview_key: str | None = None

    @property
    def has_thumbnail(self) -> bool:
        return self.thumb_key is not None


@dataclass(frozen=True, slots=True)
class Message:
    id: MessageId
    conversation_id: ConversationId
    seq: int
    client_msg_id: str
    sender_id: UserId
    body: str
    reply_to_seq: int | None
    mentions: tuple[UserId, ...]
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False
    reactions: dict[str, list[UserId]] = field(default_factory=dict)
    attachments: tuple[FileInfo, ...] = ()  # in their order in the send
    # a reply in the thread of the root message `thread_root_seq` (same conversation);
    # `also_to_conversation`: shown in the main timeline too (issue 17)
    thread_root_seq: int | None = None
    also_to_conversation: bool = False
    # a forwarded copy: the message it was forwarded from (migration 0021)
    forwarded_from: MessageRef | None = None


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a message is: conversation and seq (a forwarded copy's original)."""

    conversation_id: ConversationId
    seq: int


@dataclass(frozen=True, slots=True)
class ForwardOrigin:
    """The original of a forwarded message, resolved for someone who may read it."""

    conversation: Conversation
    seq: int
    sender_id: UserId


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """A root's thread as every member sees it: how many replies it has (recalled ones
    not counted), when the last of them was sent, and who wrote them (`participants`:
    distinct senders, the most recent first, capped by the setting
    thread_participants_max). `reply_count` 0: no visible reply left."""

    conversation_id: ConversationId
    root_seq: int
    reply_count: int
    last_reply_seq: int | None
    last_reply_at: datetime | None
    participants: tuple[UserId, ...]


@dataclass(frozen=True, slots=True)
class ThreadState:
    """One user's relation to a thread: whether they follow it (explicitly, else by
    default: its root's author and everyone who replied), how far they have read it,
    and how many replies of others after that they have not (0 when not following)."""

    following: bool
    read_seq: int
    unread: int


@dataclass(frozen=True, slots=True)
class ThreadView:
    """A thread in a list: its root message, its summary, the caller's state."""

    root: Message
    summary: ThreadSummary
    state: ThreadState


@dataclass(frozen=True, slots=True)
class Pin:
    """Message `seq` of a conversation is pinned, by `pinned_by` at `pinned_at`."""

    conversation_id: ConversationId
    seq: int
    pinned_by: UserId
    pinned_at: datetime


@dataclass(frozen=True, slots=True)
class SavedMessage:
    """`user_id` saved message `seq` of a conversation at `saved_at` (private to them).
    `position` is that of its `message_saved` event: the list's order and cursor."""

    user_id: UserId
    conversation_id: ConversationId
    seq: int
    saved_at: datetime
    position: int


class ScheduledState(StrEnum):
    """A scheduled message's life: `pending` (editable, cancellable) until its job claims
    it at `send_at` (`sending`: no more edits), then `sent` (`sent_seq` is the message's
    seq) or `failed` (`failure` says why: the sender may no longer post there, ...);
    `cancelled` by its sender."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ScheduledMessage:
    """A message `sender_id` asked to be sent to a conversation at `send_at` (private to
    them until it is sent). `version` grows with every change: the delivery job of an
    older version does nothing (an edit of `send_at` enqueues a new one)."""

    id: str
    sender_id: UserId
    conversation_id: ConversationId
    body: str
    send_at: datetime
    state: ScheduledState
    created_at: datetime
    updated_at: datetime
    version: int = 1
    reply_to_seq: int | None = None
    thread_root_seq: int | None = None
    also_to_conversation: bool = False
    failure: str | None = None
    sent_seq: int | None = None
    attachments: tuple[str, ...] = ()  # file ids, the sender's uploads, in their order


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with its stream position. `payload` is the wire dict (JSON-ready)."""

    position: int
    conversation_id: ConversationId | None
    user_id: UserId | None
    payload: dict[str, object]
