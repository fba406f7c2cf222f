"""JSON shapes of domain objects, events and server frames. Encoding happens once,
here; so does decoding a stored event back into its typed value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time

import orjson

from tidings.core.clock import rfc3339
from tidings.core.errors import TidingsError
from tidings.core.events import (
    ConversationCreated,
    ConversationUpdated,
    DndUpdated,
    Event,
    EventKind,
    FileUpdated,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    MessageDeleted,
    MessageEdited,
    MessagePinned,
    MessageSaved,
    MessageSent,
    MessageUnpinned,
    MessageUnsaved,
    NotificationsUpdated,
    ReactionChanged,
    ReadMoved,
    ScheduledCreated,
    ScheduledDeleted,
    ScheduledUpdated,
    ThreadRead,
    ThreadUpdated,
    UserUpdated,
)
from tidings.core.integrations import IncomingWebhook, Invocation, SlashCommand
from tidings.core.jobs import JobRecord, QueueStats
from tidings.core.models import (
    Avatar,
    Conversation,
    ConversationId,
    ConversationKind,
    CustomStatus,
    Department,
    DepartmentId,
    Dnd,
    DndSchedule,
    FileId,
    FileInfo,
    FileStatus,
    ForwardOrigin,
    Member,
    MemberNotify,
    MemberRole,
    MemberView,
    Message,
    MessageId,
    MessageRef,
    NotifyLevel,
    OrgRole,
    Pin,
    Preferences,
    SavedMessage,
    ScheduledMessage,
    ScheduledState,
    StoredEvent,
    Theme,
    ThreadState,
    ThreadSummary,
    ThreadView,
    User,
    UserId,
    UserOrigin,
)
from tidings.core.rules import everyone_mention, first_visible_seq
from tidings.core.webhooks import Delivery, Webhook

JsonDict = dict[str, object]


def user_json(user: User, now: datetime | None = None) -> JsonDict:
    """A user as everyone sees them. With `now`, a custom status that has expired by
    then reads as none (REST answers); without, it is as stored (events: clients
    compare `until` with their clock)."""
    status = user.status if user.status is None or now is None else user.status.at(now)
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "disabled": user.disabled,
        "department_ids": list(user.department_ids),
        "created_at": rfc3339(user.created_at),
        "bot": user.bot,
        "email": user.email,
        "origin": user.origin.value,
        "status": status_json(status),
        "avatar": avatar_json(user),
    }


AVATAR_SIZES = (256, 64)  # services/avatars.py


def avatar_url(user_id: str, avatar_id: str, size: int) -> str:
    """The avatar's URL: no token (an <img> sends none), immutable (the id is new at
    every change), a capability only handed out with the user object."""
    return f"/api/v1/users/{user_id}/avatar/{avatar_id}?size={size}"


def avatar_json(user: User) -> JsonDict | None:
    avatar = user.avatar
    if avatar is None:
        return None
    return {
        "id": avatar.id,
        "updated_at": rfc3339(avatar.updated_at),
        "url": avatar_url(user.id, avatar.id, AVATAR_SIZES[0]),
        "small_url": avatar_url(user.id, avatar.id, AVATAR_SIZES[1]),
    }


def status_json(status: CustomStatus | None) -> JsonDict | None:
    if status is None:
        return None
    return {
        "text": status.text,
        "emoji": status.emoji,
        "until": None if status.until is None else rfc3339(status.until),
    }


def preferences_json(prefs: Preferences) -> JsonDict:
    """A user's own settings: only ever sent to that user."""
    return {"language": prefs.language, "time_zone": prefs.time_zone, "theme": prefs.theme.value}


