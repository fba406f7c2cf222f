"""Events: what a client can see, each with a position in its stream.

One frozen dataclass per kind, typed from the moment a service creates it. Its wire
shape is made in one place (`protocol/wire.py:event_json`, decoded back by
`event_of`); who gets it is a property of the value (`routing`), never read back out
of a payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, NamedTuple

from tidings.core.models import (
    Conversation,
    ConversationId,
    Dnd,
    FileInfo,
    MemberNotify,
    MemberRole,
    Message,
    ScheduledMessage,
    ThreadSummary,
    User,
    UserId,
)


class EventKind(StrEnum):
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_UPDATED = "conversation_updated"
    MESSAGE = "message"
    MESSAGE_EDITED = "message_edited"
    MESSAGE_DELETED = "message_deleted"
    REACTION = "reaction"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    MEMBER_ROLE_CHANGED = "member_role_changed"
    READ = "read"
    FILE_UPDATED = "file_updated"
    THREAD_UPDATED = "thread_updated"
    THREAD_READ = "thread_read"
    USER_UPDATED = "user_updated"
    MESSAGE_PINNED = "message_pinned"
    MESSAGE_UNPINNED = "message_unpinned"
    NOTIFICATIONS_UPDATED = "notifications_updated"
    DND_UPDATED = "dnd_updated"
    MESSAGE_SAVED = "message_saved"
    MESSAGE_UNSAVED = "message_unsaved"
    SCHEDULED_CREATED = "scheduled_message_created"
    SCHEDULED_UPDATED = "scheduled_message_updated"
    SCHEDULED_DELETED = "scheduled_message_deleted"


class Routing(NamedTuple):
    """Who gets an event, and what the gateway does around it. A named tuple, not a
    frozen dataclass: one is built for every event on the send path, and a frozen
    dataclass of six fields takes three times as long to build (0.73 against 0.25 µs
    here)."""

    conversation: ConversationId | None  # every member's connections see it
    user: UserId | None = None  # a per-user event (no conversation): this user's connections
    added: tuple[UserId, ...] = ()  # join these users' connections to the conversation first
    removed: UserId | None = None  # drop this user's connections from it after the event
    sender: UserId | None = None  # a message: the sending connection gets its ack first
    client_msg_id: str | None = None  # ... the send that ack answers
    # An event about message `about_seq` of its conversation (an edit, a recall, a
    # reaction, a pin, a file or thread update): only members whose range holds that seq
    # get it (`reaches`). None for everything else, a new message included: it is after
    # every member's first seq, so its fan-out checks nothing.
    about_seq: int | None = None
    first_seq: int = 1  # with `added`: the first seq those members may read


# The kinds whose routing can name an `about_seq` (tests/unit/core/test_events.py checks
# it against every kind's routing): a replay decodes only these to read it.
ABOUT_KINDS = frozenset(
    {
        EventKind.MESSAGE_EDITED,
        EventKind.MESSAGE_DELETED,
        EventKind.REACTION,
        EventKind.FILE_UPDATED,
        EventKind.THREAD_UPDATED,
        EventKind.MESSAGE_PINNED,
        EventKind.MESSAGE_UNPINNED,
    }
)


def reaches(first_seq: int, about_seq: int | None) -> bool:
    """Whether an event of a conversation about message `about_seq` (`Routing.about_seq`)
    reaches a member who may read from `first_seq` (`Member.first_seq`: 1, or later when
    the conversation does not share its history with members added later). The upper end
    of their range needs no check: a removed member gets no event after their removal.
    The one rule of the live fan-out (protocol/session.py:ServerSession.sees) and of the
    replay (services/sync.py:SyncService.events_since)."""
    return about_seq is None or about_seq >= first_seq


class _OfConversation:
    """An event that carries its conversation: of it, seen by every member (unless
    its kind routes it otherwise)."""

    __slots__ = ()
    conversation: Conversation

    @property
    def conversation_id(self) -> ConversationId:
        return self.conversation.id

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation.id)


class _OfMessage:
    """An event about one message: of its conversation, seen by every member whose
    range holds the message."""

    __slots__ = ()
    message: Message

    @property
    def conversation_id(self) -> ConversationId:
        return self.message.conversation_id

    @property
    def routing(self) -> Routing:
        m = self.message
        return Routing(m.conversation_id, about_seq=m.seq)


class _OwnState:
    """An event about one user's own state (a thread followed, a message saved, their
    notification settings): only that user's connections are told."""

    __slots__ = ()
    user_id: UserId

    @property
    def routing(self) -> Routing:
        return Routing(None, user=self.user_id)


@dataclass(frozen=True, slots=True)
class ConversationCreated(_OfConversation):
    kind: ClassVar[EventKind] = EventKind.CONVERSATION_CREATED
    conversation: Conversation
    member_ids: tuple[UserId, ...]
    by: UserId
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation.id, added=self.member_ids)


@dataclass(frozen=True, slots=True)
class ConversationUpdated(_OfConversation):
    kind: ClassVar[EventKind] = EventKind.CONVERSATION_UPDATED
    conversation: Conversation
    by: UserId
    at: datetime


