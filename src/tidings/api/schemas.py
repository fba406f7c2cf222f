"""Request bodies and response shapes (for validation and the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.core.errors import ErrorCode
from tidings.core.models import MAX_STORED_INT


def _no_nul(value: object) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)


class Body(BaseModel):
    """A request body: strict types, no unknown fields, no NUL characters anywhere (no
    store keeps them, and PostgreSQL refuses them)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="after")
    def _reject_nul(self) -> Self:
        for name in type(self).model_fields:
            _no_nul(getattr(self, name))
        return self


class LoginIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=16)
    device: str | None = Field(default=None, max_length=120)


class UserCreateIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["owner", "admin", "member", "guest"] = "member"


class UserPatchIn(Body):
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["owner", "admin", "member", "guest"] | None = None
    disabled: bool | None = None
    email: str | None = Field(
        default=None,
        max_length=320,
        description='where digests go (local accounts; a directory sets its own); "" removes it',
    )


class StatusIn(Body):
    text: str = Field(
        default="", max_length=4096, description="at most custom_status_max_chars (100)"
    )
    emoji: str = Field(default="", max_length=64, description="one emoji, or empty")
    until: str | None = Field(
        default=None,
        max_length=64,
        description="RFC 3339, in the future: from then on the status reads as none",
    )


class ProfilePatchIn(Body):
    """Fields left out stay as they are. `language` / `time_zone` null: the device's
    again; `status` null (or empty text and emoji): no custom status."""

    display_name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=16, description="en or zh-CN")
    time_zone: str | None = Field(
        default=None, max_length=64, description="an IANA name: Asia/Shanghai, UTC"
    )
    theme: str | None = Field(default=None, max_length=16, description="system, light, dark")
    status: StatusIn | None = None


class BotCreateIn(Body):
    username: str = Field(min_length=1, max_length=64)
    display_name: str | None = Field(default=None, max_length=200)


class PasswordIn(Body):
    password: str = Field(min_length=1, max_length=1024)


class DepartmentIn(Body):
    name: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, max_length=64)