def user_of(data: Mapping[str, object], prefs: Mapping[str, object] | None = None) -> User:
    """A user read back from `user_json` (and `preferences_json`, when given)."""
    raw_status = data.get("status")
    status = None
    if isinstance(raw_status, dict):
        st = {str(k): v for k, v in raw_status.items()}
        status = CustomStatus(_str(st, "text"), _str(st, "emoji"), _optional_time(st, "until"))
    preferences = Preferences()
    if prefs is not None:
        preferences = Preferences(
            language=_opt_str(prefs, "language"),
            time_zone=_opt_str(prefs, "time_zone"),
            theme=Theme(_str(prefs, "theme")),
        )
    email = data.get("email")
    raw_avatar = data.get("avatar")
    avatar = None
    if isinstance(raw_avatar, dict):
        av = {str(k): v for k, v in raw_avatar.items()}
        avatar = Avatar(_str(av, "id"), _time(av, "updated_at"))
    return User(
        id=UserId(_str(data, "id")),
        username=_str(data, "username"),
        display_name=_str(data, "display_name"),
        role=OrgRole(_str(data, "role")),
        disabled=_bool(data, "disabled"),
        created_at=_time(data, "created_at"),
        department_ids=tuple(DepartmentId(d) for d in _ids(data, "department_ids")),
        bot=_bool(data, "bot"),
        email=email if isinstance(email, str) else None,
        origin=UserOrigin(_str(data, "origin")),
        status=status,
        preferences=preferences,
        avatar=avatar,
    )


def department_json(dep: Department) -> JsonDict:
    return {"id": dep.id, "name": dep.name, "parent_id": dep.parent_id}


def conversation_json(conv: Conversation) -> JsonDict:
    return {
        "id": conv.id,
        "kind": conv.kind.value,
        "name": conv.name,
        "topic": conv.topic,
        "created_by": conv.created_by,
        "created_at": rfc3339(conv.created_at),
        "last_seq": conv.last_seq,
        "last_activity_at": rfc3339(conv.last_activity_at),
        "member_count": conv.member_count,
        "archived_at": None if conv.archived_at is None else rfc3339(conv.archived_at),
        "private": conv.private,
        "announcement": conv.announcement,
        "shared_history": conv.shared_history,
    }


def member_json(member: Member) -> JsonDict:
    return {
        "user_id": member.user_id,
        "role": member.role.value,
        "read_seq": member.read_seq,
        "joined_at": rfc3339(member.joined_at),
    }


def member_view_json(view: MemberView) -> JsonDict:
    data = conversation_json(view.conversation)
    data.update(
        role=view.member.role.value,
        read_seq=view.member.read_seq,
        unread=view.unread,
        unread_mentions=view.unread_mentions,
        notifications=notify_json(view.member.notify),
    )
    return data


def notify_json(notify: MemberNotify) -> JsonDict:
    """A member's notification settings in a conversation (only ever sent to them):
    `level` null is the kind's default (all; mentions in channels)."""
    return {
        "level": None if notify.level is None else notify.level.value,
        "muted": notify.muted,
        "muted_until": None if notify.muted_until is None else rfc3339(notify.muted_until),
    }


def notify_of(data: Mapping[str, object]) -> MemberNotify:
    level = _opt_str(data, "level")
    try:
        parsed = None if level is None else NotifyLevel(level)
    except ValueError:
        raise NotAnEvent(f"no such level {level!r}") from None
    return MemberNotify(parsed, _bool(data, "muted"), _optional_time(data, "muted_until"))


def dnd_json(dnd: Dnd) -> JsonDict:
    """A user's do not disturb (only ever sent to them): `until` (null: off by time) and
    the daily `schedule` {start, end} as local "HH:MM" (null: none)."""
    s = dnd.schedule
    return {
        "until": None if dnd.until is None else rfc3339(dnd.until),
        "schedule": None
        if s is None
        else {"start": s.start.strftime("%H:%M"), "end": s.end.strftime("%H:%M")},
    }


def dnd_of(data: Mapping[str, object]) -> Dnd:
    raw = data.get("schedule")
    schedule = None
    if isinstance(raw, dict):
        sch = {str(k): v for k, v in raw.items()}
        try:
            schedule = DndSchedule(
                time.fromisoformat(_str(sch, "start")), time.fromisoformat(_str(sch, "end"))
            )
        except ValueError:
            raise NotAnEvent("schedule is not HH:MM") from None
    return Dnd(until=_optional_time(data, "until"), schedule=schedule)


