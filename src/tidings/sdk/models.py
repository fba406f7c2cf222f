"""Typed, immutable views of the objects the Tidings server sends.

Every model is a frozen, slotted dataclass built from the server's JSON by a
``from_json`` class method. Parsing is tolerant: fields the server adds later are
kept in ``raw`` and fields it leaves out get neutral defaults, so an SDK of this
version keeps working against a newer server (the protocol only ever adds fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

JSONObject = dict[str, Any]
"""A decoded JSON object, as the server sent it."""


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (``2026-11-28T23:59:01.123456Z``) or return None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _str(value: object, default: str = "") -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (str, float)):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    return _int(value)


def _str_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(_str(v) for v in value)


def _obj(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A person or a bot account."""

    id: str
    username: str
    display_name: str = ""
    role: str = "member"
    """``owner``, ``admin``, ``member`` or ``guest``."""
    disabled: bool = False
    department_ids: tuple[str, ...] = ()
    created_at: datetime | None = None
    bot: bool = False
    """A bot account (it signs in with a bot token)."""
    email: str | None = None
    origin: str = "local"
    """``local``, or the identity provider that keeps the account: ``ldap``, ``oidc``,
    ``scim``."""
    status: CustomStatus | None = None
    """The custom status shown beside presence (see :meth:`CustomStatus.at`)."""
    avatar: Avatar | None = None
    """The picture beside the name; None: none (clients show the initials)."""
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> User:
        """Build a user from its JSON object."""
        status = data.get("status")
        return cls(
            id=_str(data.get("id")),
            username=_str(data.get("username")),
            display_name=_str(data.get("display_name")),
            role=_str(data.get("role"), "member"),
            disabled=bool(data.get("disabled", False)),
            department_ids=_str_tuple(data.get("department_ids")),
            created_at=parse_time(data.get("created_at")),
            bot=bool(data.get("bot", False)),
            email=_opt_str(data.get("email")),
            origin=_str(data.get("origin"), "local"),
            status=CustomStatus.from_json(status) if isinstance(status, dict) else None,
            avatar=Avatar.from_json(avatar)
            if isinstance(avatar := data.get("avatar"), dict)
            else None,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Avatar:
    """A user's avatar. ``url`` (256 px) and ``small_url`` (64 px) are paths on the
    server that need no token (an ``<img>`` can show them), immutable: they change when
    the avatar does, and stop working then."""

    id: str
    updated_at: datetime | None = None
    url: str = ""
    small_url: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Avatar:
        return cls(
            id=_str(data.get("id")),
            updated_at=parse_time(data.get("updated_at")),
            url=_str(data.get("url")),
            small_url=_str(data.get("small_url")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomStatus:
    """A custom status: ``text`` and/or ``emoji``, until ``until`` (None: until
    cleared). Past ``until`` it reads as none: see :meth:`at`."""

    text: str = ""
    emoji: str = ""
    until: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CustomStatus:
        return cls(
            text=_str(data.get("text")),
            emoji=_str(data.get("emoji")),
            until=parse_time(data.get("until")),
        )

    def at(self, now: datetime) -> CustomStatus | None:
        """This status as it reads at ``now`` (timezone-aware): None once expired."""
        return None if self.until is not None and self.until <= now else self


@dataclass(frozen=True, slots=True, kw_only=True)
class Preferences:
    """The signed-in account's own settings (never shown to others)."""

    language: str | None = None
    """``en`` or ``zh-CN``; None: the device's."""
    time_zone: str | None = None
    """An IANA name; None: the device's."""
    theme: str = "system"
    """``system``, ``light`` or ``dark``."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Preferences:
        return cls(
            language=_opt_str(data.get("language")),
            time_zone=_opt_str(data.get("time_zone")),
            theme=_str(data.get("theme"), "system"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationNotifications:
    """Your notification settings in one conversation (docs/protocol.md,
    "Notifications")."""

    level: str | None = None
    """``all``, ``mentions`` or ``none``; None: the kind's default (``all`` in direct and
    group conversations, ``mentions`` in channels)."""
    muted: bool = False
    muted_until: datetime | None = None
    """With ``muted``: until then (None: until unmuted)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConversationNotifications:
        return cls(
            level=_opt_str(data.get("level")),
            muted=bool(data.get("muted", False)),
            muted_until=parse_time(data.get("muted_until")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DoNotDisturb:
    """Your do not disturb: ``until`` a time and/or a daily ``schedule`` (``(start,
    end)`` as local ``"HH:MM"`` in your profile's time zone; end before start crosses
    midnight). ``active``: on now (from ``GET``/``PUT /users/me/notifications`` only)."""

    until: datetime | None = None
    schedule: tuple[str, str] | None = None
    active: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], active: object = None) -> DoNotDisturb:
        raw = data.get("schedule")
        schedule = None
        if isinstance(raw, Mapping):
            schedule = (_str(raw.get("start")), _str(raw.get("end")))
        return cls(
            until=parse_time(data.get("until")),
            schedule=schedule,
            active=None if active is None else bool(active),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSession:
    """One signed-in device of the account (``GET /sessions``)."""

    id: str
    device: str = ""
    address: str = ""
    created_at: datetime | None = None
    last_seen_at: datetime | None = None
    expires_at: datetime | None = None
    current: bool = False
    """The session this client is signed in with."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceSession:
        return cls(
            id=_str(data.get("id")),
            device=_str(data.get("device")),
            address=_str(data.get("address")),
            created_at=parse_time(data.get("created_at")),
            last_seen_at=parse_time(data.get("last_seen_at")),
            expires_at=parse_time(data.get("expires_at")),
            current=bool(data.get("current", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondFactor:
    """The signed-in account's second factor (``GET /auth/totp``)."""

    enabled: bool
    recovery_codes_left: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TotpEnrolment:
    """A second factor being enrolled: add ``otpauth_uri`` (or ``secret``) to an
    authenticator app, or show ``qr_png`` (a ``data:image/png`` URI), then confirm with
    :meth:`Client.enable_totp`."""

    secret: str
    otpauth_uri: str
    qr_png: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Department:
    """A node of the organisation's department tree."""

    id: str
    name: str
    parent_id: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Department:
        """Build a department from its JSON object."""
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            parent_id=_opt_str(data.get("parent_id")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScimToken:
    """A SCIM provisioning token as admins see it (``Client.scim_tokens``); the token
    itself is only ever returned by ``Client.issue_scim_token``, once."""

    id: str
    name: str
    created_by: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScimToken:
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            created_by=_opt_str(data.get("created_by")),
            created_at=parse_time(data.get("created_at")),
            last_used_at=parse_time(data.get("last_used_at")),
            revoked_at=parse_time(data.get("revoked_at")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInfo:
    """A durable job as admins see it (``Client.jobs``): its state is one of
    ``pending``, ``queued``, ``running``, ``done``, ``dead`` (a dead letter)."""

    id: str
    kind: str
    queue: str
    state: str
    attempts: int
    max_attempts: int
    payload: JSONObject = field(default_factory=dict)
    run_after: datetime | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobInfo:
        payload = data.get("payload")
        return cls(
            id=_str(data.get("id")),
            kind=_str(data.get("kind")),
            queue=_str(data.get("queue")),
            state=_str(data.get("state")),
            attempts=int(data.get("attempts") or 0),
            max_attempts=int(data.get("max_attempts") or 0),
            payload=dict(payload) if isinstance(payload, Mapping) else {},
            run_after=parse_time(data.get("run_after")),
            created_at=parse_time(data.get("created_at")),
            finished_at=parse_time(data.get("finished_at")),
            last_error=_opt_str(data.get("last_error")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    """The job queues (``Client.job_stats``): jobs per queue and state, how long the
    oldest due job has waited, the dead letters, each event consumer's lag behind the
    event stream, and the broker's queue depths (empty without RabbitMQ)."""

    queues: dict[str, dict[str, int]] = field(default_factory=dict)
    oldest_waiting_seconds: float | None = None
    dead: int = 0
    consumer_lag: dict[str, int] = field(default_factory=dict)
    broker: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobStats:
        def counts(value: object) -> dict[str, int]:
            return {str(k): int(v) for k, v in value.items()} if isinstance(value, Mapping) else {}

        queues = data.get("queues")
        wait = data.get("oldest_waiting_seconds")
        return cls(
            queues={str(q): counts(c) for q, c in queues.items()}
            if isinstance(queues, Mapping)
            else {},
            oldest_waiting_seconds=None if wait is None else float(wait),
            dead=int(data.get("dead") or 0),
            consumer_lag=counts(data.get("consumer_lag")),
            broker=counts(data.get("broker")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginInfo:
    """A server plugin the node loaded (``GET /admin/plugins``, admins): its hooks, what
    happens when one fails, and its counts since the node started."""

    name: str
    source: str = ""
    hooks: tuple[str, ...] = ()
    fail_closed: bool = False
    before_message: dict[str, int] = field(default_factory=dict)
    after_event: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PluginInfo:
        """Build a plugin's view from its JSON object."""

        def counts(value: object) -> dict[str, int]:
            return {str(k): _int(v) for k, v in value.items()} if isinstance(value, dict) else {}

        hooks = data.get("hooks")
        return cls(
            name=_str(data.get("name")),
            source=_str(data.get("source")),
            hooks=tuple(_str(h) for h in hooks) if isinstance(hooks, list) else (),
            fail_closed=data.get("fail_closed") is True,
            before_message=counts(data.get("before_message")),
            after_event=counts(data.get("after_event")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One member of a conversation, as listed by ``GET /conversations/{cid}``."""

    user_id: str
    role: str = "member"
    read_seq: int = 0
    joined_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        """Build a member from its JSON object."""
        return cls(
            user_id=_str(data.get("user_id")),
            role=_str(data.get("role"), "member"),
            read_seq=_int(data.get("read_seq")),
            joined_at=parse_time(data.get("joined_at")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """A direct conversation, a group or a channel.

    The caller-specific fields (``role``, ``read_seq``, ``unread``,
    ``unread_mentions``, ``joined``) are ``None`` where the server did not send them;
    ``members`` is ``None`` except on :meth:`tidings.sdk.Client.conversation`.
    """

    id: str
    kind: str
    """``direct``, ``group`` or ``channel``."""
    name: str | None = None
    topic: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    last_seq: int = 0
    last_activity_at: datetime | None = None
    member_count: int = 0
    archived_at: datetime | None = None
    """Set while the conversation is archived (read-only)."""
    private: bool = False
    """A private channel (invite-only, not in channel browsing); groups and direct
    conversations are always private."""
    announcement: bool = False
    """Only owners and moderators post (everyone reacts and replies in threads)."""
    shared_history: bool = True
    """Members added later read earlier messages (False: only from when they joined)."""
    role: str | None = None
    read_seq: int | None = None
    unread: int | None = None
    """The messages after ``read_seq`` that the main timeline shows: thread replies not
    also sent to the conversation are left out (their threads count them)."""
    unread_mentions: int | None = None
    """Of those, the ones that mention you: by name, or everyone (``@all``,
    ``@channel``, ``@here`` of others; not at level ``none`` nor while muted)."""
    notifications: ConversationNotifications | None = None
    """Your settings here (in your own conversation list)."""
    joined: bool | None = None
    members: tuple[Member, ...] | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Conversation:
        """Build a conversation from its JSON object."""
        members = data.get("members")
        joined = data.get("joined")
        return cls(
            id=_str(data.get("id")),
            kind=_str(data.get("kind")),
            name=_opt_str(data.get("name")),
            topic=_opt_str(data.get("topic")),
            created_by=_opt_str(data.get("created_by")),
            created_at=parse_time(data.get("created_at")),
            last_seq=_int(data.get("last_seq")),
            last_activity_at=parse_time(data.get("last_activity_at")),
            member_count=_int(data.get("member_count")),
            archived_at=parse_time(data.get("archived_at")),
            private=bool(data.get("private", False)),
            announcement=bool(data.get("announcement", False)),
            shared_history=bool(data.get("shared_history", True)),
            role=_opt_str(data.get("role")),
            read_seq=_opt_int(data.get("read_seq")),
            unread=_opt_int(data.get("unread")),
            unread_mentions=_opt_int(data.get("unread_mentions")),
            notifications=(
                ConversationNotifications.from_json(notes)
                if isinstance(notes := data.get("notifications"), Mapping)
                else None
            ),
            joined=None if joined is None else bool(joined),
            members=(
                tuple(Member.from_json(_obj(m)) for m in members)
                if isinstance(members, list)
                else None
            ),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class File:
    """An uploaded file (``POST /files``), as a message's attachment or on its own.
    ``content_type`` is what the server sniffed from the bytes."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str
    uploader_id: str
    created_at: datetime | None = None
    width: int | None = None
    height: int | None = None
    has_thumbnail: bool = False
    status: str = "processing"
    """``processing`` until the job after the upload is done, then ``ready``;
    ``quarantined``: flagged by a scan (never served)."""
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> File:
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            size=_int(data.get("size")),
            content_type=_str(data.get("content_type")),
            sha256=_str(data.get("sha256")),
            uploader_id=_str(data.get("uploader_id")),
            created_at=parse_time(data.get("created_at")),
            width=_opt_int(data.get("width")),
            height=_opt_int(data.get("height")),
            has_thumbnail=bool(data.get("has_thumbnail", False)),
            status=_str(data.get("status"), "processing"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileLink:
    """A signed URL (``POST /files/{id}/link``) that reads a file without a token."""

    url: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A stored message. ``seq`` numbers the messages of a conversation 1, 2, 3, …"""

    id: str
    conversation_id: str
    seq: int
    client_msg_id: str
    sender_id: str
    body: str
    reply_to_seq: int | None = None
    mentions: tuple[str, ...] = ()
    reactions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Emoji to the ids of the users who reacted with it."""
    created_at: datetime | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    """True once recalled; the body is then empty."""
    attachments: tuple[File, ...] = ()
    """The message's files (none once it is recalled)."""
    thread_root_seq: int | None = None
    """Set: a reply in the thread of that root (not a quote-reply: ``reply_to_seq``)."""
    also_to_conversation: bool = False
    """A thread reply shown in the main timeline too."""
    mentions_everyone: str | None = None
    """``all`` or ``channel`` (every member), ``here`` (those online): the body mentions
    everyone; None: it does not."""
    forwarded_from: tuple[str, int] | None = None
    """A forwarded copy: ``(conversation_id, seq)`` of the message it was forwarded from
    (:meth:`Client.forwarded_from` resolves it for those who may read it)."""
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """Build a message from its JSON object."""
        reactions = _obj(data.get("reactions"))
        return cls(
            id=_str(data.get("id")),
            conversation_id=_str(data.get("conversation_id")),
            seq=_int(data.get("seq")),
            client_msg_id=_str(data.get("client_msg_id")),
            sender_id=_str(data.get("sender_id")),
            body=_str(data.get("body")),
            reply_to_seq=_opt_int(data.get("reply_to_seq")),
            mentions=_str_tuple(data.get("mentions")),
            reactions={_str(k): _str_tuple(v) for k, v in reactions.items()},
            created_at=parse_time(data.get("created_at")),
            edited_at=parse_time(data.get("edited_at")),
            deleted=bool(data.get("deleted", False)),
            attachments=tuple(
                File.from_json(f) for f in (data.get("attachments") or ()) if isinstance(f, Mapping)
            ),
            thread_root_seq=_opt_int(data.get("thread_root_seq")),
            also_to_conversation=data.get("also_to_conversation") is True,
            mentions_everyone=_opt_str(data.get("mentions_everyone")),
            forwarded_from=_ref(data.get("forwarded_from")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadSummary:
    """A root's thread as every member sees it (also what ``thread_updated`` carries)."""

    root_seq: int
    reply_count: int = 0
    """Replies, recalled ones not counted."""
    last_reply_seq: int | None = None
    last_reply_at: datetime | None = None
    participants: tuple[str, ...] = ()
    """Ids of the repliers, the most recent first (capped by the server)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThreadSummary:
        return cls(
            root_seq=_int(data.get("root_seq")),
            reply_count=_int(data.get("reply_count")),
            last_reply_seq=_opt_int(data.get("last_reply_seq")),
            last_reply_at=parse_time(data.get("last_reply_at")),
            participants=_str_tuple(data.get("participants")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSubscription:
    """One device subscribed to Web Push (``GET /push/subscriptions``); ``this_device``:
    made in this client's session."""

    id: str
    endpoint: str
    created_at: datetime | None
    this_device: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PushSubscription:
        return cls(
            id=_str(data.get("id")),
            endpoint=_str(data.get("endpoint")),
            created_at=parse_time(data.get("created_at")),
            this_device=data.get("this_device") is True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineNotifications:
    """This account's notifications for closed tabs (``GET /users/me/notifications/offline``):
    email digests on or off, message text in pushes and digests, the address digests go
    to, and whether the server sends email and push at all."""

    email_digests: bool
    previews: bool
    email: str | None
    email_available: bool
    push_available: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OfflineNotifications:
        return cls(
            email_digests=data.get("email_digests") is not False,
            previews=data.get("previews") is not False,
            email=_opt_str(data.get("email")),
            email_available=data.get("email_available") is True,
            push_available=data.get("push_available") is True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """A pinned message of a conversation: ``message`` as it is now, who pinned it and
    when (``GET /conversations/{cid}/pins``)."""

    seq: int
    pinned_by: str
    pinned_at: datetime | None
    message: Message

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pin:
        """Build a pin from its JSON object."""
        return cls(
            seq=_int(data.get("seq")),
            pinned_by=_str(data.get("pinned_by")),
            pinned_at=parse_time(data.get("pinned_at")),
            message=Message.from_json(_obj(data.get("message"))),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadState:
    """The caller's own state in a thread."""

    following: bool = False
    read_seq: int = 0
    unread: int = 0
    """Others' replies after ``read_seq`` (0 when not following)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThreadState:
        return cls(
            following=bool(data.get("following", False)),
            read_seq=_int(data.get("read_seq")),
            unread=_int(data.get("unread")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread:
    """A thread of ``GET /conversations/{cid}/threads``: its root, summary, your state."""

    conversation_id: str
    root: Message
    summary: ThreadSummary
    state: ThreadState
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Thread:
        return cls(
            conversation_id=_str(data.get("conversation_id")),
            root=Message.from_json(_obj(data.get("root"))),
            summary=ThreadSummary.from_json(data),
            state=ThreadState.from_json(data),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPage:
    """One page of threads, newest activity first; ``next_cursor`` None: the last."""

    threads: tuple[Thread, ...]
    next_cursor: str | None


def _ref(data: object) -> tuple[str, int] | None:
    if not isinstance(data, Mapping):
        return None
    return _str(data.get("conversation_id")), _int(data.get("seq"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardOrigin:
    """Where a forwarded message comes from, for one who may read the original."""

    conversation_id: str
    conversation_name: str
    conversation_kind: str
    seq: int
    sender_id: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForwardOrigin:
        """Build it from the JSON object of ``GET …/forwarded-from``."""
        return cls(
            conversation_id=_str(data.get("conversation_id")),
            conversation_name=_str(data.get("conversation_name")),
            conversation_kind=_str(data.get("conversation_kind")),
            seq=_int(data.get("seq")),
            sender_id=_str(data.get("sender_id")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedMessage:
    """One of your saved messages (private to you): ``message`` as it is now, and when
    you saved it (``GET /saved``)."""

    conversation_id: str
    seq: int
    saved_at: datetime | None
    message: Message

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SavedMessage:
        """Build a saved message from its JSON object."""
        return cls(
            conversation_id=_str(data.get("conversation_id")),
            seq=_int(data.get("seq")),
            saved_at=parse_time(data.get("saved_at")),
            message=Message.from_json(_obj(data.get("message"))),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedPage:
    """One page of your saved messages, the newest save first; ``next_cursor`` None:
    the last."""

    saved: tuple[SavedMessage, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledMessage:
    """A message of yours to send later (private to you until sent). ``state``:
    ``pending`` (editable, cancellable), ``sending``, ``sent`` (``sent_seq``) or
    ``failed`` (``failure`` says why, e.g. you left the conversation)."""

    id: str
    conversation_id: str
    body: str
    send_at: datetime | None
    state: str
    reply_to_seq: int | None = None
    thread_root_seq: int | None = None
    also_to_conversation: bool = False
    attachments: tuple[str, ...] = ()  # ids of the files it will carry
    failure: str | None = None
    sent_seq: int | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScheduledMessage:
        """Build a scheduled message from its JSON object."""
        return cls(
            id=_str(data.get("id")),
            conversation_id=_str(data.get("conversation_id")),
            body=_str(data.get("body")),
            send_at=parse_time(data.get("send_at")),
            state=_str(data.get("state"), "pending"),
            reply_to_seq=_opt_int(data.get("reply_to_seq")),
            thread_root_seq=_opt_int(data.get("thread_root_seq")),
            also_to_conversation=bool(data.get("also_to_conversation", False)),
            attachments=_str_tuple(data.get("attachments")),
            failure=_opt_str(data.get("failure")),
            sent_seq=_opt_int(data.get("sent_seq")),
            version=_int(data.get("version"), 1),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPage:
    """One page of ``GET /conversations/{cid}/messages``, ascending by ``seq``."""

    messages: tuple[Message, ...]
    has_more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """One message found by :meth:`Client.search`, with where the query matched."""

    message: Message
    highlights: list[tuple[int, int]] = field(default_factory=list)
    """``(start, end)`` offsets into ``message.body`` in code points (Python string
    indices: ``body[start:end]`` is the matched text), sorted and non-overlapping."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchResult:
        """Build a result from ``{"message": …, "highlights": [[start, end], …]}``."""
        spans: list[tuple[int, int]] = []
        for pair in data.get("highlights") or ():
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                spans.append((_int(pair[0]), _int(pair[1])))
        return cls(message=Message.from_json(_obj(data.get("message"))), highlights=spans)


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchCount:
    """How many messages of one conversation match the whole query (capped by the
    server's ``search_count_limit``)."""

    conversation_id: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchPage:
    """One page of ``GET /search``: the results, the cursor of the next page (None on
    the last one) and the matches per conversation over the whole query, biggest
    first. ``counts_capped`` is True when some count stopped at the server's cap."""

    results: list[SearchResult]
    next_cursor: str | None = None
    counts: list[SearchCount] = field(default_factory=list)
    counts_capped: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchPage:
        """Build a page from the JSON answer of ``GET /search``."""
        return cls(
            results=[
                SearchResult.from_json(r)
                for r in data.get("results") or ()
                if isinstance(r, Mapping)
            ],
            next_cursor=_opt_str(data.get("next_cursor")) or None,
            counts=[
                SearchCount(
                    conversation_id=_str(c.get("conversation_id")), count=_int(c.get("count"))
                )
                for c in data.get("counts") or ()
                if isinstance(c, Mapping)
            ],
            counts_capped=bool(data.get("counts_capped", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadState:
    """The caller's read position in a conversation after ``read``."""

    read_seq: int
    unread: int


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every live or synced item.

    Stored events have a ``position`` in the caller's stream (an opaque string);
    ephemeral signals (:class:`Typing`, :class:`PresenceChanged`) have ``None``.
    Kinds this SDK does not know yet arrive as :class:`UnknownEvent`.
    """

    kind: str
    position: str | None = None
    conversation_id: str | None = None
    at: datetime | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationCreated(Event):
    """``conversation_created``: the caller became a member of a new conversation."""

    conversation: Conversation


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationUpdated(Event):
    """``conversation_updated``: name or topic changed."""

    conversation: Conversation


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent(Event):
    """``message``: a new message (the caller's own included)."""

    message: Message


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEdited(Event):
    """``message_edited``: ``message`` carries the new body and ``edited_at``."""

    message: Message


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeleted(Event):
    """``message_deleted``: a message was recalled by ``by``."""

    message: Message
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionChanged(Event):
    """``reaction``: ``user_id`` added (``added=True``) or removed ``emoji`` on ``seq``;
    ``count`` is how many have that emoji on the message now. The event carries the
    change only: apply it to the message you hold with :meth:`apply_to`."""

    seq: int
    emoji: str
    user_id: str
    added: bool
    count: int | None = None
    """None only from a server older than this field (whose events carried ``message``)."""
    message: Message | None = None
    """The whole message: only from a server older than ``count``; None since."""

    def apply_to(self, message: Message) -> Message:
        """``message`` (the one at ``seq``, as you hold it) with this change applied:
        ``user_id`` added to or taken from ``emoji``'s users, an emoji nobody has left
        out. Applying the same change again changes nothing. (``raw`` stays the JSON the
        message was built from.)"""
        if (message.conversation_id, message.seq) != (self.conversation_id, self.seq):
            raise ValueError("this reaction is about another message")
        users = message.reactions.get(self.emoji, ())
        if (self.user_id in users) == self.added:
            return message
        if self.added:
            after = (*users, self.user_id)
        else:
            after = tuple(u for u in users if u != self.user_id)
        reactions = dict(message.reactions)  # an emoji there keeps its place
        if after:
            reactions[self.emoji] = after
        else:
            del reactions[self.emoji]
        return replace(message, reactions=reactions)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileUpdated(Event):
    """``file_updated``: a file attached to message ``seq`` changed after its upload (its
    thumbnail is ready, or it turned out to be no image to show). Replace the attachment
    in the message you hold with :meth:`apply_to`."""

    seq: int
    file: File

    def apply_to(self, message: Message) -> Message:
        """``message`` (the one at ``seq``) with this file's attachment replaced; a
        message that does not carry it is returned as it is."""
        if (message.conversation_id, message.seq) != (self.conversation_id, self.seq):
            raise ValueError("this file update is about another message")
        attachments = tuple(self.file if f.id == self.file.id else f for f in message.attachments)
        return replace(message, attachments=attachments)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberAdded(Event):
    """``member_added``: ``user_ids`` joined or were added by ``by``; ``first_seq`` is
    the first seq they may read (1, or later when the conversation does not share its
    history with members added later: events about earlier messages skip them)."""

    user_ids: tuple[str, ...]
    by: str | None = None
    conversation: Conversation | None = None
    first_seq: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRemoved(Event):
    """``member_removed``: ``user_id`` left or was removed by ``by``."""

    user_id: str
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagePinned(Event):
    """``message_pinned``: message ``seq`` was pinned by ``by`` (``at``: when)."""

    seq: int
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageUnpinned(Event):
    """``message_unpinned``: message ``seq`` is no longer pinned (unpinned by ``by``, or
    recalled)."""

    seq: int
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRoleChanged(Event):
    """``member_role_changed``: ``user_id`` now has ``role`` (``owner``, ``moderator``
    or ``member``) in the conversation, given by ``by``."""

    user_id: str
    role: str
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadMoved(Event):
    """``read``: ``user_id``'s read position is ``seq`` now (read up to it, or moved back by
    ``mark_unread``); ``unread`` is what is left for them (thread-only replies left
    out, as in :attr:`Conversation.unread`)."""

    user_id: str
    seq: int
    unread: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadUpdated(Event):
    """``thread_updated``: the summary of the thread of ``thread.root_seq`` changed (a
    reply sent or recalled); replace the one you hold."""

    thread: ThreadSummary


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadRead(Event):
    """``thread_read``: you (on some device) followed, unfollowed or read a thread."""

    root_seq: int
    user_id: str
    following: bool
    read_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSaved(Event):
    """``message_saved``: you (on some device) saved message ``seq`` of
    ``conversation_id`` (``at``: when); put it first in your saved list."""

    seq: int
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageUnsaved(Event):
    """``message_unsaved``: message ``seq`` left your saved list (you unsaved it, or it
    was recalled)."""

    seq: int
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledMessageCreated(Event):
    """``scheduled_message_created``: you (on some device) scheduled ``scheduled``."""

    user_id: str
    scheduled: ScheduledMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledMessageUpdated(Event):
    """``scheduled_message_updated``: ``scheduled`` changed (edited, being sent, sent
    or failed); replace the one you hold (drop it once ``sent``)."""

    user_id: str
    scheduled: ScheduledMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledMessageDeleted(Event):
    """``scheduled_message_deleted``: ``scheduled_id`` was cancelled (or dismissed)."""

    user_id: str
    scheduled_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserUpdated(Event):
    """``user_updated``: ``user`` changed their display name, custom status or (only
    on their own connections, ``conversation_id`` None) ``preferences``. One per
    conversation they are a member of: replace the user you hold."""

    user: User
    preferences: Preferences | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationsUpdated(Event):
    """``notifications_updated``: you (on some device) changed your settings in the
    conversation; ``notifications`` is them, whole."""

    user_id: str
    notifications: ConversationNotifications


@dataclass(frozen=True, slots=True, kw_only=True)
class DndUpdated(Event):
    """``dnd_updated``: you (on some device) changed your do not disturb."""

    user_id: str
    dnd: DoNotDisturb


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An event kind this SDK does not model; everything is in ``raw``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Typing(Event):
    """Ephemeral: ``user_id`` is typing in ``conversation_id``. Never stored."""

    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceChanged(Event):
    """Ephemeral: ``user_id`` is now ``online``, ``away`` or ``offline``."""

    user_id: str
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EphemeralMessage(Event):
    """Ephemeral: something only this account sees, e.g. a slash command's private
    reply (``command``, ``invocation_id``). ``notice`` is a code for a failure
    (``command_failed``, ``bot_offline``, ``reply_too_long``); ``body`` its English."""

    sender: User
    body: str
    command: str | None = None
    invocation_id: str | None = None
    notice: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandInvoked(Event):
    """Ephemeral, for a bot: someone invoked a slash command whose target is this bot.
    Answer through ``response_url`` (:meth:`Client.respond_to_command`)."""

    invocation_id: str
    command: str
    text: str
    user: User
    response_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPage:
    """One page of ``GET /sync``: events after ``since`` and where to go on from."""

    events: tuple[Event, ...]
    next: str
    more: bool


def parse_event(position: str | None, data: Mapping[str, Any]) -> Event:
    """Turn one event object (the ``event`` field of an ``event`` frame) into a typed event."""
    kind = _str(data.get("kind"))
    common: dict[str, Any] = {
        "kind": kind,
        "position": position,
        "conversation_id": _opt_str(data.get("conversation_id")),
        "at": parse_time(data.get("at")),
        "raw": dict(data),
    }
    message = data.get("message")
    conversation = data.get("conversation")
    if kind == "message" and isinstance(message, dict):
        return MessageSent(message=Message.from_json(message), **common)
    if kind == "message_edited" and isinstance(message, dict):
        return MessageEdited(message=Message.from_json(message), **common)
    if kind == "message_deleted" and isinstance(message, dict):
        return MessageDeleted(
            message=Message.from_json(message), by=_opt_str(data.get("by")), **common
        )
    if kind == "reaction":
        return ReactionChanged(
            seq=_int(data.get("seq")),
            emoji=_str(data.get("emoji")),
            user_id=_str(data.get("user_id")),
            added=bool(data.get("added", True)),
            count=_opt_int(data.get("count")),
            message=Message.from_json(message) if isinstance(message, dict) else None,
            **common,
        )
    if kind == "conversation_created" and isinstance(conversation, dict):
        return ConversationCreated(conversation=Conversation.from_json(conversation), **common)
    if kind == "conversation_updated" and isinstance(conversation, dict):
        return ConversationUpdated(conversation=Conversation.from_json(conversation), **common)
    file = data.get("file")
    if kind == "file_updated" and isinstance(file, dict):
        return FileUpdated(seq=_int(data.get("seq")), file=File.from_json(file), **common)
    user = data.get("user")
    if kind == "user_updated" and isinstance(user, dict):
        prefs = data.get("preferences")
        return UserUpdated(
            user=User.from_json(user),
            preferences=Preferences.from_json(prefs) if isinstance(prefs, dict) else None,
            **common,
        )
    if kind == "member_added":
        return MemberAdded(
            user_ids=_str_tuple(data.get("user_ids")),
            by=_opt_str(data.get("by")),
            conversation=(
                Conversation.from_json(conversation) if isinstance(conversation, dict) else None
            ),
            first_seq=_int(data.get("first_seq"), 1),
            **common,
        )
    if kind == "member_removed":
        return MemberRemoved(
            user_id=_str(data.get("user_id")), by=_opt_str(data.get("by")), **common
        )
    thread = data.get("thread")
    if kind == "thread_updated" and isinstance(thread, dict):
        return ThreadUpdated(thread=ThreadSummary.from_json(thread), **common)
    if kind in ("message_saved", "message_unsaved"):
        saved = MessageSaved if kind == "message_saved" else MessageUnsaved
        return saved(seq=_int(data.get("seq")), user_id=_str(data.get("user_id")), **common)
    scheduled = data.get("scheduled")
    if kind in ("scheduled_message_created", "scheduled_message_updated") and isinstance(
        scheduled, dict
    ):
        made = (
            ScheduledMessageCreated
            if kind == "scheduled_message_created"
            else ScheduledMessageUpdated
        )
        return made(
            user_id=_str(data.get("user_id")),
            scheduled=ScheduledMessage.from_json(scheduled),
            **common,
        )
    if kind == "scheduled_message_deleted":
        return ScheduledMessageDeleted(
            user_id=_str(data.get("user_id")),
            scheduled_id=_str(data.get("scheduled_id")),
            **common,
        )
    if kind == "thread_read":
        return ThreadRead(
            root_seq=_int(data.get("root_seq")),
            user_id=_str(data.get("user_id")),
            following=bool(data.get("following", False)),
            read_seq=_int(data.get("read_seq")),
            **common,
        )
    if kind in ("message_pinned", "message_unpinned"):
        pinned = MessagePinned if kind == "message_pinned" else MessageUnpinned
        return pinned(seq=_int(data.get("seq")), by=_opt_str(data.get("by")), **common)
    if kind == "notifications_updated":
        return NotificationsUpdated(
            user_id=_str(data.get("user_id")),
            notifications=ConversationNotifications.from_json(_obj(data.get("notifications"))),
            **common,
        )
    if kind == "dnd_updated":
        return DndUpdated(
            user_id=_str(data.get("user_id")),
            dnd=DoNotDisturb.from_json(_obj(data.get("dnd"))),
            **common,
        )
    if kind == "member_role_changed":
        return MemberRoleChanged(
            user_id=_str(data.get("user_id")),
            role=_str(data.get("role"), "member"),
            by=_opt_str(data.get("by")),
            **common,
        )
    if kind == "read":
        return ReadMoved(
            user_id=_str(data.get("user_id")),
            seq=_int(data.get("seq")),
            unread=_opt_int(data.get("unread")),
            **common,
        )
    return UnknownEvent(**common)


def parse_ephemeral(frame: Mapping[str, Any]) -> Event | None:
    """Turn a ``typing``, ``presence``, ``ephemeral`` or ``command`` frame into an
    event, or None for other frames."""
    ftype = frame.get("type")
    if ftype == "typing":
        return Typing(
            kind="typing",
            conversation_id=_opt_str(frame.get("conversation_id")),
            user_id=_str(frame.get("user_id")),
            raw=dict(frame),
        )
    if ftype == "presence":
        return PresenceChanged(
            kind="presence",
            user_id=_str(frame.get("user_id")),
            state=_str(frame.get("state")),
            raw=dict(frame),
        )
    if ftype == "ephemeral":
        return EphemeralMessage(
            kind="ephemeral",
            conversation_id=_opt_str(frame.get("conversation_id")),
            at=parse_time(frame.get("at")),
            sender=User.from_json(_obj(frame.get("sender"))),
            body=_str(frame.get("body")),
            command=_opt_str(frame.get("command")),
            invocation_id=_opt_str(frame.get("invocation_id")),
            notice=_opt_str(frame.get("notice")),
            raw=dict(frame),
        )
    if ftype == "command":
        return CommandInvoked(
            kind="command",
            conversation_id=_opt_str(frame.get("conversation_id")),
            at=parse_time(frame.get("at")),
            invocation_id=_str(frame.get("invocation_id")),
            command=_str(frame.get("command")),
            text=_str(frame.get("text")),
            user=User.from_json(_obj(frame.get("user"))),
            response_url=_str(frame.get("response_url")),
            raw=dict(frame),
        )
    return None


# --------------------------------------------------------------------------- integrations


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingWebhook:
    """A secret URL that posts into one conversation as ``user_id`` (its integration
    user). ``url`` is known only when it was just made or rotated."""

    id: str
    conversation_id: str
    name: str
    user_id: str
    created_by: str | None = None
    created_at: datetime | None = None
    disabled: bool = False
    posts: int = 0
    last_post_at: datetime | None = None
    url: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncomingWebhook:
        return cls(
            id=_str(data.get("id")),
            conversation_id=_str(data.get("conversation_id")),
            name=_str(data.get("name")),
            user_id=_str(data.get("user_id")),
            created_by=_opt_str(data.get("created_by")),
            created_at=parse_time(data.get("created_at")),
            disabled=bool(data.get("disabled", False)),
            posts=_int(data.get("posts")),
            last_post_at=parse_time(data.get("last_post_at")),
            url=_opt_str(data.get("url")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    """An outgoing webhook (``/webhooks``). Its signing secret is never part of it: it
    is returned once, beside it, by :meth:`Client.create_webhook` and
    :meth:`Client.rotate_webhook_secret`."""

    id: str
    url: str
    events: tuple[str, ...] = ()
    conversation_id: str | None = None
    owner_id: str = ""
    enabled: bool = True
    disabled_reason: str | None = None  # "manual", "failures" or "gone"
    failures: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Webhook:
        """Build a webhook from its JSON object."""
        return cls(
            id=_str(data.get("id")),
            url=_str(data.get("url")),
            events=_str_tuple(data.get("events")),
            conversation_id=_opt_str(data.get("conversation_id")),
            owner_id=_str(data.get("owner_id")),
            enabled=bool(data.get("enabled", True)),
            disabled_reason=_opt_str(data.get("disabled_reason")),
            failures=_int(data.get("failures")),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SlashCommand:
    """A registered ``/name``. ``target`` (``url`` or ``bot``) and ``url`` are shown to
    admins only."""

    id: str
    name: str
    description: str = ""
    usage: str = ""
    user_id: str = ""
    disabled: bool = False
    target: str | None = None
    url: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SlashCommand:
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            description=_str(data.get("description")),
            usage=_str(data.get("usage")),
            user_id=_str(data.get("user_id")),
            disabled=bool(data.get("disabled", False)),
            target=_opt_str(data.get("target")),
            url=_opt_str(data.get("url")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """A slash command accepted: its reply comes later (a message, or an
    :class:`EphemeralMessage` to the caller)."""

    id: str
    command: str
    conversation_id: str
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invocation:
        return cls(
            id=_str(data.get("id")),
            command=_str(data.get("command")),
            conversation_id=_str(data.get("conversation_id")),
            created_at=parse_time(data.get("created_at")),
            expires_at=parse_time(data.get("expires_at")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookDelivery:
    """One attempt of one delivery, from a webhook's delivery log (newest first)."""

    id: str
    delivery_id: str
    kind: str
    position: str | None = None
    attempt: int = 1
    at: datetime | None = None
    status: str = ""  # "ok", "failed", "rejected" or "refused"
    response_code: int | None = None
    latency_ms: int | None = None
    error: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WebhookDelivery:
        """Build a delivery log row from its JSON object."""
        return cls(
            id=_str(data.get("id")),
            delivery_id=_str(data.get("delivery_id")),
            kind=_str(data.get("kind")),
            position=_opt_str(data.get("position")),
            attempt=_int(data.get("attempt"), 1),
            at=parse_time(data.get("at")),
            status=_str(data.get("status")),
            response_code=_opt_int(data.get("response_code")),
            latency_ms=_opt_int(data.get("latency_ms")),
            error=_str(data.get("error")),
        )
