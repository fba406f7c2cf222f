"""The SDK's event types: a `reaction` event is the change only (issue 13, item 3), and
`ReactionChanged.apply_to` applies it to the message a client holds; `file_updated`
(issue 15) likewise, with `FileUpdated.apply_to`."""

from __future__ import annotations

from dataclasses import replace as dc_replace

import orjson
import pytest

from tests.unit.core.test_events import AT, CID, FILE
from tidings.core.events import FileUpdated as CoreFileUpdated
from tidings.core.models import FileInfo
from tidings.protocol.wire import event_json, file_json
from tidings.sdk import File, FileUpdated, Message, ReactionChanged
from tidings.sdk.models import parse_event

MESSAGE = Message.from_json(
    {
        "id": "m1", "conversation_id": "c1", "seq": 3, "client_msg_id": "x", "sender_id": "ann",
        "body": "hi", "reactions": {"👍": ["ben"], "🎉": ["ann"]},
    }
)


def reaction(emoji: str, user_id: str, added: bool, count: int, seq: int = 3) -> ReactionChanged:
    event = parse_event(
        "7",
        {
            "kind": "reaction", "conversation_id": "c1", "at": "2026-12-01T10:00:00Z",
            "seq": seq, "emoji": emoji, "user_id": user_id, "added": added, "count": count,
        },
    )
    assert isinstance(event, ReactionChanged)
    return event


def test_a_reaction_event_carries_the_change_and_the_count() -> None:
    event = reaction("👍", "cat", True, 2)
    assert (event.seq, event.emoji, event.user_id, event.added, event.count) == (
        3, "👍", "cat", True, 2,
    )
    assert event.message is None


def test_apply_to_adds_and_takes_back_keeping_the_order() -> None:
    added = reaction("👍", "cat", True, 2).apply_to(MESSAGE)
    assert dict(added.reactions) == {"👍": ("ben", "cat"), "🎉": ("ann",)}
    assert list(added.reactions) == ["👍", "🎉"]
    assert reaction("👍", "cat", True, 2).apply_to(added) == added  # the same change again
    gone = reaction("👍", "ben", False, 1).apply_to(added)
    assert dict(gone.reactions) == {"👍": ("cat",), "🎉": ("ann",)}
    emptied = reaction("🎉", "ann", False, 0).apply_to(gone)
    assert dict(emptied.reactions) == {"👍": ("cat",)}
    assert emptied.body == "hi" and MESSAGE.reactions["👍"] == ("ben",)  # nothing mutated


def test_apply_to_refuses_another_message() -> None:
    with pytest.raises(ValueError, match="another message"):
        reaction("👍", "cat", True, 2, seq=4).apply_to(MESSAGE)


def test_a_file_updated_event_replaces_that_attachment_only() -> None:
    """What the server encodes for a file_updated (protocol/wire via event_json) parses
    into FileUpdated, whose apply_to swaps in the file as it is now."""
    before = dc_replace(FILE, width=None, height=None, thumb_key=None)
    other = {**_file_json(before), "id": "f-other", "name": "b.txt"}
    message = Message.from_json(
        {
            "id": "m1", "conversation_id": CID, "seq": 3, "client_msg_id": "x",
            "sender_id": "ann", "body": "pics",
            "attachments": [_file_json(before), other],
        }
    )
    wire = orjson.loads(orjson.dumps(event_json(CoreFileUpdated(CID, 3, FILE, AT))))
    event = parse_event("9", wire)
    assert isinstance(event, FileUpdated) and event.seq == 3
    assert isinstance(event.file, File) and event.file.id == FILE.id
    updated = event.apply_to(message)
    assert updated.attachments[0] == event.file and updated.attachments[0].has_thumbnail
    assert updated.attachments[1] == message.attachments[1]
    with pytest.raises(ValueError, match="another message"):
        event.apply_to(dc_replace(message, seq=4))


def _file_json(file: FileInfo) -> dict[str, object]:
    return orjson.loads(orjson.dumps(file_json(file)))  # type: ignore[no-any-return]


def test_a_user_updated_event_carries_the_user_and_on_own_devices_the_preferences() -> None:
    """Made by the server's one encoder (the core event), read by the SDK."""
    from datetime import timedelta

    from tests.unit.core.test_events import ANN
    from tidings.core.events import UserUpdated as CoreUserUpdated
    from tidings.sdk import CustomStatus, UserUpdated

    own = parse_event("9", orjson.loads(orjson.dumps(event_json(CoreUserUpdated(None, ANN, AT)))))
    assert isinstance(own, UserUpdated) and own.conversation_id is None
    assert own.user.display_name == "Alice Chen"
    assert own.user.status == CustomStatus(text="On leave", emoji="🌴", until=AT)
    assert own.preferences is not None and own.preferences.theme == "dark"
    assert own.preferences.language == "zh-CN" and own.preferences.time_zone == "Asia/Shanghai"
    theirs = parse_event("10", event_json(CoreUserUpdated(CID, ANN, AT)))
    assert isinstance(theirs, UserUpdated) and theirs.preferences is None
    status = own.user.status
    assert status is not None
    assert status.at(AT - timedelta(seconds=1)) == status
    assert status.at(AT) is None  # from `until` on, it reads as none


def test_member_added_says_the_first_seq_the_added_members_read() -> None:
    """History not shared with members added later (issue 17): `first_seq` from the
    event; 1 from a server that does not send it."""
    from tidings.sdk.models import MemberAdded

    wire = {"kind": "member_added", "conversation_id": "c1", "at": "2026-12-01T10:00:00Z",
            "user_ids": ["cat"], "by": "ann"}
    later = parse_event("8", {**wire, "first_seq": 12})
    older = parse_event("9", wire)
    assert isinstance(later, MemberAdded) and isinstance(older, MemberAdded)
    assert (later.first_seq, older.first_seq, later.user_ids) == (12, 1, ("cat",))