def file_json(file: FileInfo) -> JsonDict:
    """A file object (REST, message objects, events): what it is, never where its bytes
    are (no blob key)."""
    return {
        "id": file.id,
        "name": file.name,
        "size": file.size,
        "content_type": file.content_type,
        "sha256": file.sha256,
        "created_at": rfc3339(file.created_at),
        "uploader_id": file.uploader_id,
        "width": file.width,
        "height": file.height,
        "has_thumbnail": file.has_thumbnail,
        "status": file.status.value,
    }


def file_of(data: Mapping[str, object]) -> FileInfo:
    """A file read back from `file_json` (its blob key is not on the wire: empty)."""
    return FileInfo(
        id=FileId(_str(data, "id")),
        uploader_id=UserId(_str(data, "uploader_id")),
        name=_str(data, "name"),
        size=_int(data, "size"),
        content_type=_str(data, "content_type"),
        sha256=_str(data, "sha256"),
        blob_key="",
        created_at=_time(data, "created_at"),
        status=FileStatus(_str(data, "status")),
        width=_opt_int(data, "width"),
        height=_opt_int(data, "height"),
        thumb_key="" if data.get("has_thumbnail") else None,
    )


def message_json(message: Message) -> JsonDict:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "client_msg_id": message.client_msg_id,
        "sender_id": message.sender_id,
        "body": "" if message.deleted else message.body,
        "reply_to_seq": message.reply_to_seq,
        "mentions": list(message.mentions),
        "reactions": {k: list(v) for k, v in message.reactions.items()},
        "created_at": rfc3339(message.created_at),
        "edited_at": None if message.edited_at is None else rfc3339(message.edited_at),
        "deleted": message.deleted,
        # a recalled message takes its files with it
        "attachments": [] if message.deleted else [file_json(f) for f in message.attachments],
        "thread_root_seq": message.thread_root_seq,
        "also_to_conversation": message.also_to_conversation,
        # @all, @channel, @here: the message mentions everyone (clients highlight it)
        "mentions_everyone": _everyone(message),
        **_forwarded_json(message),
    }


def _forwarded_json(message: Message) -> JsonDict:
    """`forwarded_from` on a forwarded copy only (every other message has no such key)."""
    ref = message.forwarded_from
    if ref is None:
        return {}
    return {"forwarded_from": {"conversation_id": ref.conversation_id, "seq": ref.seq}}


def forward_origin_json(origin: ForwardOrigin) -> JsonDict:
    """The original of a forwarded message, for someone who may read it."""
    conv = origin.conversation
    return {
        "conversation_id": conv.id,
        "conversation_name": conv.name,
        "conversation_kind": conv.kind.value,
        "seq": origin.seq,
        "sender_id": origin.sender_id,
    }


def _everyone(message: Message) -> str | None:
    if message.deleted:
        return None
    found = everyone_mention(message.body)
    return None if found is None else found.value


def thread_summary_json(summary: ThreadSummary) -> JsonDict:
    """A root's thread summary (thread objects, `thread_updated` events)."""
    at = summary.last_reply_at
    return {
        "root_seq": summary.root_seq,
        "reply_count": summary.reply_count,
        "last_reply_seq": summary.last_reply_seq,
        "last_reply_at": None if at is None else rfc3339(at),
        "participants": list(summary.participants),
    }


def thread_state_json(state: ThreadState) -> JsonDict:
    return {"following": state.following, "read_seq": state.read_seq, "unread": state.unread}


def thread_json(view: ThreadView) -> JsonDict:
    """A thread in a list: its root message, its summary and the caller's state."""
    data: JsonDict = {"conversation_id": view.summary.conversation_id}
    data.update(thread_summary_json(view.summary))
    data["root"] = message_json(view.root)
    data.update(thread_state_json(view.state))
    return data


def thread_summary_of(conversation_id: str, data: Mapping[str, object]) -> ThreadSummary:
    """A summary read back from `thread_summary_json`."""
    return ThreadSummary(
        conversation_id=ConversationId(conversation_id),
        root_seq=_int(data, "root_seq"),
        reply_count=_int(data, "reply_count"),
        last_reply_seq=_opt_int(data, "last_reply_seq"),
        last_reply_at=_optional_time(data, "last_reply_at"),
        participants=_ids(data, "participants"),
    )