class DepartmentPatchIn(Body):
    """A new name, a new parent (`parent_id` null: the top level), or both."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, max_length=64)


class ConversationIn(Body):
    kind: Literal["direct", "group", "channel"]
    name: str | None = Field(default=None, max_length=200)
    topic: str | None = Field(default=None, max_length=1000)
    member_ids: list[str] = Field(default_factory=list, max_length=500)
    private: bool | None = Field(
        default=None,
        description="a private channel: invite-only, not listed in channel browsing "
        "(channels only; groups and direct conversations are always private)",
    )
    announcement: bool | None = Field(
        default=None, description="only owners and moderators post (channels and groups)"
    )
    shared_history: bool | None = Field(
        default=None,
        description="members added later read earlier messages (default: public "
        "channels yes; groups and private channels no)",
    )


class ConversationPatchIn(Body):
    name: str | None = Field(default=None, max_length=200)
    topic: str | None = Field(default=None, max_length=1000)
    private: bool | None = Field(default=None, description="channels only; owners and admins")
    announcement: bool | None = Field(default=None, description="owners and admins")
    shared_history: bool | None = Field(default=None, description="owners and admins")


class RoleIn(Body):
    role: Literal["owner", "moderator", "member"]


class MembersIn(Body):
    user_ids: list[str] = Field(min_length=1, max_length=500)


class SendIn(Body):
    client_msg_id: str = Field(min_length=1, max_length=64)
    body: str
    reply_to_seq: int | None = Field(default=None, ge=1, le=MAX_STORED_INT)
    attachments: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=100,
        description="ids of the caller's uploads (POST /files), at most "
        "max_attachments_per_message",
    )
    thread_root_seq: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STORED_INT,
        description="a reply in the thread of this root (a message of this conversation "
        "that is no reply itself and not recalled)",
    )
    also_to_conversation: bool = Field(
        default=False,
        description="a thread reply shown in the main timeline too (with thread_root_seq)",
    )


class EditIn(Body):
    body: str


class ReadIn(Body):
    seq: int = Field(ge=0, le=MAX_STORED_INT)


class UnreadIn(Body):
    from_seq: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STORED_INT,
        description="the first message to show unread; absent: the last one",
    )


# --- responses (documentation of the shapes; handlers return them as built) -------


class StatusOut(BaseModel):
    text: str
    emoji: str
    until: str | None


class PreferencesOut(BaseModel):
    language: str | None = Field(description="en or zh-CN; null: the device's")
    time_zone: str | None = Field(description="an IANA name; null: the device's")
    theme: str = Field(description="system, light or dark")


class AvatarOut(BaseModel):
    id: str = Field(description="opaque; new at every change")
    updated_at: str
    url: str = Field(
        description="the 256 px rendition: works without a token, immutable (cache it); "
        "stops working when the avatar changes"
    )
    small_url: str = Field(description="the 64 px rendition, as url")


class AvatarIn(Body):
    file_id: str = Field(
        max_length=64, description="one of your own image uploads (POST /files), processed"
    )


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    role: str
    disabled: bool
    department_ids: list[str]
    created_at: str
    bot: bool = Field(default=False, description="a bot account (authenticates with a bot token)")
    email: str | None = Field(default=None, description="the email address, when known")
    origin: str = Field(
        default="local",
        description="who keeps the account: local (made here, its own password), or the "
        "identity provider that provisioned it: ldap, oidc, scim (docs/identity.md)",
    )
    status: StatusOut | None = Field(
        default=None, description="the custom status (none once its `until` has passed)"
    )
    avatar: AvatarOut | None = Field(
        default=None, description="the picture (PUT /users/me/avatar); null: the initials"
    )


class UserEnvelope(BaseModel):
    user: UserOut


class MeOut(UserEnvelope):
    second_factor_required: bool = False
    preferences: PreferencesOut | None = Field(
        default=None, description="the caller's own settings (never shown to others)"
    )


class ProfileOut(UserEnvelope):
    preferences: PreferencesOut


class LoginOut(BaseModel):
    token: str
    user: UserOut
    expires_at: str
    second_factor_required: bool = False


class UsersOut(BaseModel):
    users: list[UserOut]


class BotTokenOut(BaseModel):
    user: UserOut
    token: str = Field(description="the bot token: shown once, only its hash is kept")


class BotOut(BaseModel):
    user: UserOut
    token_created_at: str | None = Field(description="when its live token was issued")
    last_seen_at: str | None = Field(description="when its live token was last used")


class BotsOut(BaseModel):
    bots: list[BotOut]


class DepartmentOut(BaseModel):
    id: str
    name: str
    parent_id: str | None


class DepartmentEnvelope(BaseModel):
    department: DepartmentOut


class DepartmentsOut(BaseModel):
    departments: list[DepartmentOut]


class MemberOut(BaseModel):
    user_id: str
    role: Literal["owner", "moderator", "member"]
    read_seq: int
    joined_at: str


class MemberEnvelope(BaseModel):
    member: MemberOut


class ConversationOut(BaseModel):
    id: str
    kind: str
    name: str
    topic: str
    created_by: str
    created_at: str
    last_seq: int
    last_activity_at: str
    member_count: int
    archived_at: str | None = None
    private: bool = False
    announcement: bool = False
    shared_history: bool = True
    role: str | None = None
    read_seq: int | None = None
    unread: int | None = Field(
        default=None,
        description="messages after read_seq that the main timeline shows (thread replies"
        " not also sent to the conversation are their threads' unread, not counted here)",
    )
    unread_mentions: int | None = Field(
        default=None,
        description="of those, the ones mentioning the caller: by name, or everyone"
        " (@all, @channel, @here of others; not at level none nor while muted)",
    )
    notifications: ConversationNotificationsOut | None = Field(
        default=None, description="the caller's settings here (their own list only)"
    )
    joined: bool | None = None
    members: list[MemberOut] | None = None


class ConversationNotificationsOut(BaseModel):
    """A member's notification settings in a conversation (only ever their own)."""

    level: Literal["all", "mentions", "none"] | None = Field(
        description="null: the kind's default (all in direct and group conversations, "
        "mentions in channels)"
    )
    muted: bool
    muted_until: str | None = Field(description="RFC 3339; null with muted: until unmuted")