@dataclass(frozen=True, slots=True)
class MessageSent(_OfMessage):
    kind: ClassVar[EventKind] = EventKind.MESSAGE
    message: Message
    at: datetime

    @property
    def routing(self) -> Routing:
        m = self.message
        return Routing(m.conversation_id, sender=m.sender_id, client_msg_id=m.client_msg_id)


@dataclass(frozen=True, slots=True)
class MessageEdited(_OfMessage):
    kind: ClassVar[EventKind] = EventKind.MESSAGE_EDITED
    message: Message  # as it is after the edit
    at: datetime


@dataclass(frozen=True, slots=True)
class MessageDeleted(_OfMessage):
    """A message recalled: `message` is what is left of it (no body, `deleted`)."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE_DELETED
    message: Message
    by: UserId
    at: datetime


@dataclass(frozen=True, slots=True)
class ReactionChanged:
    """`user_id` added (`added`) or took back `emoji` on message `seq`; `count` is how
    many have that emoji on it now. Only the change, never the message: every member
    gets one per reaction, and a message can carry thousands of them."""

    kind: ClassVar[EventKind] = EventKind.REACTION
    conversation_id: ConversationId
    seq: int
    emoji: str
    user_id: UserId
    added: bool
    count: int
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation_id, about_seq=self.seq)


@dataclass(frozen=True, slots=True)
class MemberAdded(_OfConversation):
    kind: ClassVar[EventKind] = EventKind.MEMBER_ADDED
    conversation: Conversation  # as it is with them
    user_ids: tuple[UserId, ...]
    by: UserId
    at: datetime
    first_seq: int = 1  # the first seq they may read (Member.first_seq)

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation.id, added=self.user_ids, first_seq=self.first_seq)


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """The last event of the conversation the removed member gets."""

    kind: ClassVar[EventKind] = EventKind.MEMBER_REMOVED
    conversation_id: ConversationId
    user_id: UserId
    by: UserId
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation_id, removed=self.user_id)


@dataclass(frozen=True, slots=True)
class MemberRoleChanged:
    """Member `user_id` now has `role` (owner, moderator, member) in the conversation:
    every member is told, so that each client's member list stays exact."""

    kind: ClassVar[EventKind] = EventKind.MEMBER_ROLE_CHANGED
    conversation_id: ConversationId
    user_id: UserId
    role: MemberRole
    by: UserId
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation_id)


@dataclass(frozen=True, slots=True)
class ReadMoved:
    """A member's read position moved to `seq`. In a channel (`private`) only the
    reader's own connections are told; elsewhere every member (read receipts)."""

    kind: ClassVar[EventKind] = EventKind.READ
    conversation_id: ConversationId
    user_id: UserId
    seq: int
    unread: int
    private: bool
    at: datetime

    @property
    def routing(self) -> Routing:
        if self.private:
            return Routing(None, user=self.user_id)
        return Routing(self.conversation_id)


@dataclass(frozen=True, slots=True)
class FileUpdated:
    """A file that message `seq` carries changed after its upload: the worker made its
    thumbnail and preview (`file.has_thumbnail`, `width`, `height`), or found it is no
    image it can show (still a plain file), or the scan quarantined it. `file` is the
    file object as it is now; one event per message that carries it, so that a client
    holding the message updates it in place (stale state + events == a fresh fetch)."""

    kind: ClassVar[EventKind] = EventKind.FILE_UPDATED
    conversation_id: ConversationId
    seq: int
    file: FileInfo
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation_id, about_seq=self.seq)


@dataclass(frozen=True, slots=True)
class ThreadUpdated:
    """The thread of a root changed (a reply sent, a reply recalled): `summary` is the
    root's thread summary as it is now, whole (a client replaces what it holds)."""

    kind: ClassVar[EventKind] = EventKind.THREAD_UPDATED
    summary: ThreadSummary
    at: datetime

    @property
    def conversation_id(self) -> ConversationId:
        return self.summary.conversation_id

    @property
    def routing(self) -> Routing:
        s = self.summary
        return Routing(s.conversation_id, about_seq=s.root_seq)


@dataclass(frozen=True, slots=True)
class ThreadRead(_OwnState):
    """`user_id` followed or unfollowed the thread of `root_seq`, or moved their read
    position in it: only that user's connections are told (their own state)."""

    kind: ClassVar[EventKind] = EventKind.THREAD_READ
    conversation_id: ConversationId
    root_seq: int
    user_id: UserId
    following: bool
    read_seq: int
    at: datetime


@dataclass(frozen=True, slots=True)
class MessagePinned:
    """Message `seq` was pinned by `by` (at `at`: the pin's time): every member is told;
    a client adds it to the conversation's pinned list."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE_PINNED
    conversation_id: ConversationId
    seq: int
    by: UserId
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation_id, about_seq=self.seq)


@dataclass(frozen=True, slots=True)
class MessageUnpinned:
    """Message `seq` is no longer pinned (unpinned by `by`, or recalled)."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE_UNPINNED
    conversation_id: ConversationId
    seq: int
    by: UserId
    at: datetime

    @property
    def routing(self) -> Routing:
        return Routing(self.conversation_id, about_seq=self.seq)