def pin_json(pin: Pin, message: Message) -> JsonDict:
    """A pinned message: the pin, and the message as it is now."""
    return {
        "seq": pin.seq,
        "pinned_by": pin.pinned_by,
        "pinned_at": rfc3339(pin.pinned_at),
        "message": message_json(message),
    }


def saved_json(saved: SavedMessage, message: Message) -> JsonDict:
    """A saved message: when it was saved, and the message as it is now."""
    return {
        "conversation_id": saved.conversation_id,
        "seq": saved.seq,
        "saved_at": rfc3339(saved.saved_at),
        "message": message_json(message),
    }


def scheduled_json(scheduled: ScheduledMessage) -> JsonDict:
    """A scheduled message, as its sender sees it (docs/protocol.md "Scheduled
    messages")."""
    return {
        "id": scheduled.id,
        "conversation_id": scheduled.conversation_id,
        "body": scheduled.body,
        "send_at": rfc3339(scheduled.send_at),
        "state": scheduled.state.value,
        "reply_to_seq": scheduled.reply_to_seq,
        "thread_root_seq": scheduled.thread_root_seq,
        "also_to_conversation": scheduled.also_to_conversation,
        "attachments": list(scheduled.attachments),
        "failure": scheduled.failure,
        "sent_seq": scheduled.sent_seq,
        "version": scheduled.version,
        "created_at": rfc3339(scheduled.created_at),
        "updated_at": rfc3339(scheduled.updated_at),
    }


def scheduled_of(data: Mapping[str, object], sender_id: str) -> ScheduledMessage:
    """A scheduled message read back from `scheduled_json` (its sender: the event's)."""
    return ScheduledMessage(
        id=_str(data, "id"),
        sender_id=UserId(sender_id),
        conversation_id=ConversationId(_str(data, "conversation_id")),
        body=_str(data, "body"),
        send_at=_time(data, "send_at"),
        state=ScheduledState(_str(data, "state")),
        created_at=_time(data, "created_at"),
        updated_at=_time(data, "updated_at"),
        version=_int(data, "version"),
        reply_to_seq=_opt_int(data, "reply_to_seq"),
        thread_root_seq=_opt_int(data, "thread_root_seq"),
        also_to_conversation=_bool(data, "also_to_conversation"),
        attachments=_ids(data, "attachments"),
        failure=_opt_str(data, "failure"),
        sent_seq=_opt_int(data, "sent_seq"),
    )


def error_json(error: TidingsError) -> JsonDict:
    return {"code": error.code.value, "message": error.message, "details": dict(error.details)}


# --- events --------------------------------------------------------------------------


def event_json(event: Event) -> JsonDict:
    """An event's wire payload (PROTOCOL.md): its kind, conversation and time, then its
    own fields, always in this order."""
    data: JsonDict = {
        "kind": event.kind.value,
        "conversation_id": event.conversation_id,
        "at": rfc3339(event.at),
    }
    match event:
        case MessageSent() | MessageEdited():  # the hot path first
            data["message"] = message_json(event.message)
        case ConversationCreated():
            data["conversation"] = conversation_json(event.conversation)
            data["member_ids"] = list(event.member_ids)
            data["by"] = event.by
        case ConversationUpdated():
            data["conversation"] = conversation_json(event.conversation)
            data["by"] = event.by
        case MessageDeleted():
            data["message"] = message_json(event.message)
            data["by"] = event.by
        case ReactionChanged():
            data["seq"] = event.seq
            data["emoji"] = event.emoji
            data["user_id"] = event.user_id
            data["added"] = event.added
            data["count"] = event.count
        case MemberAdded():
            data["user_ids"] = list(event.user_ids)
            data["by"] = event.by
            data["conversation"] = conversation_json(event.conversation)
            data["first_seq"] = event.first_seq
        case MemberRemoved():
            data["user_id"] = event.user_id
            data["by"] = event.by
        case MemberRoleChanged():
            data["user_id"] = event.user_id
            data["role"] = event.role.value
            data["by"] = event.by
        case ReadMoved():
            data["user_id"] = event.user_id
            data["seq"] = event.seq
            data["unread"] = event.unread
        case FileUpdated():
            data["seq"] = event.seq
            data["file"] = file_json(event.file)
        case ThreadUpdated():
            data["thread"] = thread_summary_json(event.summary)
        case ThreadRead():
            data["root_seq"] = event.root_seq
            data["user_id"] = event.user_id
            data["following"] = event.following
            data["read_seq"] = event.read_seq
        case UserUpdated():
            data["user"] = user_json(event.user)
            if event.own:
                data["preferences"] = preferences_json(event.user.preferences)
        case MessagePinned() | MessageUnpinned():
            data["seq"] = event.seq
            data["by"] = event.by
        case NotificationsUpdated():
            data["user_id"] = event.user_id
            data["notifications"] = notify_json(event.notify)
        case DndUpdated():
            data["user_id"] = event.user_id
            data["dnd"] = dnd_json(event.dnd)
        case MessageSaved() | MessageUnsaved():
            data["seq"] = event.seq
            data["user_id"] = event.user_id
        case ScheduledCreated() | ScheduledUpdated():
            data["user_id"] = event.scheduled.sender_id
            data["scheduled"] = scheduled_json(event.scheduled)
        case ScheduledDeleted():
            data["user_id"] = event.user_id
            data["scheduled_id"] = event.scheduled_id
    return data