class ConversationNotificationsIn(Body):
    """Fields left out stay as they are."""

    level: Literal["all", "mentions", "none"] | None = Field(
        default=None, description="null: back to the kind's default"
    )
    muted: bool | None = Field(default=None, description="false unmutes (and clears the time)")
    muted_until: str | None = Field(
        default=None,
        max_length=64,
        description="RFC 3339, in the future: muted until then (implies muted)",
    )


class ConversationNotificationsEnvelope(BaseModel):
    conversation_id: str
    notifications: ConversationNotificationsOut


class DndScheduleIO(Body):
    start: str = Field(min_length=5, max_length=5, description='local "HH:MM" (24-hour)')
    end: str = Field(
        min_length=5, max_length=5, description='local "HH:MM"; before start: across midnight'
    )


class DndOut(BaseModel):
    until: str | None = Field(description="RFC 3339: on until then; null: off by time")
    schedule: DndScheduleIO | None = Field(
        description="every day, in the profile's time_zone (UTC when none)"
    )


class MentionAllOut(BaseModel):
    """Who may mention everyone (@all, @channel, @here): settings mention_all_*."""

    min_role: Literal["member", "moderator", "owner"]
    large_min_role: Literal["member", "moderator", "owner"]
    large_members: int = Field(description="a conversation of more members is large")
    confirm_members: int = Field(description="clients ask before mentioning more (0: always)")


class UserNotificationsOut(BaseModel):
    dnd: DndOut
    dnd_active: bool = Field(description="whether do not disturb is on now")
    time_zone: str | None = Field(description="the profile's, which the schedule follows")
    mention_all: MentionAllOut


class UserNotificationsIn(Body):
    """Fields left out stay as they are; null turns that part off."""

    dnd_until: str | None = Field(
        default=None, max_length=64, description="RFC 3339, in the future"
    )
    dnd_schedule: DndScheduleIO | None = None


class ConversationEnvelope(BaseModel):
    conversation: ConversationOut


class ConversationsOut(BaseModel):
    conversations: list[ConversationOut]


class FileOut(BaseModel):
    """A file object: what an upload is (never where its bytes are)."""

    id: str
    name: str
    size: int
    content_type: str = Field(description="sniffed from the bytes, never the client's alone")
    sha256: str
    created_at: str
    uploader_id: str
    width: int | None = None
    height: int | None = None
    has_thumbnail: bool = False
    status: Literal["processing", "ready", "quarantined"]


class FileEnvelope(BaseModel):
    file: FileOut


class FileLinkIn(Body):
    variant: Literal["original", "thumbnail", "preview"] = "original"


class FileLinkOut(BaseModel):
    url: str = Field(description="absolute path; works without a token until expires_at")
    expires_at: str


class ConversationFileOut(BaseModel):
    file: FileOut
    seq: int
    sender_id: str
    sent_at: str


class ConversationFilesOut(BaseModel):
    files: list[ConversationFileOut]
    next_cursor: str | None = Field(description="give as cursor for the next (older) page")


class FileUsageOut(BaseModel):
    user_id: str
    files: int
    bytes: int


class FilesUsageOut(BaseModel):
    usage: list[FileUsageOut]


class MessageRefOut(BaseModel):
    conversation_id: str
    seq: int


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    seq: int
    client_msg_id: str
    sender_id: str
    body: str
    reply_to_seq: int | None
    mentions: list[str]
    reactions: dict[str, list[str]]
    created_at: str
    edited_at: str | None
    deleted: bool
    attachments: list[FileOut] = Field(
        default_factory=list, description="the message's files (none once it is recalled)"
    )
    thread_root_seq: int | None = Field(
        default=None, description="set: a reply in the thread of that root"
    )
    also_to_conversation: bool = Field(
        default=False, description="a thread reply shown in the main timeline too"
    )
    mentions_everyone: Literal["all", "channel", "here"] | None = Field(
        default=None, description="@all / @channel (every member) or @here (those online)"
    )
    forwarded_from: MessageRefOut | None = Field(
        default=None,
        description="on a forwarded copy only: the message it was forwarded from",
    )


class MessageEnvelope(BaseModel):
    message: MessageOut


