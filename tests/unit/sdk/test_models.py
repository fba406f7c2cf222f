"""The SDK's event types: a `reaction` event is the change only (issue 13, item 3), and
`ReactionChanged.apply_to` applies it to the message a client holds."""

from __future__ import annotations

import pytest

from tidings.sdk import Message, ReactionChanged
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