class NotAnEvent(ValueError):
    """A stored payload that is not the wire shape of any event this server writes."""


def event_of(stored: StoredEvent) -> Event:
    """The typed event a stored row holds: its payload (as `event_json` wrote it) read
    back. A per-user row (no conversation) is a read position of a channel."""
    p = stored.payload
    kind = _str(p, "kind")
    at = _time(p, "at")
    match kind:
        case EventKind.CONVERSATION_CREATED:
            return ConversationCreated(
                conversation=conversation_of(_obj(p, "conversation")),
                member_ids=_ids(p, "member_ids"),
                by=UserId(_str(p, "by")),
                at=at,
            )
        case EventKind.CONVERSATION_UPDATED:
            return ConversationUpdated(
                conversation=conversation_of(_obj(p, "conversation")),
                by=UserId(_str(p, "by")),
                at=at,
            )
        case EventKind.MESSAGE:
            return MessageSent(message=message_of(_obj(p, "message")), at=at)
        case EventKind.MESSAGE_EDITED:
            return MessageEdited(message=message_of(_obj(p, "message")), at=at)
        case EventKind.MESSAGE_DELETED:
            return MessageDeleted(
                message=message_of(_obj(p, "message")), by=UserId(_str(p, "by")), at=at
            )
        case EventKind.REACTION:
            emoji = _str(p, "emoji")
            return ReactionChanged(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                seq=_int(p, "seq"),
                emoji=emoji,
                user_id=UserId(_str(p, "user_id")),
                added=_bool(p, "added"),
                count=_int(p, "count") if "count" in p else _count_in_message(p, emoji),
                at=at,
            )
        case EventKind.MEMBER_ADDED:
            conv = conversation_of(_obj(p, "conversation"))
            return MemberAdded(
                conversation=conv,
                user_ids=_ids(p, "user_ids"),
                by=UserId(_str(p, "by")),
                at=at,
                # stored before it was written: what add_members gave them
                first_seq=(
                    _int(p, "first_seq")
                    if "first_seq" in p
                    else first_visible_seq(conv, conv.last_seq)
                ),
            )
        case EventKind.MEMBER_REMOVED:
            return MemberRemoved(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                user_id=UserId(_str(p, "user_id")),
                by=UserId(_str(p, "by")),
                at=at,
            )
        case EventKind.MEMBER_ROLE_CHANGED:
            return MemberRoleChanged(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                user_id=UserId(_str(p, "user_id")),
                role=_role(_str(p, "role")),
                by=UserId(_str(p, "by")),
                at=at,
            )
        case EventKind.READ:
            return ReadMoved(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                user_id=UserId(_str(p, "user_id")),
                seq=_int(p, "seq"),
                unread=_int(p, "unread"),
                private=stored.conversation_id is None,
                at=at,
            )
        case EventKind.MESSAGE_PINNED:
            return MessagePinned(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                seq=_int(p, "seq"),
                by=UserId(_str(p, "by")),
                at=at,
            )
        case EventKind.MESSAGE_UNPINNED:
            return MessageUnpinned(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                seq=_int(p, "seq"),
                by=UserId(_str(p, "by")),
                at=at,
            )
        case EventKind.MESSAGE_SAVED | EventKind.MESSAGE_UNSAVED:
            saved = MessageSaved if kind == EventKind.MESSAGE_SAVED else MessageUnsaved
            return saved(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                seq=_int(p, "seq"),
                user_id=UserId(_str(p, "user_id")),
                at=at,
            )
        case EventKind.SCHEDULED_CREATED | EventKind.SCHEDULED_UPDATED:
            made = ScheduledCreated if kind == EventKind.SCHEDULED_CREATED else ScheduledUpdated
            return made(scheduled=scheduled_of(_obj(p, "scheduled"), _str(p, "user_id")), at=at)
        case EventKind.SCHEDULED_DELETED:
            return ScheduledDeleted(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                scheduled_id=_str(p, "scheduled_id"),
                user_id=UserId(_str(p, "user_id")),
                at=at,
            )
        case EventKind.FILE_UPDATED:
            return FileUpdated(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                seq=_int(p, "seq"),
                file=file_of(_obj(p, "file")),
                at=at,
            )
        case EventKind.THREAD_UPDATED:
            cid = _str(p, "conversation_id")
            return ThreadUpdated(summary=thread_summary_of(cid, _obj(p, "thread")), at=at)
        case EventKind.THREAD_READ:
            return ThreadRead(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                root_seq=_int(p, "root_seq"),
                user_id=UserId(_str(p, "user_id")),
                following=_bool(p, "following"),
                read_seq=_int(p, "read_seq"),
                at=at,
            )
        case EventKind.NOTIFICATIONS_UPDATED:
            return NotificationsUpdated(
                conversation_id=ConversationId(_str(p, "conversation_id")),
                user_id=UserId(_str(p, "user_id")),
                notify=notify_of(_obj(p, "notifications")),
                at=at,
            )
        case EventKind.DND_UPDATED:
            return DndUpdated(user_id=UserId(_str(p, "user_id")), dnd=dnd_of(_obj(p, "dnd")), at=at)
        case EventKind.USER_UPDATED:
            own = p.get("conversation_id") is None
            return UserUpdated(
                conversation_id=None if own else ConversationId(_str(p, "conversation_id")),
                user=user_of(_obj(p, "user"), _obj(p, "preferences") if own else None),
                at=at,
            )
    raise NotAnEvent(f"unknown event kind {kind!r}")