class PinOut(BaseModel):
    seq: int
    pinned_by: str
    pinned_at: str
    message: MessageOut


class PinEnvelope(BaseModel):
    pin: PinOut


class PinsOut(BaseModel):
    pins: list[PinOut] = Field(description="the newest pin first")


class MessagesOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class ThreadStateOut(BaseModel):
    following: bool = Field(
        description="explicitly chosen, else true for the root's author and every replier"
    )
    read_seq: int = Field(description="the caller's read position in the thread")
    unread: int = Field(description="others' replies after read_seq (0 when not following)")


class ThreadOut(ThreadStateOut):
    conversation_id: str
    root_seq: int
    reply_count: int = Field(description="replies, recalled ones not counted")
    last_reply_seq: int | None
    last_reply_at: str | None
    participants: list[str] = Field(
        description="user ids of the repliers, the most recent first, at most "
        "thread_participants_max"
    )
    root: MessageOut


class ThreadEnvelope(BaseModel):
    thread: ThreadOut


class ThreadsOut(BaseModel):
    threads: list[ThreadOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: none")


class ThreadStateEnvelope(BaseModel):
    thread: ThreadStateOut


class ReadOut(BaseModel):
    read_seq: int
    unread: int = Field(description="the caller's unread from read_seq (thread-only replies out)")


class EventOut(BaseModel):
    position: str
    event: dict[str, object]


class SyncOut(BaseModel):
    events: list[EventOut]
    next: str
    more: bool


class PresenceOut(BaseModel):
    presence: dict[str, str]


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: dict[str, object]


class ErrorOut(BaseModel):
    error: ErrorBody


# --- timeline: saved messages, mark unread (issue 17) --------------------------------
class SavedOut(BaseModel):
    conversation_id: str
    seq: int
    saved_at: str
    message: MessageOut


class SavedEnvelope(BaseModel):
    saved: SavedOut


class SavedListOut(BaseModel):
    saved: list[SavedOut] = Field(description="the newest save first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: none")


class ForwardIn(Body):
    conversation_id: str = Field(min_length=1, max_length=64, description="where to forward it")
    client_msg_id: str = Field(min_length=1, max_length=64)


class ForwardOriginOut(BaseModel):
    conversation_id: str
    conversation_name: str
    conversation_kind: str
    seq: int
    sender_id: str


class ForwardOriginEnvelope(BaseModel):
    origin: ForwardOriginOut


# --- scheduled messages (issue 17) ------------------------------------------------------
class ScheduleIn(Body):
    body: str
    send_at: str = Field(
        max_length=64,
        description="RFC 3339 with a zone, in the future, at most "
        "scheduled_max_horizon_days ahead",
    )
    reply_to_seq: int | None = Field(default=None, ge=1, le=MAX_STORED_INT)
    thread_root_seq: int | None = Field(
        default=None, ge=1, le=MAX_STORED_INT, description="a reply in the thread of this root"
    )
    also_to_conversation: bool = Field(
        default=False,
        description="a thread reply shown in the main timeline too (with thread_root_seq)",
    )
    attachments: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=100,
        description="ids of the caller's uploads (POST /files), at most "
        "max_attachments_per_message",
    )


class ScheduleEditIn(Body):
    body: str | None = Field(default=None, description="the new body (null: unchanged)")
    send_at: str | None = Field(
        default=None, max_length=64, description="the new time, RFC 3339 (null: unchanged)"
    )


class ScheduledOut(BaseModel):
    id: str
    conversation_id: str
    body: str
    send_at: str
    state: Literal["pending", "sending", "sent", "failed", "cancelled"]
    reply_to_seq: int | None
    thread_root_seq: int | None
    also_to_conversation: bool
    attachments: list[str] = Field(description="ids of the files it will carry")
    failure: str | None = Field(description="why it failed (state failed), else null")
    sent_seq: int | None = Field(description="the message's seq once sent, else null")
    version: int = Field(description="grows with each change")
    created_at: str
    updated_at: str


class ScheduledEnvelope(BaseModel):
    scheduled: ScheduledOut


class ScheduledListOut(BaseModel):
    scheduled: list[ScheduledOut] = Field(
        description="pending, sending and failed ones, the soonest first"
    )