@dataclass(frozen=True, slots=True)
class MessageSaved(_OwnState):
    """`user_id` saved message `seq` (at `at`): only their own connections are told; a
    client puts it first in its saved list (saved messages are private)."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE_SAVED
    conversation_id: ConversationId
    seq: int
    user_id: UserId
    at: datetime


@dataclass(frozen=True, slots=True)
class MessageUnsaved(_OwnState):
    """Message `seq` left `user_id`'s saved list (they unsaved it, or it was recalled):
    only their own connections are told."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE_UNSAVED
    conversation_id: ConversationId
    seq: int
    user_id: UserId
    at: datetime


@dataclass(frozen=True, slots=True)
class UserUpdated:
    """Someone changed what others see of them (display name, custom status). One event
    per conversation they are a member of (every member holds their name), and one for
    their own connections (`conversation_id` None) that also carries their preferences
    (language, time zone, theme: `own`); the copies for conversations never do."""

    kind: ClassVar[EventKind] = EventKind.USER_UPDATED
    conversation_id: ConversationId | None
    user: User
    at: datetime

    @property
    def own(self) -> bool:
        return self.conversation_id is None

    @property
    def routing(self) -> Routing:
        if self.conversation_id is None:
            return Routing(None, user=self.user.id)
        return Routing(self.conversation_id)


@dataclass(frozen=True, slots=True)
class NotificationsUpdated(_OwnState):
    """`user_id` changed their notification settings in a conversation (level, mute):
    only their own connections are told (their own state, like ThreadRead); `notify`
    is the settings as they are now, whole."""

    kind: ClassVar[EventKind] = EventKind.NOTIFICATIONS_UPDATED
    conversation_id: ConversationId
    user_id: UserId
    notify: MemberNotify
    at: datetime


@dataclass(frozen=True, slots=True)
class DndUpdated(_OwnState):
    """`user_id` changed their do not disturb: to their own connections, `dnd` whole."""

    kind: ClassVar[EventKind] = EventKind.DND_UPDATED
    user_id: UserId
    dnd: Dnd
    at: datetime

    @property
    def conversation_id(self) -> None:
        return None


class _OfScheduled:
    """An event carrying a scheduled message whole: to its sender's connections only (a
    scheduled message is private to its sender until it is sent)."""

    __slots__ = ()
    scheduled: ScheduledMessage

    @property
    def conversation_id(self) -> ConversationId:
        return self.scheduled.conversation_id

    @property
    def routing(self) -> Routing:
        return Routing(None, user=self.scheduled.sender_id)


@dataclass(frozen=True, slots=True)
class ScheduledCreated(_OfScheduled):
    """The sender scheduled a message (services/scheduled.py)."""

    kind: ClassVar[EventKind] = EventKind.SCHEDULED_CREATED
    scheduled: ScheduledMessage
    at: datetime


@dataclass(frozen=True, slots=True)
class ScheduledUpdated(_OfScheduled):
    """A scheduled message changed: edited (body, send_at), being sent, sent (`sent_seq`)
    or failed (`failure`): `scheduled` whole."""

    kind: ClassVar[EventKind] = EventKind.SCHEDULED_UPDATED
    scheduled: ScheduledMessage
    at: datetime


@dataclass(frozen=True, slots=True)
class ScheduledDeleted(_OwnState):
    """Scheduled message `scheduled_id` of `user_id` was cancelled (or a failed one
    dismissed): it leaves their list; to their own connections only."""

    kind: ClassVar[EventKind] = EventKind.SCHEDULED_DELETED
    conversation_id: ConversationId
    scheduled_id: str
    user_id: UserId
    at: datetime


Event = (
    ConversationCreated
    | ConversationUpdated
    | MessageSent
    | MessageEdited
    | MessageDeleted
    | ReactionChanged
    | MemberAdded
    | MemberRemoved
    | MemberRoleChanged
    | ReadMoved
    | FileUpdated
    | ThreadUpdated
    | ThreadRead
    | UserUpdated
    | MessagePinned
    | MessageUnpinned
    | NotificationsUpdated
    | DndUpdated
    | MessageSaved
    | MessageUnsaved
    | ScheduledCreated
    | ScheduledUpdated
    | ScheduledDeleted
)
EVENT_TYPES: tuple[type[Event], ...] = (
    ConversationCreated,
    ConversationUpdated,
    MessageSent,
    MessageEdited,
    MessageDeleted,
    ReactionChanged,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    ReadMoved,
    FileUpdated,
    ThreadUpdated,
    ThreadRead,
    UserUpdated,
    MessagePinned,
    MessageUnpinned,
    NotificationsUpdated,
    DndUpdated,
    MessageSaved,
    MessageUnsaved,
    ScheduledCreated,
    ScheduledUpdated,
    ScheduledDeleted,
)