def _count_in_message(payload: Mapping[str, object], emoji: str) -> int:
    """The `count` of a reaction event stored before events carried it (migration 0005
    rewrites those rows): how many had `emoji` on the message it carried."""
    return len(message_of(_obj(payload, "message")).reactions.get(emoji, ()))


def _ref_of(data: object) -> MessageRef | None:
    if not isinstance(data, Mapping):
        return None
    return MessageRef(ConversationId(_str(data, "conversation_id")), _int(data, "seq"))


def message_of(data: Mapping[str, object]) -> Message:
    """A message read back from `message_json`."""
    reactions = _obj(data, "reactions")
    return Message(
        id=MessageId(_str(data, "id")),
        conversation_id=ConversationId(_str(data, "conversation_id")),
        seq=_int(data, "seq"),
        client_msg_id=_str(data, "client_msg_id"),
        sender_id=UserId(_str(data, "sender_id")),
        body=_str(data, "body"),
        reply_to_seq=_opt_int(data, "reply_to_seq"),
        mentions=_ids(data, "mentions"),
        created_at=_time(data, "created_at"),
        edited_at=None if data.get("edited_at") is None else _time(data, "edited_at"),
        deleted=_bool(data, "deleted"),
        reactions={emoji: list(_ids(reactions, emoji)) for emoji in reactions},
        attachments=tuple(file_of(f) for f in _objs(data, "attachments")),
        # missing: a message stored before threads (issue 17)
        thread_root_seq=_opt_int(data, "thread_root_seq"),
        also_to_conversation=data.get("also_to_conversation") is True,
        forwarded_from=_ref_of(data.get("forwarded_from")),
    )


