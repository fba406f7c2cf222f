"""Typed events: the wire payload of every kind (PROTOCOL.md: these keys, in this order),
read back from the store to the same value, and its routing."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import orjson
import pytest

from tidings.core.events import (
    ABOUT_KINDS,
    EVENT_TYPES,
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
    Routing,
    ScheduledCreated,
    ScheduledDeleted,
    ScheduledUpdated,
    ThreadRead,
    ThreadUpdated,
    UserUpdated,
    reaches,
)
from tidings.core.models import (
    Avatar,
    Conversation,
    ConversationId,
    ConversationKind,
    CustomStatus,
    Dnd,
    DndSchedule,
    FileId,
    FileInfo,
    FileStatus,
    MemberNotify,
    MemberRole,
    Message,
    MessageId,
    MessageRef,
    NotifyLevel,
    OrgRole,
    Preferences,
    ScheduledMessage,
    ScheduledState,
    StoredEvent,
    Theme,
    ThreadSummary,
    User,
    UserId,
)
from tidings.protocol.wire import NotAnEvent, event_json, event_of
from tidings.services.events import envelope_for, envelope_of

AT = datetime(2026, 11, 28, 12, 0, 1, 123456, tzinfo=UTC)
AT_TEXT = "2026-11-28T12:00:01.123456Z"
CREATED = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)  # no fraction: ...T11:00:00Z
CID = ConversationId("c1")
ALICE, BOB, CAROL = UserId("alice"), UserId("bob"), UserId("carol")

CONV = Conversation(CID, ConversationKind.GROUP, "team", "", ALICE, CREATED, 3, AT, 2)
CONV_JSON = {
    "id": "c1", "kind": "group", "name": "team", "topic": "", "created_by": "alice",
    "created_at": "2026-11-28T11:00:00Z", "last_seq": 3, "last_activity_at": AT_TEXT,
    "member_count": 2, "archived_at": None, "private": False, "announcement": False,
    "shared_history": True,
}
MSG = Message(
    MessageId("m1"), CID, 3, "cm-1", ALICE, "hi @bob", 1, (BOB,), CREATED, edited_at=AT,
    reactions={"👍": [BOB, CAROL]},
)
MSG_JSON = {
    "id": "m1", "conversation_id": "c1", "seq": 3, "client_msg_id": "cm-1",
    "sender_id": "alice", "body": "hi @bob", "reply_to_seq": 1, "mentions": ["bob"],
    "reactions": {"👍": ["bob", "carol"]}, "created_at": "2026-11-28T11:00:00Z",
    "edited_at": AT_TEXT, "deleted": False, "attachments": [],
    "thread_root_seq": None, "also_to_conversation": False, "mentions_everyone": None,
}
RECALLED = Message(MessageId("m1"), CID, 3, "cm-1", ALICE, "", None, (), CREATED, deleted=True)
RECALLED_JSON = {
    **MSG_JSON, "body": "", "reply_to_seq": None, "mentions": [], "reactions": {},
    "edited_at": None, "deleted": True,
}
HEAD = {"conversation_id": "c1", "at": AT_TEXT}
# a file as the wire carries it (no blob key; a thumbnail: has_thumbnail)
FILE = FileInfo(
    FileId("f1"), ALICE, "cat.png", 2048, "image/png", "ab" * 32, "", CREATED,
    FileStatus.READY, width=640, height=480, thumb_key="",
)
FILE_JSON = {
    "id": "f1", "name": "cat.png", "size": 2048, "content_type": "image/png",
    "sha256": "ab" * 32, "created_at": "2026-11-28T11:00:00Z", "uploader_id": "alice",
    "width": 640, "height": 480, "has_thumbnail": True, "status": "ready",
}

# (event, its wire payload, its routing): every kind, and both scopes of `read`
SCHEDULED = ScheduledMessage(
    id="s1",
    sender_id=BOB,
    conversation_id=CID,
    body="later",
    send_at=AT + timedelta(hours=1),
    state=ScheduledState.PENDING,
    created_at=AT,
    updated_at=AT,
    thread_root_seq=3,
    attachments=("f1",),
)
SCHEDULED_JSON = {
    "id": "s1", "conversation_id": "c1", "body": "later",
    "send_at": AT_TEXT.replace("T12:", "T13:"), "state": "pending", "reply_to_seq": None,
    "thread_root_seq": 3, "also_to_conversation": False, "attachments": ["f1"], "failure": None,
    "sent_seq": None,
    "version": 1, "created_at": AT_TEXT, "updated_at": AT_TEXT,
}
CASES: list[tuple[Event, dict[str, object], Routing]] = [
    (
        ConversationCreated(CONV, (ALICE, BOB), ALICE, AT),
        {"kind": "conversation_created", **HEAD, "conversation": CONV_JSON,
         "member_ids": ["alice", "bob"], "by": "alice"},
        Routing(CID, added=(ALICE, BOB)),
    ),
    (
        ConversationUpdated(CONV, BOB, AT),
        {"kind": "conversation_updated", **HEAD, "conversation": CONV_JSON, "by": "bob"},
        Routing(CID),
    ),
    (
        MessageSent(MSG, AT),
        {"kind": "message", **HEAD, "message": MSG_JSON},
        Routing(CID, sender=ALICE, client_msg_id="cm-1"),
    ),
    (
        MessageEdited(MSG, AT),
        {"kind": "message_edited", **HEAD, "message": MSG_JSON},
        Routing(CID, about_seq=3),
    ),
    (
        MessageDeleted(RECALLED, BOB, AT),
        {"kind": "message_deleted", **HEAD, "message": RECALLED_JSON, "by": "bob"},
        Routing(CID, about_seq=3),
    ),
    (
        # the change only (issue 13, item 3): never the message, whose reactions grow
        ReactionChanged(CID, 3, "👍", CAROL, True, 2, AT),
        {"kind": "reaction", **HEAD, "seq": 3, "emoji": "👍", "user_id": "carol",
         "added": True, "count": 2},
        Routing(CID, about_seq=3),
    ),
    (
        MemberAdded(CONV, (CAROL,), BOB, AT),
        {"kind": "member_added", **HEAD, "user_ids": ["carol"], "by": "bob",
         "conversation": CONV_JSON, "first_seq": 1},
        Routing(CID, added=(CAROL,)),
    ),
    (
        # history not shared with members added later: they read from seq 4
        MemberAdded(replace(CONV, shared_history=False), (CAROL,), BOB, AT, 4),
        {"kind": "member_added", **HEAD, "user_ids": ["carol"], "by": "bob",
         "conversation": {**CONV_JSON, "shared_history": False}, "first_seq": 4},
        Routing(CID, added=(CAROL,), first_seq=4),
    ),
    (
        MemberRemoved(CID, CAROL, BOB, AT),
        {"kind": "member_removed", **HEAD, "user_id": "carol", "by": "bob"},
        Routing(CID, removed=CAROL),
    ),
    (
        MemberRoleChanged(CID, CAROL, MemberRole.MODERATOR, BOB, AT),
        {"kind": "member_role_changed", **HEAD, "user_id": "carol", "role": "moderator",
         "by": "bob"},
        Routing(CID),
    ),
    (
        ReadMoved(CID, BOB, 3, 0, False, AT),
        {"kind": "read", **HEAD, "user_id": "bob", "seq": 3, "unread": 0},
        Routing(CID),
    ),
    (
        ReadMoved(CID, BOB, 2, 1, True, AT),  # a channel: only the reader's devices
        {"kind": "read", **HEAD, "user_id": "bob", "seq": 2, "unread": 1},
        Routing(None, user=BOB),
    ),
    (
        MessagePinned(CID, 3, BOB, AT),
        {"kind": "message_pinned", **HEAD, "seq": 3, "by": "bob"},
        Routing(CID, about_seq=3),
    ),
    (
        MessageUnpinned(CID, 3, ALICE, AT),
        {"kind": "message_unpinned", **HEAD, "seq": 3, "by": "alice"},
        Routing(CID, about_seq=3),
    ),
    (
        # saved messages are private: only the saver's devices
        MessageSaved(CID, 3, BOB, AT),
        {"kind": "message_saved", **HEAD, "seq": 3, "user_id": "bob"},
        Routing(None, user=BOB),
    ),
    (
        MessageUnsaved(CID, 3, BOB, AT),
        {"kind": "message_unsaved", **HEAD, "seq": 3, "user_id": "bob"},
        Routing(None, user=BOB),
    ),
    (
        # the thumbnail was made: the file object as it is now, for message 3
        FileUpdated(CID, 3, FILE, AT),
        {"kind": "file_updated", **HEAD, "seq": 3, "file": FILE_JSON},
        Routing(CID, about_seq=3),
    ),
    (
        # a thread reply: the message carries its root and whether it is shown too
        MessageSent(
            Message(MessageId("m4"), CID, 4, "cm-4", BOB, "in thread", None, (), CREATED,
                    thread_root_seq=3, also_to_conversation=True),
            AT,
        ),
        {"kind": "message", **HEAD, "message": {
            **MSG_JSON, "id": "m4", "seq": 4, "client_msg_id": "cm-4", "sender_id": "bob",
            "body": "in thread", "reply_to_seq": None, "mentions": [], "reactions": {},
            "edited_at": None, "thread_root_seq": 3, "also_to_conversation": True}},
        Routing(CID, sender=BOB, client_msg_id="cm-4"),
    ),
    (
        # a forwarded copy names its original; other messages carry no such key
        MessageSent(
            Message(MessageId("m5"), CID, 5, "cm-5", BOB, "passed on", None, (), CREATED,
                    forwarded_from=MessageRef(ConversationId("c9"), 7)),
            AT,
        ),
        {"kind": "message", **HEAD, "message": {
            **MSG_JSON, "id": "m5", "seq": 5, "client_msg_id": "cm-5", "sender_id": "bob",
            "body": "passed on", "reply_to_seq": None, "mentions": [], "reactions": {},
            "edited_at": None, "forwarded_from": {"conversation_id": "c9", "seq": 7}}},
        Routing(CID, sender=BOB, client_msg_id="cm-5"),
    ),
    (
        # the root's whole summary as it is now
        ThreadUpdated(ThreadSummary(CID, 3, 2, 5, AT, (CAROL, BOB)), AT),
        {"kind": "thread_updated", **HEAD, "thread": {
            "root_seq": 3, "reply_count": 2, "last_reply_seq": 5, "last_reply_at": AT_TEXT,
            "participants": ["carol", "bob"]}},
        Routing(CID, about_seq=3),
    ),
    (
        # every reply recalled: an empty summary
        ThreadUpdated(ThreadSummary(CID, 3, 0, None, None, ()), AT),
        {"kind": "thread_updated", **HEAD, "thread": {
            "root_seq": 3, "reply_count": 0, "last_reply_seq": None, "last_reply_at": None,
            "participants": []}},
        Routing(CID, about_seq=3),
    ),
    (
        # a user's own state in a thread: only their devices
        ThreadRead(CID, 3, BOB, False, 5, AT),
        {"kind": "thread_read", **HEAD, "root_seq": 3, "user_id": "bob", "following": False,
         "read_seq": 5},
        Routing(None, user=BOB),
    ),
]
ANN = User(
    ALICE, "alice", "Alice Chen", OrgRole.MEMBER, False, CREATED,
    status=CustomStatus("On leave", "🌴", AT),
    preferences=Preferences("zh-CN", "Asia/Shanghai", Theme.DARK),
    avatar=Avatar("av1", AT, "e" * 64, "image/jpeg"),
)
ANN_JSON = {
    "id": "alice", "username": "alice", "display_name": "Alice Chen", "role": "member",
    "disabled": False, "department_ids": [], "created_at": "2026-11-28T11:00:00Z",
    "bot": False, "email": None, "origin": "local",
    "status": {"text": "On leave", "emoji": "🌴", "until": AT_TEXT},
    "avatar": {"id": "av1", "updated_at": AT_TEXT, "url": "/api/v1/users/alice/avatar/av1?size=256",
               "small_url": "/api/v1/users/alice/avatar/av1?size=64"},
}
CASES += [
    (
        # what others see, in one of her conversations: never the preferences
        UserUpdated(CID, replace(ANN, preferences=Preferences()), AT),
        {"kind": "user_updated", **HEAD, "user": ANN_JSON},
        Routing(CID),
    ),
    (
        # her own devices' copy: the preferences too
        UserUpdated(None, ANN, AT),
        {"kind": "user_updated", "conversation_id": None, "at": AT_TEXT, "user": ANN_JSON,
         "preferences": {"language": "zh-CN", "time_zone": "Asia/Shanghai", "theme": "dark"}},
        Routing(None, user=ALICE),
    ),
]
CASES += [
    (
        # a member's own settings in a conversation: only their devices
        NotificationsUpdated(
            CID, BOB, MemberNotify(NotifyLevel.MENTIONS, True, AT + timedelta(hours=1)), AT
        ),
        {"kind": "notifications_updated", **HEAD, "user_id": "bob", "notifications": {
            "level": "mentions", "muted": True, "muted_until": AT_TEXT.replace("T12:", "T13:")}},
        Routing(None, user=BOB),
    ),
    (
        NotificationsUpdated(CID, BOB, MemberNotify(), AT),  # back to the defaults
        {"kind": "notifications_updated", **HEAD, "user_id": "bob", "notifications": {
            "level": None, "muted": False, "muted_until": None}},
        Routing(None, user=BOB),
    ),
    (
        # @here: the message says it mentions everyone (online), for clients to highlight
        MessageSent(replace(MSG, body="@here standup?", mentions=()), AT),
        {"kind": "message", **HEAD, "message": {
            **MSG_JSON, "body": "@here standup?", "mentions": [], "mentions_everyone": "here"}},
        Routing(CID, sender=ALICE, client_msg_id="cm-1"),
    ),
    (
        # a scheduled message: private to its sender until sent
        ScheduledCreated(SCHEDULED, AT),
        {"kind": "scheduled_message_created", **HEAD, "user_id": "bob",
         "scheduled": SCHEDULED_JSON},
        Routing(None, user=BOB),
    ),
    (
        ScheduledUpdated(replace(SCHEDULED, state=ScheduledState.SENT, sent_seq=9, version=2), AT),
        {"kind": "scheduled_message_updated", **HEAD, "user_id": "bob",
         "scheduled": {**SCHEDULED_JSON, "state": "sent", "sent_seq": 9, "version": 2}},
        Routing(None, user=BOB),
    ),
    (
        ScheduledDeleted(CID, "s1", BOB, AT),
        {"kind": "scheduled_message_deleted", **HEAD, "user_id": "bob", "scheduled_id": "s1"},
        Routing(None, user=BOB),
    ),
    (
        # a user's do not disturb: only their devices
        DndUpdated(BOB, Dnd(AT, DndSchedule(time(22, 0), time(7, 30))), AT),
        {"kind": "dnd_updated", "conversation_id": None, "at": AT_TEXT, "user_id": "bob",
         "dnd": {"until": AT_TEXT, "schedule": {"start": "22:00", "end": "07:30"}}},
        Routing(None, user=BOB),
    ),
]
IDS = [f"{type(e).__name__}{'-private' if getattr(e, 'private', False) else ''}"
       f"{'-own' if getattr(e, 'own', False) else ''}"
       for e, _, _ in CASES]


def stored(position: int, event: Event) -> StoredEvent:
    routing = event.routing
    return StoredEvent(position, routing.conversation, routing.user, event_json(event))


def test_one_event_type_per_kind() -> None:
    assert sorted(t.kind for t in EVENT_TYPES) == sorted(EventKind)
    assert {type(e) for e, _, _ in CASES} == set(EVENT_TYPES)


@pytest.mark.parametrize(("event", "payload", "routing"), CASES, ids=IDS)
def test_wire_payload_keys_values_and_order(
    event: Event, payload: dict[str, object], routing: Routing
) -> None:
    encoded = event_json(event)
    assert list(encoded) == list(payload)  # the order of the keys too
    assert orjson.dumps(encoded) == orjson.dumps(payload)


@pytest.mark.parametrize(("event", "payload", "routing"), CASES, ids=IDS)
def test_routing(event: Event, payload: dict[str, object], routing: Routing) -> None:
    assert event.routing == routing


@pytest.mark.parametrize(("event", "payload", "routing"), CASES, ids=IDS)
def test_a_stored_event_reads_back_to_the_same_value_and_bytes(
    event: Event, payload: dict[str, object], routing: Routing
) -> None:
    row = stored(7, event)
    # through the database's JSON text, as the store keeps it
    back = StoredEvent(row.position, row.conversation_id, row.user_id,
                       orjson.loads(orjson.dumps(row.payload)))
    decoded = event_of(back)
    assert decoded == event
    assert orjson.dumps(event_json(decoded)) == orjson.dumps(payload)


@pytest.mark.parametrize(("event", "payload", "routing"), CASES, ids=IDS)
def test_the_envelope_at_catch_up_is_the_one_published(
    event: Event, payload: dict[str, object], routing: Routing
) -> None:
    row = stored(42, event)
    published = envelope_of(42, event, row.payload)
    assert envelope_for(row) == published
    assert orjson.loads(published.frame) == {"type": "event", "position": "42", "event": payload}
    assert (published.conversation_id, published.user_id) == (routing.conversation, routing.user)
    assert tuple(published.added_user_ids) == routing.added
    assert published.removed_user_id == routing.removed
    assert (published.about_seq, published.first_seq) == (routing.about_seq, routing.first_seq)
    assert (published.sender_id, published.client_msg_id) == (
        routing.sender, routing.client_msg_id,
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "no_such_kind", **HEAD},
        {"kind": "member_removed", **HEAD, "by": "bob"},  # user_id missing
        {"kind": "member_removed", **HEAD, "user_id": 5, "by": "bob"},
        {"kind": "member_role_changed", **HEAD, "user_id": "bob", "role": "emperor", "by": "a"},
        {"kind": "member_role_changed", **HEAD, "user_id": "bob", "by": "a"},  # no role
        {"kind": "conversation_updated", **HEAD, "by": "a",
         "conversation": {**CONV_JSON, "private": "yes"}},
        {"kind": "read", **HEAD, "user_id": "bob", "seq": True, "unread": 0},
        {"kind": "read", "conversation_id": "c1", "at": "yesterday", "user_id": "bob",
         "seq": 1, "unread": 0},
        {"kind": "read", "conversation_id": "c1", "at": "2026-11-28T12:00:00",  # no zone
         "user_id": "bob", "seq": 1, "unread": 0},
        {"kind": "message", **HEAD, "message": "m1"},
        {"kind": "message", **HEAD, "message": {**MSG_JSON, "mentions": [1]}},
        {"kind": "reaction", **HEAD, "seq": 3, "emoji": "x", "user_id": "bob",
         "added": "yes", "count": 1},
        {"kind": "reaction", **HEAD, "seq": 3, "emoji": "x", "user_id": "bob",
         "added": True, "count": "1"},
        {"kind": "reaction", **HEAD, "seq": 3, "emoji": "x", "user_id": "bob",
         "added": True},  # no count, and no message to count in
    ],
)
def test_what_no_event_looks_like_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(NotAnEvent):
        event_of(StoredEvent(1, CID, None, payload))


def test_a_reaction_stored_before_events_carried_its_count_reads_back() -> None:
    """A row of the old shape (the whole message, no `count`) that a node of the
    previous release wrote: its count is read from the message it carries."""
    old = {"kind": "reaction", **HEAD, "seq": 3, "emoji": "👍", "user_id": "carol",
           "added": True, "message": MSG_JSON}
    assert event_of(StoredEvent(9, CID, None, old)) == ReactionChanged(
        CID, 3, "👍", CAROL, True, 2, AT
    )


def test_a_conversation_stored_before_its_settings_reads_back_with_the_old_behaviour() -> None:
    """A conversation in a row written before migration 0019 (no private, announcement,
    shared_history): public, anyone posts, history shared, as it was then."""
    old_conv = {k: v for k, v in CONV_JSON.items()
                if k not in ("private", "announcement", "shared_history")}
    old = {"kind": "conversation_updated", **HEAD, "conversation": old_conv, "by": "bob"}
    decoded = event_of(StoredEvent(9, CID, None, old))
    assert isinstance(decoded, ConversationUpdated)
    conv = decoded.conversation
    assert (conv.private, conv.announcement, conv.shared_history) == (False, False, True)


def test_about_kinds_are_the_kinds_whose_routing_names_a_message() -> None:
    """A replay decodes only ABOUT_KINDS to find an event's `about_seq`: every kind whose
    routing names one is among them, and each of them names one."""
    naming = {e.kind for e, _, r in CASES if r.about_seq is not None}
    assert naming == ABOUT_KINDS
    assert all(r.about_seq is None for e, _, r in CASES if e.kind not in ABOUT_KINDS)


@pytest.mark.parametrize(
    ("first_seq", "about_seq", "reached"),
    [(1, None, True), (5, None, True), (1, 1, True), (5, 4, False), (5, 5, True), (5, 9, True)],
)
def test_an_event_about_a_message_reaches_members_whose_range_holds_it(
    first_seq: int, about_seq: int | None, reached: bool
) -> None:
    assert reaches(first_seq, about_seq) is reached


def test_a_member_added_stored_before_it_carried_first_seq_reads_back() -> None:
    """A row of the old shape (no `first_seq`): the first seq add_members gave them, from
    the conversation it carries (1 if it shares its history, else after its last seq)."""
    for shared, first in ((True, 1), (False, 4)):
        conv = {**CONV_JSON, "shared_history": shared}
        old = {"kind": "member_added", **HEAD, "user_ids": ["carol"], "by": "bob",
               "conversation": conv}
        decoded = event_of(StoredEvent(9, CID, None, old))
        assert isinstance(decoded, MemberAdded)
        assert decoded.first_seq == first and decoded.routing.first_seq == first


def test_only_services_events_publishes_committed_things() -> None:
    """One way of publishing: after commit, through services/events.py; the ephemeral
    signals (typing, presence: never stored) from services/presence.py; and jobs reach
    a broker only from the outbox relay (services/jobs.py), never from a request."""
    pkg = Path(__file__).resolve().parents[3] / "src" / "tidings"
    callers = set()
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg)
        if rel.parts[0] in ("bus", "queue", "bench", "sdk"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("publish", "publish_many")
            ):
                callers.add(str(rel))
    assert callers == {"services/events.py", "services/presence.py", "services/jobs.py"}