def conversation_of(data: Mapping[str, object]) -> Conversation:
    """A conversation read back from `conversation_json`."""
    return Conversation(
        id=ConversationId(_str(data, "id")),
        kind=ConversationKind(_str(data, "kind")),
        name=_str(data, "name"),
        topic=_str(data, "topic"),
        created_by=UserId(_str(data, "created_by")),
        created_at=_time(data, "created_at"),
        last_seq=_int(data, "last_seq"),
        last_activity_at=_time(data, "last_activity_at"),
        member_count=_int(data, "member_count"),
        archived_at=_optional_time(data, "archived_at"),
        # stored before migration 0019: a public channel, anyone posts, history shared
        private=_bool(data, "private") if "private" in data else False,
        announcement=_bool(data, "announcement") if "announcement" in data else False,
        shared_history=_bool(data, "shared_history") if "shared_history" in data else True,
    )


def _field(data: Mapping[str, object], key: str) -> object:
    if key not in data:
        raise NotAnEvent(f"{key} is missing")
    return data[key]


def _str(data: Mapping[str, object], key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str):
        raise NotAnEvent(f"{key} is not a string")
    return value


def _int(data: Mapping[str, object], key: str) -> int:
    value = _field(data, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotAnEvent(f"{key} is not an integer")
    return value


def _opt_str(data: Mapping[str, object], key: str) -> str | None:
    return None if data.get(key) is None else _str(data, key)


def _opt_int(data: Mapping[str, object], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _bool(data: Mapping[str, object], key: str) -> bool:
    value = _field(data, key)
    if not isinstance(value, bool):
        raise NotAnEvent(f"{key} is not a boolean")
    return value


def _role(value: str) -> MemberRole:
    try:
        return MemberRole(value)
    except ValueError:
        raise NotAnEvent(f"no such role {value!r}") from None


def _optional_time(data: Mapping[str, object], key: str) -> datetime | None:
    return None if data.get(key) is None else _time(data, key)


def _time(data: Mapping[str, object], key: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_str(data, key))
    except ValueError as exc:
        raise NotAnEvent(f"{key} is not an RFC 3339 time") from exc
    if moment.tzinfo is None:
        raise NotAnEvent(f"{key} has no time zone")
    return moment


def _ids(data: Mapping[str, object], key: str) -> tuple[UserId, ...]:
    value = _field(data, key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NotAnEvent(f"{key} is not a list of ids")
    return tuple(UserId(v) for v in value)


def _objs(data: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    """A list of objects; missing: empty (events stored before the field existed)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise NotAnEvent(f"{key} is not a list of objects")
    return [{str(k): v for k, v in item.items()} for item in value]


def _obj(data: Mapping[str, object], key: str) -> dict[str, object]:
    value = _field(data, key)
    if not isinstance(value, dict):
        raise NotAnEvent(f"{key} is not an object")
    return {str(k): v for k, v in value.items()}


# --- server frames -----------------------------------------------------------------


def encode(frame: JsonDict) -> str:
    return orjson.dumps(frame).decode()


def event_frame(position: int, event: JsonDict) -> str:
    """The one encoding of an event, written as is to every recipient."""
    return encode({"type": "event", "position": str(position), "event": event})


def ready_frame(user: User, position: int, now: datetime | None = None) -> str:
    """The first frame after auth: the caller as of `now` (an expired status reads
    as none), and the position the stream resumes from."""
    return encode({"type": "ready", "user": user_json(user, now), "position": str(position)})


def ack_frame(ref: object, **fields: object) -> str:
    return encode({"type": "ack", "ref": ref, **fields})


def error_frame(ref: object, error: TidingsError) -> str:
    frame: JsonDict = {"type": "error", "error": error_json(error)}
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)


def typing_frame(conversation_id: str, user_id: str) -> str:
    return encode({"type": "typing", "conversation_id": conversation_id, "user_id": user_id})


def presence_frame(user_id: str, state: str) -> str:
    return encode({"type": "presence", "user_id": user_id, "state": state})


def reconnect_frame(reason: str) -> str:
    return encode({"type": "reconnect", "reason": reason})


def job_json(job: JobRecord) -> JsonDict:
    """A job as the admin REST and the CLI show it."""
    return {
        "id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "state": job.state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "payload": job.payload,
        "run_after": rfc3339(job.run_after),
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "finished_at": None if job.finished_at is None else rfc3339(job.finished_at),
        "last_error": job.last_error,
    }


def queue_stats_json(stats: QueueStats) -> JsonDict:
    return {
        "queues": stats.by_state,
        "oldest_waiting_seconds": stats.oldest_waiting_seconds,
        "dead": stats.dead,
        "consumer_lag": stats.consumer_lag,
        "broker": stats.broker,
    }


def invocation_json(invocation: Invocation, command: SlashCommand) -> JsonDict:
    return {
        "id": invocation.id,
        "command": command.name,
        "conversation_id": invocation.conversation_id,
        "created_at": rfc3339(invocation.created_at),
        "expires_at": rfc3339(invocation.expires_at),
    }


def ephemeral_frame(
    conversation_id: str,
    sender: User,
    body: str,
    at: datetime,
    *,
    command: str | None = None,
    invocation_id: str | None = None,
    notice: str | None = None,
) -> str:
    """Something only its recipient sees (a slash command's private reply): no
    position, never stored, best effort like typing. `notice`: a code for a client to
    translate (`command_failed`, `bot_offline`, `reply_too_long`); `body` is its English."""
    return encode(
        {
            "type": "ephemeral",
            "conversation_id": conversation_id,
            "sender": user_json(sender),
            "body": body,
            "at": rfc3339(at),
            "command": command,
            "invocation_id": invocation_id,
            "notice": notice,
        }
    )


def command_frame(
    invocation_id: str,
    command: str,
    text: str,
    conversation_id: str,
    user: User,
    response_url: str,
    at: datetime,
) -> str:
    """A slash command for a bot: to its connections; it answers through
    `response_url` (docs/integrations.md)."""
    return encode(
        {
            "type": "command",
            "invocation_id": invocation_id,
            "command": command,
            "text": text,
            "conversation_id": conversation_id,
            "user": user_json(user),
            "response_url": response_url,
            "at": rfc3339(at),
        }
    )


def hook_json(hook: IncomingWebhook, url: str | None = None) -> dict[str, object]:
    return {
        "id": hook.id,
        "conversation_id": hook.conversation_id,
        "name": hook.name,
        "user_id": hook.user_id,
        "created_by": hook.created_by,
        "created_at": rfc3339(hook.created_at),
        "disabled": hook.disabled,
        "posts": hook.posts,
        "last_post_at": None if hook.last_post_at is None else rfc3339(hook.last_post_at),
        "url": url,
    }


def command_json(command: SlashCommand, viewer: User | None) -> dict[str, object]:
    """A command as anyone sees it (to invoke it); admins see its target too."""
    data: dict[str, object] = {
        "id": command.id,
        "name": command.name,
        "description": command.description,
        "usage": command.usage,
        "user_id": command.user_id,
        "disabled": command.disabled,
    }
    if viewer is None or viewer.role.is_admin:
        data.update(
            target=command.target.value,
            url=command.url,
            created_at=rfc3339(command.created_at),
            created_by=command.created_by,
        )
    return data


def webhook_json(webhook: Webhook, secret: str | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "conversation_id": webhook.conversation_id,
        "owner_id": webhook.owner_id,
        "enabled": webhook.enabled,
        "disabled_reason": None
        if webhook.disabled_reason is None
        else webhook.disabled_reason.value,
        "failures": webhook.failures,
        "created_at": rfc3339(webhook.created_at),
        "updated_at": rfc3339(webhook.updated_at),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def delivery_json(delivery: Delivery) -> dict[str, object]:
    return {
        "id": delivery.id,
        "delivery_id": delivery.delivery_id,
        "kind": delivery.kind,
        "position": None if delivery.position is None else str(delivery.position),
        "attempt": delivery.attempt,
        "at": rfc3339(delivery.at),
        "status": delivery.status.value,
        "response_code": delivery.response_code,
        "latency_ms": delivery.latency_ms,
        "error": delivery.error,
    }
